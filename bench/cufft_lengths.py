"""cuFFT's work area and time per real transform pair for candidate grid lengths (GPU).

``python -m bench.cufft_lengths --out bench/results/cufft-lengths-h200.json``: for padded
grids ``(Z, n, n)`` around issue 19's cases, the R2C and C2R plans' work areas (in
grid-sized float32 arrays) as CuPy makes them, and the median time of an R2C + C2R pair
(10 pairs after a warm-up). ``fast_length`` (even 7-smooth) is marked.
``--shapes 256x256x256 272x272x272 ...``: those shapes instead.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics


def measure(shape: tuple[int, ...]) -> dict:
    import cupy as cp
    from cupyx.scipy.fft import get_fft_plan

    from rlcore.protocol import spectrum_shape

    x = cp.random.random(shape, dtype=cp.float32)
    s = cp.empty(spectrum_shape(shape), cp.complex64)
    axes = tuple(range(len(shape)))
    r2c = get_fft_plan(x, axes=axes, value_type="R2C")
    c2r = get_fft_plan(s, shape=shape, axes=axes, value_type="C2R")
    grid = 4 * math.prod(shape)
    times = []
    for i in range(11):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        r2c.fft(x, s, -1)
        c2r.fft(s, x, 1)
        stop.record()
        stop.synchronize()
        if i:
            times.append(cp.cuda.get_elapsed_time(start, stop))
    out = {"shape": list(shape), "r2c_work_grid_arrays": r2c.work_area.mem.size / grid,
           "c2r_work_grid_arrays": c2r.work_area.mem.size / grid,
           "pair_ms": statistics.median(times),
           "pair_ns_per_voxel": 1e6 * statistics.median(times) / math.prod(shape)}
    del r2c, c2r, x, s
    cp.get_default_memory_pool().free_all_blocks()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--shapes", nargs="*", default=None, help="e.g. 256x256x256")
    args = parser.parse_args(argv)
    from rlcore.backends.cupy import _even_7_smooth

    rows = []
    for shape in [tuple(int(n) for n in a.split("x")) for a in args.shapes or ()]:
        rows.append(measure(shape))
        print(json.dumps(rows[-1]), flush=True)
    sweep = ((128, range(1088, 1161, 8)), (96, range(1080, 1121, 8)), (288, (288,)),
             (256, (256,)))
    for z, lengths in () if args.shapes else sweep:
        for n in lengths:
            shape = (z, n, n) if z not in (288, 256) else (z, z, z)
            row = measure(shape)
            row["fast_length"] = _even_7_smooth(shape[-1]) == shape[-1]
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
