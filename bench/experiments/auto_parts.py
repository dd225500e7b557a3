"""Where ``iterations="auto"``'s time goes, per part (split, noise model, held-out band,
plans, monitor, runs), next to plain RL's per-update cost.

``python3 bench/experiments/auto_parts.py BACKEND SET Z Y X DATA [WIDEFIELD_PSF.npy]`` (``SET``: a
word of a set's name in bench/iterations.py; the widefield PSF saved for machines without
psfmodels).
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import rlcore  # noqa: E402
import rlcore._run.auto as R  # noqa: E402
import rlcore.autostop as A  # noqa: E402
import rlcore.deconvolver as D  # noqa: E402
import rlcore.psf  # noqa: E402
from bench import iterations as it  # noqa: E402
from bench.experiments.step_timers import Timers  # noqa: E402

be, only = sys.argv[1], sys.argv[2]
shape = tuple(int(v) for v in sys.argv[3:6])
data = Path(sys.argv[6])
if len(sys.argv) > 7:
    saved = np.load(sys.argv[7])
    rlcore.psf.widefield = lambda *a, **k: saved



timers = Timers(be)




def dec(n):
    return rlcore.deconvolve(image, psf, n, backend=be, offset=offset, return_info=True)




name, image, psf, truth, offset, kind = it.sets(data, shape, only=[only])[0]
for _ in range(2):
    dec("auto"), dec(10)
p1, p10, p30 = (timers.per_call(lambda n=n: dec(n)) for n in (1, 10, 30))
for owner, fn, label in ((A, "split", None), (A, "_noise_fit", None),
                         (A, "_integer_valued", None), (A, "_draw_in_chunks", None),
                         (A.HeldOut, "of", "HeldOut.of"), (A.AutoStop, "build", "AutoStop.build"),
                         (A.AutoStop, "__call__", "monitor"),
                         (D.Deconvolver, "__init__", "Deconvolver()"),
                         (D.Deconvolver, "execute", "execute"),
                         (D, "richardson_lucy", None), (A, "check", "checks"),
                         (A, "boundary_mismatch", None), (R, "_refit", "refit")):
    timers.wrap(owner, fn, label)
N = 5
total = timers.per_call(lambda: dec("auto"), N)
info = dec("auto")[1]
print(name, image.shape, be, info.stop_rule)
print(f"auto {total * 1e3:.1f} ms; plain 1/10/30 updates {p1 * 1e3:.1f} / {p10 * 1e3:.1f} / "
      f"{p30 * 1e3:.1f} ms, one update {(p30 - p10) / 20 * 1e3:.2f} ms")
for k, v in timers.total.items():
    print(f"  {k:20s} {v / (N + 1) * 1e3:7.2f} ms  x{timers.count[k] / (N + 1):g}")
