"""Where ``iterations="auto"``'s fixed cost goes on a backend: every step of the auto route
timed (synchronised), next to plain RL for a count, on a phantom blurred by the shipped
LLS PSF (no data folder needed).

``python3 bench/experiments/gpu_auto_host_parts.py BACKEND [Z Y X] [PEAK]``
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import rlcore  # noqa: E402
import rlcore._run.auto as R  # noqa: E402
import rlcore.autostop as A  # noqa: E402
import rlcore.deconvolver as D  # noqa: E402
import rlcore.validate as V  # noqa: E402
from bench.experiments.step_timers import Timers  # noqa: E402
from rlcore.data import lls_sample  # noqa: E402

be = sys.argv[1]
shape = tuple(int(v) for v in sys.argv[2:5]) if len(sys.argv) > 4 else (96, 192, 192)
peak = float(sys.argv[5]) if len(sys.argv) > 5 else 100.0



rng = np.random.default_rng(0)
truth = np.zeros(shape, np.float32)
for _ in range(300):
    c = [rng.integers(4, n - 4) for n in shape]
    truth[tuple(slice(a - 2, a + 2) for a in c)] += rng.uniform(0.5, 1.0)
psf = rlcore.psf.centered(lls_sample()[1].astype(np.float32))[0]
psf = psf[tuple(slice(max(0, n // 2 - 12), n // 2 + 13) for n in psf.shape)]
blurred = rlcore.convolve(truth, psf, backend="numpy")
image = rng.poisson(np.clip(blurred, 0, None) * peak / blurred.max() + 5.0).astype(np.float32)
offset = 5.0
timers = Timers(be)




def dec(n):
    return rlcore.deconvolve(image, psf, n, backend=be, offset=offset, return_info=True)




for _ in range(2):
    dec("auto"), dec(10)
p10, p30 = (timers.per_call(lambda n=n: dec(n)) for n in (10, 30))
N = 5
untimed = timers.per_call(lambda: dec("auto"), N)
for owner, fn, label in ((V, "to_numpy", "to_numpy"), (R, "as_image", "as_image"),
                         (A, "pad_mask", None), (A, "fit_noise", None), (A, "check", None),
                         (A, "split", None), (A.HeldOut, "of", "HeldOut.of"),
                         (A, "boundary_mismatch", None),
                         (A.AutoStop, "build", "AutoStop.build"),
                         (A.AutoStop, "__call__", "monitor"),
                         (D.Deconvolver, "__init__", "Deconvolver()"),
                         (D.Deconvolver, "run", "Deconvolver.run"),
                         (R, "_answer", "_answer")):
    timers.wrap(owner, fn, label)
total = timers.per_call(lambda: dec("auto"), N)
info = dec("auto")[1]
print(be, image.shape, "updates", info.iterations, "|", info.stop_rule)
print(f"auto {untimed * 1e3:.1f} ms (untimed), {total * 1e3:.1f} ms with the timers; plain "
      f"10 / 30 updates {p10 * 1e3:.1f} / {p30 * 1e3:.1f} ms, one update "
      f"{(p30 - p10) / 20 * 1e3:.2f} ms")
for k, v in sorted(timers.total.items(), key=lambda kv: -kv[1]):
    print(f"  {k:20s} {v / (N + 1) * 1e3:8.2f} ms  x{timers.count[k] / (N + 1):g}")
