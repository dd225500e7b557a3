"""Where a pipelined series' time goes on CuPy (issue 32, rlcore.pipeline): the upload and
download threads' busy time per frame, the computing thread's time in each frame's run
and its waits, beside the device time of one frame.

``python3 bench/experiments/gpu_series_parts.py [FRAMES] [SHAPE]`` (50 64x256x256)
"""

from __future__ import annotations

import collections
import statistics
import sys
import time

import numpy as np

import rlcore
from rlcore import deconvolver as dmod
from rlcore.registry import get_backend


def main() -> None:
    import cupy as cp

    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    shape = tuple(int(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "64x256x256")
                  .split("x"))
    p = 31
    z, y, x = np.mgrid[:p, :p, :p] - p // 2
    psf = np.exp(-(z * z / 18.0 + (y * y + x * x) / 8.0)).astype(np.float32)
    series = np.random.default_rng(0).poisson(50.0, (frames,) + shape).astype(np.float32)
    be = get_backend("cupy")
    plan = rlcore.Deconvolver(psf, shape, 10, backend=be, boundary="periodic")
    totals: dict = collections.defaultdict(float)

    def timed(owner, name, label):
        fn = getattr(owner, name)

        def wrapper(*a, **k):
            t0 = time.perf_counter()
            r = fn(*a, **k)
            totals[label] += time.perf_counter() - t0
            return r

        setattr(owner, name, wrapper)

    timed(be, "upload_into", "upload thread: upload_into")
    timed(be, "download_into", "download thread: download_into")
    timed(be, "upload_target", "main: upload_target")
    timed(dmod.Deconvolver, "execute", "main: execute (run of a frame)")
    for _ in range(2):
        plan.run(series)  # warm-up; the second makes the result size 'seen'
    walls = []
    for _ in range(3):
        totals.clear()
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        plan.run(series)
        cp.cuda.Device().synchronize()
        walls.append(time.perf_counter() - t0)
    dev = cp.asarray(series[0])
    device = statistics.median(
        (lambda t0: (plan.run(dev), cp.cuda.Device().synchronize(),
                     time.perf_counter() - t0)[2])(time.perf_counter()) for _ in range(7))
    wall = statistics.median(walls) / frames
    print(f"{frames} frames of {shape}: wall per frame {wall * 1e3:.2f} ms, device run per "
          f"frame {device * 1e3:.2f} ms")
    for k, v in totals.items():
        print(f"  {k:36s} {v / frames * 1e3:7.2f} ms / frame (last round)")


if __name__ == "__main__":
    main()
