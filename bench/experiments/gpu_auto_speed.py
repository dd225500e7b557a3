"""``iterations="auto"`` on a GPU backend: wall time against plain RL for the oracle's count.

``python3 bench/experiments/gpu_auto_speed.py DATA ORACLE_JSON --backend cupy [--widefield-psf F]``
or ``... DATA --shape Z Y X --backend cupy``

The sets of ``bench/iterations.py`` at the shape of ``ORACLE_JSON`` (a run of that bench:
its oracle counts and numpy errors), or at ``--shape`` with the oracle found here (plain
RL's best over 1..200 updates on this backend), NumPy in and out as a user calls it. Per set, after
one warm-up of each: plain RL for the oracle's count and ``iterations="auto"``,
interleaved (medians of 3), the time of the host-side split alone
(:func:`rlcore.autostop.split`, on the device where the backend draws there), and
auto's error next to the numpy run's.
``--widefield-psf``: a saved ``.npy`` of the bench's widefield PSF, for machines without
psfmodels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import rlcore  # noqa: E402
import rlcore.psf  # noqa: E402
from bench import iterations as it  # noqa: E402
from rlcore import autostop  # noqa: E402
from rlcore.registry import get_backend  # noqa: E402


def oracle(image, psf, truth, offset, backend, n=200):
    """Plain RL's best over 1..n updates on ``backend`` (no numpy run: its auto columns
    are NaN)."""
    errors = []
    data = np.clip(np.asarray(image, np.float32) - np.float32(offset), 0, None)
    with rlcore.Deconvolver(psf, data.shape, n, backend=backend, boundary=it.BOUNDARY) as rl:
        rl.run(data, observe=lambda k, x: errors.append(
            it.nrmse(getattr(x, "get", lambda: x)(), truth)))
    return {"oracle_iterations": int(np.argmin(errors)) + 1, "oracle_error": min(errors),
            "auto_error": float("nan"), "auto_iterations": -1}


def measure(be, image, psf, k, offset, repeats):
    """Interleaved medians: plain RL for ``k`` updates, auto, and the split alone."""
    def plain():
        return rlcore.deconvolve(image, psf, k, backend=be.name, offset=offset)

    def auto():
        return rlcore.deconvolve(image, psf, "auto", backend=be.name, offset=offset,
                                 return_info=True)

    def split():
        with be.activate():
            train = autostop.split(image, offset=offset, backend=be)[0]
            float(train.sum())  # waits for the device

    plain(), auto(), split()
    tp, ta, ts = [], [], []
    for _ in range(repeats):
        tp.append(it.timed(plain))
        ta.append(it.timed(auto))
        ts.append(it.timed(split))
    result, info = auto()
    return {"shape": list(image.shape), "oracle_iterations": k,
            "plain_s": statistics.median(tp), "auto_s": statistics.median(ta),
            "split_s": statistics.median(ts), "auto_iterations": info.iterations,
            "speedup": statistics.median(tp) / statistics.median(ta), "result": result}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("data", type=Path)
    p.add_argument("oracle", type=Path, nargs="?", default=None)
    p.add_argument("--shape", type=int, nargs=3, default=None)
    p.add_argument("--backend", default="cupy")
    p.add_argument("--widefield-psf", type=Path, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.widefield_psf is not None:
        saved = np.load(args.widefield_psf)
        rlcore.psf.widefield = lambda *a, **k: saved
    rows = {r["set"]: r for r in json.loads(args.oracle.read_text())} if args.oracle else {}
    shape = tuple(args.shape or next(r["shape"] for r in rows.values()
                                     if "widefield" in r["set"]))
    be = get_backend(args.backend)
    out = []
    for name, image, psf, truth, offset, _ in it.sets(args.data, shape):
        ref = rows.get(name) or oracle(image, psf, truth, offset, args.backend)
        row = measure(be, image, psf, ref["oracle_iterations"], offset, args.repeats)
        row.update(set=name, auto_error=it.nrmse(row.pop("result"), truth),
                   oracle_error=ref.get("oracle_error", float("nan")),
                   numpy_auto_error=ref["auto_error"],
                   numpy_auto_iterations=ref["auto_iterations"])
        out.append(row)
        print(f"{name[:40]:40s} {tuple(image.shape)} plain@{row['oracle_iterations']} "
              f"{row['plain_s']:.3f} s, auto@{row['auto_iterations']} {row['auto_s']:.3f} s "
              f"(split {row['split_s']:.3f} s) {row['speedup']:.2f}x; NRMSE "
              f"{row['auto_error']:.4f}, oracle {row['oracle_error']:.4f} "
              f"({row['auto_error'] / row['oracle_error'] - 1:+.1%}) (numpy "
              f"{row['numpy_auto_error']:.4f}@"
              f"{row['numpy_auto_iterations']})", flush=True)
    print("median speed-up", statistics.median(r["speedup"] for r in out))
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
