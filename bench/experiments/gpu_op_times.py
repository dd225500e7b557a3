"""Where a run's time goes on a GPU backend: every backend method timed (synchronised)
while a Deconvolver runs, per boundary. ``python3 bench/experiments/gpu_op_times.py``"""

from __future__ import annotations

import collections
import sys
import time

import numpy as np

import rlcore
from rlcore.registry import get_backend


def main() -> None:
    import cupy as cp

    shape = tuple(int(n) for n in (sys.argv[1] if len(sys.argv) > 1 else "256x256x256")
                  .split("x"))
    p = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    z, y, x = np.mgrid[:p, :p, :p] - p // 2
    psf = np.exp(-(z * z / 18.0 + (y * y + x * x) / 8.0)).astype(np.float32)
    image = cp.asarray(np.random.default_rng(0).poisson(50.0, shape).astype(np.float32))
    for boundary in ("periodic", "non-circulant-half"):
        be = get_backend("cupy")
        totals: dict = collections.defaultdict(float)
        counts: dict = collections.Counter()
        for name in dir(be):
            fn = getattr(be, name)
            if name.startswith("__") or not callable(fn) or name in ("activate",):
                continue

            def wrapped(*a, _fn=fn, _name=name, _t=totals, _c=counts, **k):
                cp.cuda.Device().synchronize()
                t0 = time.perf_counter()
                out = _fn(*a, **k)
                cp.cuda.Device().synchronize()
                _t[_name] += time.perf_counter() - t0
                _c[_name] += 1
                return out

            setattr(be, name, wrapped)
        rl = rlcore.Deconvolver(psf, shape, 10, backend=be, boundary=boundary)
        rl.run(image)
        totals.clear()
        counts.clear()
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        rl.run(image)
        cp.cuda.Device().synchronize()
        wall = time.perf_counter() - t0
        print(f"{boundary}: grid {rl.grid.shape}, wall {wall * 1e3:.2f} ms (synchronised)")
        for name, t in sorted(totals.items(), key=lambda kv: -kv[1])[:14]:
            print(f"   {name:24s} {counts[name]:4d} calls {t * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
