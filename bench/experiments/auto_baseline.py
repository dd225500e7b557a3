"""Auto's error on bench/iterations.py's nine sets as they are built now, by whichever
rlcore is imported: the baseline of bench.realdata's phantom table (issue 31's "no worse
than today").

The measured-PSF sets changed under issue 31 (their PSF is prepared by rlcore.psf, whose
background and centring were reworked), so the stored results from before that issue are
of other images. To compare the code of then with the code of now on the same images, the
sets are written by today's bench and read by the old code:

    python3 bench/experiments/auto_baseline.py dump ../shared/data /tmp/sets.npy
    git worktree add /tmp/base 5c2d4e3   # the commit before issue 31's first change
    PYTHONPATH=/tmp/base python3 bench/experiments/auto_baseline.py run /tmp/sets.npy \\
        non-circulant-half bench/results/iterations-auto-base-half.json

``run`` writes rows of ``set``, ``auto_error``, ``auto_iterations`` and ``oracle_error``
(plain RL's best of 200 updates, as bench/iterations.py's), the form
bench.realdata.PHANTOM_BEFORE reads.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np


def dump(data: Path, out: Path) -> None:
    from bench import iterations as I

    sets = {name: (image, psf, truth, offset)
            for name, image, psf, truth, offset, _ in I.sets(data)}
    np.save(out, np.array([sets], dtype=object), allow_pickle=True)


def nrmse(x, truth) -> float:  # bench/iterations.py's
    x = np.asarray(x, np.float64)
    s = float((x * truth).sum() / max(float((x * x).sum()), 1e-30))
    return float(np.linalg.norm(s * x - truth) / np.linalg.norm(truth))


def run(sets_file: Path, boundary: str, out: Path) -> None:
    import rlcore

    warnings.simplefilter("ignore")
    sets = np.load(sets_file, allow_pickle=True)[0]
    rows = []
    for name, (image, psf, truth, offset) in sets.items():
        x, info = rlcore.deconvolve(image, psf, "auto", offset=offset, backend="numpy",
                                    boundary=boundary, return_info=True)
        errors = []
        data = np.clip(np.asarray(image, np.float32) - np.float32(offset), 0, None)
        with rlcore.Deconvolver(psf, data.shape, 200, backend="numpy",
                                boundary=boundary) as rl:
            rl.run(data, observe=lambda k, e, errors=errors, truth=truth:
                   errors.append(nrmse(e, truth)))
        rows.append({"set": name, "boundary": boundary, "auto_error": nrmse(x, truth),
                     "auto_iterations": info.iterations, "auto_rule": info.stop_rule,
                     "oracle_error": min(errors),
                     "oracle_iterations": int(np.argmin(errors)) + 1,
                     "rlcore": str(Path(rlcore.__file__).parent)})
        print(json.dumps(rows[-1]), flush=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        run(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
