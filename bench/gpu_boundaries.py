"""Non-circulant on the GPU: time and peak device memory against periodic, this version
and an earlier install (issue 19's two cases).

``python -m bench.gpu_boundaries --base /tmp/base-site --out DIR/gpu-boundaries``

Each round starts one child per version, alternately (base, new, ...): the child runs
10 iterations, numpy in and numpy out, on the CuPy backend, for periodic, non-circulant
and (where the version has it) non-circulant-half, timing each (median of 3 after a
warm-up) and reading the CuPy memory pool's peak (``total_bytes`` after the run, pool
emptied before) in image-sized and grid-sized arrays. Medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time, math
import numpy as np, cupy as cp
import rlcore, rlcore.registry
from rlcore.boundary import BOUNDARIES, make_grid
from rlcore.backends import cupy as cupy_backend
shape = tuple(int(n) for n in sys.argv[1].split("x")); p = int(sys.argv[2])
rng = np.random.default_rng(0)
image = rng.poisson(50.0, shape).astype(np.float32)
g = np.exp(-0.5 * ((np.arange(p) - p // 2) / (p / 8)) ** 2)
psf = (g[:, None, None] * g[None, :, None] * g[None, None, :]).astype(np.float32)
pool = cp.get_default_memory_pool()
out = {}
for mode in ("periodic", "non-circulant", "non-circulant-half"):
    if mode not in BOUNDARIES:
        continue
    rlcore.deconvolve(image, psf, 2, backend="cupy", boundary=mode)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        rlcore.deconvolve(image, psf, 10, backend="cupy", boundary=mode)
        cp.cuda.Device().synchronize()
        times.append(time.perf_counter() - t)
    cupy_backend.clear_plan_cache(); pool.free_all_blocks()
    rlcore.deconvolve(image, psf, 10, backend="cupy", boundary=mode)
    peak = pool.total_bytes()
    be = rlcore.registry.get_backend("cupy")
    grid = make_grid(shape, psf.shape, mode, getattr(be, "fast_length", None)).shape
    cupy_backend.clear_plan_cache(); pool.free_all_blocks()
    out[mode] = {"ms": 1e3 * sorted(times)[1], "peak_image_arrays": peak / (4 * math.prod(shape)),
                 "peak_grid_arrays": peak / (4 * math.prod(grid)), "grid": list(grid)}
out["file"] = rlcore.__file__
print(json.dumps(out))
"""


def child(shape: str, psf: int, site: str | None) -> dict:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as cwd:  # not the checkout: '' leads sys.path
        proc = subprocess.run([sys.executable, "-c", CHILD, shape, str(psf)], env=env,
                              cwd=cwd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", default=None, help="folder of the earlier rlcore install")
    ap.add_argument("--cases", nargs="*", default=["64x1024x1024:64", "256x256x256:32"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    report = {}
    for case in args.cases:
        shape, psf = case.split(":")
        runs: dict[str, list[dict]] = {"base": [], "new": []}
        for _ in range(args.rounds):
            if args.base:
                runs["base"].append(child(shape, int(psf), args.base))
            runs["new"].append(child(shape, int(psf), None))
        report[case] = {}
        for version, rows in runs.items():
            if not rows:
                continue
            modes = [m for m in rows[0] if m != "file"]
            report[case][version] = {
                mode: {key: (statistics.median(r[mode][key] for r in rows)
                             if key != "grid" else rows[0][mode][key])
                       for key in rows[0][mode]} for mode in modes}
            report[case][version + "_file"] = rows[0]["file"]
            per = report[case][version]
            for mode in modes:
                per[mode]["ratio_to_periodic"] = per[mode]["ms"] / per["periodic"]["ms"]
        print(json.dumps({case: report[case]}, indent=1), flush=True)
    if args.out:
        with open(args.out + ".json", "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
