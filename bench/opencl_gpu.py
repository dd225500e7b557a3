"""The OpenCL backend on a GPU beside CuPy and RedLionfish (issue 17's two cases).

``python -m bench.opencl_gpu --out bench/results/opencl-gpu-h200``

For the first OpenCL GPU device (NVIDIA's driver on the GPU machine; see the README for its
ICD file): 10 iterations, numpy in -> numpy out, of (256, 256, 256) with a 32^3 PSF and
(64, 1024, 1024) with a 64^3 PSF, for rlcore[opencl] with each FFT provider (VkFFT,
reikna), rlcore[cupy] and RedLionfish's OpenCL path, timed in one process in interleaved
rounds (median; a warm-up run first). Also, per configuration:

* peak device memory of one run, in image-sized float32 arrays: the device's used memory
  (``cudaMemGetInfo``, all contexts of the device) sampled every ~0.2 ms by a thread, over
  a baseline taken with FFT plans and pools dropped;
* the stages of one OpenCL run: upload, the iterations, download;
* agreement with the numpy backend (rel. L2, 10 iterations) on a smaller image for every
  boundary mode, with and without acceleration.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import rlcore
import rlcore.registry
from rlcore.boundary import BOUNDARIES

CASES = (((256, 256, 256), 32), ((64, 1024, 1024), 64))


def gaussian_psf(n: int) -> np.ndarray:
    g = np.exp(-0.5 * ((np.arange(n) - n // 2) / (n / 8)) ** 2)
    return (g[:, None, None] * g[None, :, None] * g[None, None, :]).astype(np.float32)


def phantom(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(shape, np.float32) * 100 + 1).astype(np.float32)


class PeakMemory:
    """Used device memory over a baseline, sampled by a thread (``cudaMemGetInfo``)."""

    def __init__(self, mem_info: Callable[[], tuple[int, int]]):
        self.mem_info = mem_info

    def __enter__(self):
        gc.collect()
        free, total = self.mem_info()
        self.base, self.peak, self.stop = total - free, 0, threading.Event()

        def sample():
            while not self.stop.is_set():
                free, total = self.mem_info()
                self.peak = max(self.peak, total - free - self.base)
                time.sleep(0.0002)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        free, total = self.mem_info()
        self.peak = max(self.peak, total - free - self.base)


def runners(device: str) -> dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]]:
    """name -> run(image, psf, iterations) for every configuration that works here."""
    from rlcore.backends import opencl

    def ocl(fft: str):
        def run(image, psf, n, **kw):
            os.environ[opencl.ENV_FFT] = fft
            return rlcore.deconvolve(image, psf, n, backend="opencl", device=device, **kw)
        return run

    out = {"opencl-vkfft": ocl("vkfft"), "opencl-reikna": ocl("reikna")}
    try:
        import pyvkfft.opencl  # noqa: F401
    except Exception as exc:
        print("no VkFFT:", exc)
        del out["opencl-vkfft"]
    if _info("cupy").available:
        out["cupy"] = lambda image, psf, n, **kw: rlcore.deconvolve(image, psf, n,
                                                                    backend="cupy", **kw)
    try:
        from RedLionfishDeconv import doRLDeconvolutionFromNpArrays

        out["redlionfish-opencl"] = lambda image, psf, n: doRLDeconvolutionFromNpArrays(
            image, psf, niter=n, method="gpu", resAsUint8=False)
    except ImportError as exc:
        print("no RedLionfish:", exc)
    return out


def _info(name: str):
    return {b.name: b for b in rlcore.available_backends()}[name]


def dropped_caches() -> None:
    """Drop FFT plans and pooled memory of both GPU backends (for a memory baseline)."""
    from rlcore.backends import opencl

    opencl.clear_caches()
    try:
        import cupy as cp

        from rlcore.backends import cupy as cupy_backend

        cupy_backend.clear_plan_cache()
        cp.get_default_memory_pool().free_all_blocks()
    except ImportError:
        pass
    gc.collect()


def stages(device: str, fft: str, image: np.ndarray, psf: np.ndarray, n: int) -> dict:
    """One OpenCL run through a plan made beforehand (ms): the whole ``run``, and an
    upload and a download of the image on their own."""
    from rlcore.backends import opencl

    os.environ[opencl.ENV_FFT] = fft
    be = rlcore.registry.get_backend("opencl", device=device)
    with rlcore.Deconvolver(psf, image.shape, n, backend=be, boundary="periodic") as plan:
        plan.run(image)  # warm
        t0 = time.perf_counter()
        plan.run(image)
        t1 = time.perf_counter()
        x = be.to_device(image)
        be.queue.finish()
        t2 = time.perf_counter()
        be.to_host(x)
        t3 = time.perf_counter()
    return {"planned_run_ms": 1e3 * (t1 - t0), "upload_ms": 1e3 * (t2 - t1),
            "download_ms": 1e3 * (t3 - t2)}


def agreement(run_by_name: dict, shape=(40, 96, 80), psf_n=15) -> dict:
    image, psf = phantom(shape, 1), gaussian_psf(psf_n)
    out = {}
    for boundary in BOUNDARIES:
        for acc in (False, "biggs-andrews", "momentum"):
            ref = rlcore.deconvolve(image, psf, 10, backend="numpy", boundary=boundary,
                                    accelerate=acc)
            for name, run in run_by_name.items():
                if name.startswith("redlionfish"):
                    continue
                got = run(image, psf, 10, boundary=boundary, accelerate=acc)
                rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
                out[f"{name} {boundary} accelerate={acc}"] = rel
    return out


def boundaries(runs: dict, mem_info, rounds: int, n: int) -> dict:
    """Issue 19 on the GPU backends: non-circulant (full, half) against periodic, time
    (median of ``rounds``, interleaved) and peak device memory in grid-sized arrays."""
    from rlcore.boundary import make_grid

    out: dict = {}
    for shape, p in CASES:
        image, psf = phantom(shape), gaussian_psf(p)
        key = "x".join(map(str, shape)) + f" psf {p}^3"
        rows: dict = {}
        for name, run in runs.items():
            if name.startswith("redlionfish") or name == "opencl-reikna":
                continue
            be = rlcore.registry.get_backend(name.split("-")[0]) if name == "cupy" else None
            for mode in ("periodic", "non-circulant", "non-circulant-half"):
                run(image, psf, n, boundary=mode)  # warm
                times = []
                for _ in range(rounds):
                    t = time.perf_counter()
                    run(image, psf, n, boundary=mode)
                    times.append(time.perf_counter() - t)
                row = {"median_ms": 1e3 * float(np.median(times))}
                fast = be.fast_length if be is not None else \
                    rlcore.registry.get_backend("opencl").fast_length
                grid = make_grid(shape, psf.shape, mode, fast_len=fast).shape
                row["grid"] = list(grid)
                if mem_info is not None:
                    dropped_caches()
                    with PeakMemory(mem_info) as peak:
                        run(image, psf, n, boundary=mode)
                    row["peak_grid_arrays"] = peak.peak / (4 * math.prod(grid))
                    row["peak_image_arrays"] = peak.peak / (4 * math.prod(shape))
                rows[f"{name} {mode}"] = row
            for mode in ("non-circulant", "non-circulant-half"):
                r, base = rows[f"{name} {mode}"], rows[f"{name} periodic"]
                r["over_periodic"] = r["median_ms"] / base["median_ms"]
                r["per_grid_voxel_over_periodic"] = r["over_periodic"] * math.prod(shape) \
                    / math.prod(r["grid"])
        out[key] = rows
        print(key, json.dumps(rows, indent=1), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--skip", nargs="*", default=[], help="configurations to leave out")
    ap.add_argument("--no-agreement", action="store_true")
    ap.add_argument("--boundaries", action="store_true",
                    help="also non-circulant against periodic (issue 19)")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed table")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    ocl = _info("opencl")
    print("opencl:", ocl.devices if ocl.available else ocl.reason, flush=True)
    gpus = [d for d in ocl.devices if "(GPU" in d]
    if not gpus:
        print("no OpenCL GPU device here")
        return 0
    device = gpus[0].split("]")[0][1:]
    runs = {k: v for k, v in runners(device).items() if k not in args.skip}
    try:
        import cupy as cp

        mem_info = cp.cuda.runtime.memGetInfo
    except ImportError:
        mem_info = None
    report: dict = {"device": gpus[0], "platform": platform.platform(),
                    "iterations": args.iterations, "cases": {}}
    n = args.iterations
    for shape, p in CASES if not args.no_speed else ():
        image, psf = phantom(shape), gaussian_psf(p)
        key = "x".join(map(str, shape)) + f" psf {p}^3"
        times: dict[str, list[float]] = {name: [] for name in runs}
        for run in runs.values():
            run(image, psf, n)  # warm-up: compile, plans
        for _ in range(args.rounds):
            for name, run in runs.items():
                t = time.perf_counter()
                run(image, psf, n)
                times[name].append(time.perf_counter() - t)
        row: dict = {name: {"median_ms": 1e3 * float(np.median(t)),
                            "min_ms": 1e3 * min(t)} for name, t in times.items()}
        if mem_info is not None:
            for name, run in runs.items():
                dropped_caches()
                with PeakMemory(mem_info) as peak:
                    run(image, psf, n)
                row[name]["peak_image_arrays"] = peak.peak / (4 * math.prod(shape))
        for name in runs:
            if name.startswith("opencl"):
                row[name].update(stages(device, name.split("-")[1], image, psf, n))
        base = row.get("cupy", {}).get("median_ms")
        for name in runs:
            if base:
                row[name]["over_cupy"] = row[name]["median_ms"] / base
            if "redlionfish-opencl" in row:
                row[name]["redlionfish_over"] = (row["redlionfish-opencl"]["median_ms"]
                                                 / row[name]["median_ms"])
        report["cases"][key] = row
        print(key, json.dumps(row, indent=1), flush=True)
        dropped_caches()
    if args.boundaries:
        report["boundaries"] = boundaries(runs, mem_info, args.rounds, n)
    if not args.no_agreement:
        report["agreement_vs_numpy"] = agreement(
            {k: v for k, v in runs.items() if k != "redlionfish-opencl"})
        worst = max(report["agreement_vs_numpy"].items(), key=lambda kv: kv[1])
        print("agreement with numpy, worst:", worst, flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
