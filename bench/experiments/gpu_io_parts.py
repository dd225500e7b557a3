"""Where NumPy in / NumPy out spends its time on a GPU backend beyond the iterations
(issue 32): each stage of ``deconvolve`` / ``Deconvolver.run`` timed, synchronised, beside
the raw copy rates (pinned, staged, fresh host pages, host memcpy on threads).

``python3 bench/experiments/gpu_io_parts.py [SHAPE] [PSF]`` (default 256x256x256 32)
"""

from __future__ import annotations

import collections
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import rlcore
import rlcore.deconvolver as dmod
import rlcore.placement as pmod
from rlcore.registry import get_backend


def _median_ms(fn, sync, repeats=7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _rates(cp, be, image, sync) -> dict:
    host = image
    dev = cp.asarray(host)
    pinned = cp.cuda.alloc_pinned_memory(host.nbytes)
    ph = np.frombuffer(pinned, np.float32, host.size).reshape(host.shape)
    ph[...] = host
    touched = np.empty_like(host)
    touched[...] = 1
    pool = ThreadPoolExecutor(8)

    def threaded_copy(dst, src, k=8):
        d, s = dst.reshape(-1), src.reshape(-1)
        step = -(-d.size // k)
        list(pool.map(lambda i: np.copyto(d[i:i + step], s[i:i + step]),
                      range(0, d.size, step)))

    out = {
        "pinned up": lambda: dev.set(ph),
        "pinned down": lambda: dev.get(out=ph),
        "cupy asarray (pageable)": lambda: cp.asarray(host),
        "cupy get (fresh)": lambda: dev.get(),
        "be.upload (staged)": lambda: be.upload(host),
        "be.to_host (staged, fresh)": lambda: be.to_host(dev),
        "np.empty + touch": lambda: np.empty_like(host).fill(0),
        "np.empty + touch 8 threads": lambda: threaded_copy(np.empty_like(host), touched),
        "host memcpy 1 thread": lambda: np.copyto(touched, host),
        "host memcpy 8 threads": lambda: threaded_copy(touched, host),
        "astype float32 from uint16": lambda: host.astype(np.uint16).astype(np.float32),
    }
    return {k: _median_ms(fn, sync) for k, fn in out.items()}


def _stages(cp, psf, image, n, boundary, sync) -> dict:
    """Synchronised time in each stage of one deconvolve call (after a warm-up)."""
    totals: dict = collections.defaultdict(float)
    patched = []

    def wrap(owner, name, label):
        fn = getattr(owner, name)

        def timed(*a, **k):
            sync()
            t0 = time.perf_counter()
            r = fn(*a, **k)
            sync()
            totals[label] += time.perf_counter() - t0
            return r

        setattr(owner, name, timed)
        patched.append((owner, name, fn))

    wrap(dmod, "source", "upload (source)")
    wrap(dmod, "as_image", "checks (as_image)")
    wrap(dmod.Deconvolver, "__init__", "plan (Deconvolver.__init__)")
    wrap(dmod.Deconvolver, "_on_grid", "data + estimate on grid")
    wrap(dmod, "richardson_lucy", "iterations")
    wrap(pmod.Placement, "result", "finite check + crop + download")
    try:
        rlcore.deconvolve(image, psf, n, backend="cupy", boundary=boundary)
        totals.clear()
        sync()
        t0 = time.perf_counter()
        rlcore.deconvolve(image, psf, n, backend="cupy", boundary=boundary)
        sync()
        wall = time.perf_counter() - t0
    finally:
        for owner, name, fn in patched:
            setattr(owner, name, fn)
    out = {k: v * 1e3 for k, v in totals.items()}
    out["wall (synchronised stages)"] = wall * 1e3
    out["wall (plain)"] = _median_ms(
        lambda: rlcore.deconvolve(image, psf, n, backend="cupy", boundary=boundary), sync)
    return out


def main() -> None:
    import cupy as cp

    shape = tuple(int(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "256x256x256")
                  .split("x"))
    p = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    z, y, x = np.mgrid[:p, :p, :p] - p // 2
    psf = np.exp(-(z * z / 18.0 + (y * y + x * x) / 8.0)).astype(np.float32)
    image = np.random.default_rng(0).poisson(50.0, shape).astype(np.float32)
    sync = cp.cuda.Device().synchronize
    be = get_backend("cupy")
    print(f"{shape}, PSF {p}^3, {image.nbytes / 1e6:.0f} MB")
    for k, v in _rates(cp, be, image, sync).items():
        print(f"  {k:34s} {v:8.2f} ms  {image.nbytes / v / 1e6:6.1f} GB/s")
    for boundary in ("periodic", "non-circulant-half"):
        for n in (0, 10):
            print(f" deconvolve numpy, {boundary}, {n} iterations")
            for k, v in _stages(cp, psf, image, n, boundary, sync).items():
                print(f"  {k:34s} {v:8.2f} ms")


if __name__ == "__main__":
    main()
