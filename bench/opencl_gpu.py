"""The OpenCL backend on a GPU platform, on the CuPy issue's two cases (if one is present).

``python -m bench.opencl_gpu`` prints every OpenCL platform/device, then for a GPU device
the median time of 10 iterations, numpy in -> numpy out, for (256,256,256) with a 32^3 PSF
and (64,1024,1024) with a 64^3 PSF, beside the CuPy backend when it works.
"""

from __future__ import annotations

import time

import numpy as np

import rlcore


def _psf(n: int) -> np.ndarray:
    g = np.exp(-0.5 * ((np.arange(n) - n // 2) / (n / 8)) ** 2)
    return (g[:, None, None] * g[None, :, None] * g[None, None, :]).astype(np.float32)


def main() -> int:
    infos = {b.name: b for b in rlcore.available_backends()}
    ocl = infos["opencl"]
    print("opencl:", ocl.devices if ocl.available else ocl.reason)
    gpu = [d for d in ocl.devices if "(GPU" in d]
    if not gpu:
        print("no OpenCL GPU device here")
        return 0
    rng = np.random.default_rng(0)
    for shape, p in (((256, 256, 256), 32), ((64, 1024, 1024), 64)):
        image = (rng.random(shape, np.float32) * 100 + 1).astype(np.float32)
        runs = {"opencl": dict(backend="opencl", device=gpu[0].split("]")[0][1:])}
        if infos["cupy"].available:
            runs["cupy"] = dict(backend="cupy")
        for name, kw in runs.items():
            rlcore.deconvolve(image, _psf(p), 10, **kw)  # warm-up: compile, plans
            times = []
            for _ in range(5):
                t = time.perf_counter()
                rlcore.deconvolve(image, _psf(p), 10, **kw)
                times.append(time.perf_counter() - t)
            print(f"{name} {shape} psf {p}^3: median {np.median(times) * 1e3:.1f} ms "
                  f"(min {min(times) * 1e3:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
