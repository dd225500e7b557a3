"""NumPy in, NumPy out on a GPU backend, each figure beside its floor (issue 32).

``python -m bench.gpu_io --backend cupy [--out FILE.json]``

For each case (10 iterations, 256^3 with a 32^3 PSF and 64 x 1024^2 with a 64^3 PSF), in
one process, interleaved, medians of ``--repeats`` rounds:

* ``pinned up`` / ``pinned down``: the image's bytes (float32) host <-> device from
  page-locked memory, the link's rate;
* ``resident``: ``deconvolve`` on a device array, device array out (no transfer);
* ``numpy``: ``deconvolve`` NumPy in and out, as a user with data on disk calls it;
* ``plan resident`` / ``plan numpy``: a reused :class:`rlcore.Deconvolver`;
* ``floor`` = resident + pinned up + pinned down; each NumPy figure over its floor;
* the default boundary (non-circulant-half) against periodic, resident.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import rlcore

CASES = {"256^3, 32^3 PSF": ((256, 256, 256), 32), "64x1024^2, 64^3 PSF": ((64, 1024, 1024), 64)}


def _psf(n: int) -> np.ndarray:
    z, y, x = np.mgrid[:n, :n, :n] - n // 2
    return np.exp(-(z * z / 18.0 + (y * y + x * x) / 8.0)).astype(np.float32)


def _case(shape, p, n, be, repeats, timed) -> dict:
    """Interleaved medians (ms) of one case, and the ratios to the floors."""
    import cupy as cp

    rng = np.random.default_rng(0)
    image = rng.poisson(50.0, shape).astype(np.float32)
    psf = _psf(p)
    dev = cp.asarray(image)
    pinned = cp.cuda.alloc_pinned_memory(image.nbytes)
    host = np.frombuffer(pinned, np.float32, image.size).reshape(shape)
    host[...] = image
    plan = rlcore.Deconvolver(psf, shape, n, backend=be, boundary="periodic")
    half = rlcore.Deconvolver(psf, shape, n, backend=be, boundary="non-circulant-half")
    runs = {
        "pinned up": lambda: dev.set(host),
        "pinned down": lambda: dev.get(out=host),
        "resident": lambda: rlcore.deconvolve(dev, psf, n, backend=be, boundary="periodic"),
        "numpy": lambda: rlcore.deconvolve(image, psf, n, backend=be, boundary="periodic"),
        "plan resident": lambda: plan.run(dev),
        "plan numpy": lambda: plan.run(image),
        "half resident": lambda: half.run(dev),
        "default numpy": lambda: rlcore.deconvolve(image, psf, n, backend=be),
    }
    for fn in runs.values():
        fn()  # warm-up: plans, kernels, pools
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(timed(fn))
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    transfers = med["pinned up"] + med["pinned down"]
    med["floor"] = med["resident"] + transfers
    med["plan floor"] = med["plan resident"] + transfers
    med["numpy / floor"] = med["numpy"] / med["floor"]
    med["plan numpy / floor"] = med["plan numpy"] / med["plan floor"]
    med["half / periodic (plan resident)"] = med["half resident"] / med["plan resident"]
    med["pinned GB/s"] = 2 * image.nbytes / transfers / 1e6
    return med


def main(argv: list[str] | None = None) -> int:
    import cupy as cp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cupy")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    n, be = args.iterations, args.backend

    def timed(fn) -> float:
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        fn()
        cp.cuda.Device().synchronize()
        return time.perf_counter() - t0

    report = {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
              "iterations": n, "cases": {}}
    for name, (shape, p) in CASES.items():
        med = _case(shape, p, n, be, args.repeats, timed)
        report["cases"][name] = med
        print(name)
        for k, v in med.items():
            print(f"  {k:34s} {v:9.3f}")
        cp.get_default_memory_pool().free_all_blocks()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
