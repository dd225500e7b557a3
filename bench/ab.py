"""A/B of two rlcore installs: is this version slower than an earlier one?

``python -m bench.ab --base /tmp/base-site --backend numpy --shape 64x256x256``

Two versions cannot share one process, so each round starts one child per version,
alternately (base, new, base, new, ...); each child times ``rlcore.deconvolve`` (numpy in,
numpy out, 10 iterations, periodic, a 32^3 Gaussian PSF, Poisson data) after one warm-up
run and prints its median of ``--repeats``. ``--base`` is a folder holding the earlier
rlcore (``pip install --no-deps --target DIR <checkout>``); the new version is the one
this interpreter imports. Reports the medians over rounds and their ratio.
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
import json, statistics, sys, time
import numpy as np
import rlcore
shape = tuple(int(n) for n in sys.argv[1].split("x"))
backend, repeats = sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
image = rng.poisson(50.0, shape).astype(np.float32)
z, y, x = np.mgrid[-16:16, -16:16, -16:16]
psf = np.exp(-(z * z / 18.0 + (y * y + x * x) / 8.0)).astype(np.float32)

def sync():
    if backend == "cupy":
        import cupy
        cupy.cuda.Device().synchronize()

rlcore.deconvolve(image, psf, 10, backend=backend, boundary="periodic")
times = []
for _ in range(repeats):
    sync(); t0 = time.perf_counter()
    rlcore.deconvolve(image, psf, 10, backend=backend, boundary="periodic")
    sync(); times.append(time.perf_counter() - t0)
print(json.dumps({"median": statistics.median(times), "file": rlcore.__file__}))
"""


def child(pythonpath: str | None, shape: str, backend: str, repeats: int) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as cwd:  # not the checkout: its rlcore/ is unbuilt
        out = subprocess.run([sys.executable, "-c", CHILD, shape, backend, str(repeats)],
                             env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="folder with the earlier rlcore")
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--shape", default="64x256x256")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    base, new = [], []
    for _ in range(args.rounds):
        b = child(args.base, args.shape, args.backend, args.repeats)
        n = child(None, args.shape, args.backend, args.repeats)
        base.append(b["median"])
        new.append(n["median"])
    report = {"backend": args.backend, "shape": args.shape, "base_s": base, "new_s": new,
              "base_file": b["file"], "new_file": n["file"],
              "new_over_base": statistics.median(new) / statistics.median(base)}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
