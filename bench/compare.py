"""Time rlcore beside its peers in one process, interleaved, and write a markdown table.

Usage (from the repository root)::

    python -m bench compare --shapes 64x256x256 256x256x256 --psf 32 --iterations 10 \
        --repeats 5 --out bench/results/cpu

Each round runs every contender once, in turn, on the same data; a first, untimed round
warms up (imports, plans, caches) and measures peak memory: the growth of the process's
resident set during the call (sampled every 0.5 ms by a thread, which would disturb the
timings), in image-sized float32 arrays. The table reports medians over the timed rounds
and ratios to rlcore measured in the same rounds.

The FFT floor is 2 rfftn+irfftn pairs per iteration of the image shape on all cores, in
two flavours measured in the same rounds: through the public ``scipy.fft`` API (a new
output array per call) and into preallocated outputs (pocketfft's ``out=``), the stricter.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

import rlcore


def gaussian_psf(n: int, sigma: float = 2.0) -> np.ndarray:
    g = np.exp(-0.5 * ((np.arange(n) - n // 2) / sigma) ** 2)
    psf = g[:, None, None] * g[None, :, None] * g[None, None, :]
    return (psf / psf.sum()).astype(np.float32)


def make_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Random positive structure blurred by nothing: values 1..101, float32."""
    rng = np.random.default_rng(seed)
    image = np.empty(shape, np.float32)
    for z in range(shape[0]):  # plane by plane: no float64 temporaries of the full size
        image[z] = rng.random(shape[1:], dtype=np.float32) * 100 + 1
    return image


class PeakRSS:
    """Resident-set growth during a ``with`` block, sampled every 0.5 ms."""

    def __init__(self) -> None:
        self.proc = psutil.Process()

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.0005)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.base


#: the model each contender computes, for the accuracy column: "periodic" = circular
#: convolution with the first estimate = the image (rlcore's default, RedLionfish, sdeconv);
#: "skimage" = zero boundary (linear convolution) with a first estimate of 0.5
MODEL = {"skimage": "skimage", "flowdec": None}  # None: no float64 reference of its model
#: (flowdec pads the volume to powers of 2 with its own boundary handling)

#: RedLionfish's OpenCL path keeps every array complex64 with work-groups of (1,1,1): on
#: PoCL (CPU) it takes ~14 s for 64x256x256, so it runs on cases up to this size only
OPENCL_PEER_MAX_VOXELS = 5e6


def _sdeconv(device: str) -> Callable | None:
    try:
        import torch
        from sdeconv.deconv import SRichardsonLucy
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None

    def run(im: np.ndarray, psf: np.ndarray, iterations: int) -> np.ndarray:
        # sdeconv wants the PSF on the image grid, centre at n // 2
        padded = np.zeros(im.shape, np.float32)
        padded[tuple(slice(n // 2 - p // 2, n // 2 - p // 2 + p) for n, p in
                     zip(im.shape, psf.shape))] = psf
        filt = SRichardsonLucy(torch.from_numpy(padded).to(device), niter=iterations, pad=0)
        out = filt(torch.from_numpy(np.asarray(im, np.float32)).to(device))
        if device == "cuda":
            torch.cuda.synchronize()
        return out.cpu().numpy()

    return run


def _redlionfish_opencl() -> Callable | None:
    import sys

    if "tensorflow" in sys.modules:
        # seen here: enumerating PoCL's OpenCL platform after TensorFlow is loaded kills the
        # process (SIGSEGV; both bring their own LLVM). Run the OpenCL peer in another process.
        return None
    try:
        import pyopencl as cl
        import RedLionfishDeconv.RLDeconv3DReiknaOCL as ocl
    except Exception:
        return None
    try:
        if not cl.get_platforms():
            return None
    except Exception:  # no ICD: pyopencl's wheel brings no platform
        return None
    return lambda im, psf, iterations: ocl.nonBlock_RLDeconvolutionReiknaOCL(
        im, psf, niter=iterations)


def _opencl_ffts() -> list[str]:
    try:
        import pyvkfft.opencl  # noqa: F401
    except Exception:
        return ["reikna"]
    return ["reikna", "vkfft"]


def _with_fft(fft: str, im: np.ndarray, psf: np.ndarray, iterations: int) -> np.ndarray:
    """rlcore's OpenCL backend with the FFT provider ``fft`` (RLCORE_OPENCL_FFT)."""
    old = os.environ.get("RLCORE_OPENCL_FFT")
    os.environ["RLCORE_OPENCL_FFT"] = fft
    try:
        return rlcore.deconvolve(im, psf, iterations, backend="opencl", boundary="periodic")
    finally:
        if old is None:
            del os.environ["RLCORE_OPENCL_FFT"]
        else:
            os.environ["RLCORE_OPENCL_FFT"] = old


class PeakDevice:
    """Peak GPU memory of a run: CuPy's pool (rlcore[cupy], cuFFT workspace included) or
    torch's allocator (sdeconv[cuda]); ``peak`` is None for host runs."""

    def __init__(self, name: str):
        self.name = name
        self.peak = None

    def __enter__(self) -> PeakDevice:
        if self.name == "rlcore[cupy]":
            import cupy as cp

            from rlcore.backends import cupy as cupy_backend

            cupy_backend.clear_plan_cache()
            cp.get_default_memory_pool().free_all_blocks()
            self._base = cp.get_default_memory_pool().used_bytes()
        elif self.name == "sdeconv[cuda]":
            import torch

            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc) -> None:
        if self.name == "rlcore[cupy]":
            import cupy as cp

            self.peak = cp.get_default_memory_pool().total_bytes() - self._base
        elif self.name == "sdeconv[cuda]":
            import torch

            self.peak = int(torch.cuda.max_memory_allocated())


def contenders(iterations: int, peers_max_voxels: float = float("inf"), voxels: int = 0
               ) -> dict[str, Callable[[np.ndarray, np.ndarray], object]]:
    """Every runnable contender: rlcore on each available backend, then the peers (those
    skipped above ``peers_max_voxels`` voxels, where they take minutes)."""
    out: dict[str, Callable] = {}
    for info in rlcore.available_backends():
        if not info.available or info.name == "array_api":
            continue
        if info.name == "opencl":  # one contender per FFT provider
            for fft in _opencl_ffts():
                out[f"rlcore[opencl-{fft}]"] = (
                    lambda im, psf, fft=fft: _with_fft(fft, im, psf, iterations))
            continue
        out[f"rlcore[{info.name}]"] = (
            lambda im, psf, name=info.name: rlcore.deconvolve(im, psf, iterations, backend=name,
                    boundary="periodic")
        )
    if voxels > peers_max_voxels:
        return out
    for device in ("cpu", "cuda"):
        run = _sdeconv(device)
        if run is not None:
            out[f"sdeconv[{device}]"] = lambda im, psf, run=run: run(im, psf, iterations)
    try:
        from flowdec import data as fd_data
        from flowdec import restoration as fd_restoration

        algo = {}

        def flowdec_run(im, psf):
            if im.ndim not in algo:  # TensorFlow graph built once per dimensionality
                algo[im.ndim] = fd_restoration.RichardsonLucyDeconvolver(im.ndim).initialize()
            acq = fd_data.Acquisition(data=np.asarray(im, np.float32),
                                      kernel=np.asarray(psf, np.float32))
            return algo[im.ndim].run(acq, niter=iterations).data

        out["flowdec"] = flowdec_run
    except ImportError:
        pass
    ocl = _redlionfish_opencl()
    if ocl is not None and voxels <= OPENCL_PEER_MAX_VOXELS:
        out["redlionfish-opencl"] = lambda im, psf: ocl(im, psf, iterations)
    try:
        from skimage.restoration import richardson_lucy as sk_rl

        out["skimage"] = lambda im, psf: sk_rl(im, psf, num_iter=iterations, clip=False)
    except ImportError:
        pass
    try:
        import logging

        import RedLionfishDeconv as rlf

        logging.getLogger().setLevel(logging.WARNING)
        out["redlionfish-cpu"] = lambda im, psf: rlf.doRLDeconvolutionFromNpArrays(
            im, psf, niter=iterations, method="cpu"
        )
    except ImportError:
        pass
    return out


def floors(shape: tuple[int, ...], iterations: int) -> dict[str, Callable]:
    import scipy.fft

    workers = len(os.sched_getaffinity(0))
    pairs = 2 * iterations

    def public(im, psf):
        for _ in range(pairs):
            scipy.fft.irfftn(scipy.fft.rfftn(im, workers=workers), s=shape, workers=workers)

    out = {"floor: scipy.fft pairs": public}
    try:
        from scipy.fft._pocketfft import pypocketfft as pf

        half = shape[:-1] + (shape[-1] // 2 + 1,)
        spec = np.empty(half, np.complex64)
        real = np.empty(shape, np.float32)
        axes = tuple(range(len(shape)))

        def prealloc(im, psf):
            for _ in range(pairs):
                pf.r2c(im, axes, True, 0, spec, workers)
                pf.c2c(spec, axes[:-1], False, 2, spec, workers)
                pf.c2r(spec, axes[-1:], shape[-1], False, 2, real, workers)

        out["floor: preallocated pairs"] = prealloc
    except ImportError:
        pass
    return out


def reference(image: np.ndarray, psf: np.ndarray, iterations: int, model: str) -> np.ndarray:
    """Float64 RL of the given model (numpy FFTs, independent of rlcore's code)."""
    h = psf.astype(np.float64)
    keep = tuple(min(p, n) for p, n in zip(h.shape, image.shape))  # centre-crop, as rlcore
    h = h[tuple(slice(p // 2 - k // 2, p // 2 - k // 2 + k) for p, k in zip(h.shape, keep))]
    h = h / h.sum()
    y = image.astype(np.float64)
    if model == "skimage":  # zero boundary: pad by the PSF size, object zero outside
        shape = tuple(n + p - 1 for n, p in zip(y.shape, h.shape))
        region = tuple(slice(0, n) for n in y.shape)
        x = np.zeros(shape)
        x[region] = 0.5
        data = np.zeros(shape)
        data[region] = y
    else:
        shape, region, x, data = y.shape, tuple(slice(None) for _ in y.shape), y.copy(), y
    placed = np.zeros(shape)
    placed[tuple(slice(0, p) for p in h.shape)] = h
    placed = np.roll(placed, [-(p // 2) for p in h.shape], axis=tuple(range(h.ndim)))
    otf = np.fft.rfftn(placed)
    axes = tuple(range(len(shape)))
    for _ in range(iterations):
        hx = np.fft.irfftn(np.fft.rfftn(x) * otf, s=shape, axes=axes)
        ratio = np.divide(data, hx, out=np.zeros(shape), where=hx > 1e-12)
        x *= np.fft.irfftn(np.fft.rfftn(ratio) * np.conj(otf), s=shape, axes=axes)
    return x[region]


def lls_case(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The real lattice light-sheet stack (88, 320, 481) with its measured PSF: camera
    offsets removed (image 98, PSF median), PSF cropped around its peak (61, 64, 64)."""
    import tifffile

    folder = data / "lls_pycudadecon"
    image = np.clip(tifffile.imread(folder / "im_deskewed.tif").astype(np.float32) - 98, 0, None)
    psf = tifffile.imread(folder / "psf.tif").astype(np.float32)
    psf = np.clip(psf - np.median(psf), 0, None)
    peak = np.unravel_index(np.argmax(psf), psf.shape)
    psf = psf[:, peak[1] - 32:peak[1] + 32, peak[2] - 32:peak[2] + 32]
    return image, psf / psf.sum()


def run_case(shape, psf_size, iterations, repeats, skip=(), peers_max_voxels=float("inf"),
             accuracy_max_voxels=2e7, data=None):
    if data is not None:
        image, psf = data
        shape = image.shape
    else:
        image = make_image(shape)
        psf = gaussian_psf(psf_size)
    voxels = int(np.prod(shape))
    runs = {**contenders(iterations, peers_max_voxels, voxels), **floors(shape, iterations)}
    runs = {k: v for k, v in runs.items() if not any(s in k for s in skip)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    memory: dict[str, int] = {}
    device_memory: dict[str, int] = {}
    accuracy: dict[str, float] = {}
    refs: dict[str, np.ndarray] = {}
    for name, fn in runs.items():  # warm-up round, untimed: peak memory is sampled here
        with PeakRSS() as mem, PeakDevice(name) as dev:
            result = fn(image, psf)
        memory[name] = mem.growth
        if dev.peak is not None:
            device_memory[name] = dev.peak
        model = MODEL.get(name, "periodic")
        if (result is not None and model is not None and not name.startswith("floor")
                and voxels <= accuracy_max_voxels):
            if model not in refs:
                refs[model] = reference(image, psf, iterations, model)
            r = np.asarray(result, dtype=np.float64)
            # RedLionfish pads an odd last axis and returns the padded array: compare the image
            r = r[tuple(slice(0, n) for n in image.shape)]
            accuracy[name] = float(np.linalg.norm(r - refs[model]) / np.linalg.norm(refs[model]))
        del result
    for _ in range(repeats):  # timed rounds, no sampling thread competing for the cores
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn(image, psf)
            times[name].append(time.perf_counter() - t0)
    accuracy["_device_memory"] = device_memory  # carried with the case (see table())
    return image.nbytes, times, memory, accuracy


def machine() -> dict:
    import scipy

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": platform.processor() or "",
        "cores": len(os.sched_getaffinity(0)),
        "memory_GiB": round(psutil.virtual_memory().total / 2**30, 1),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "rlcore": rlcore.__version__,
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    for mod in ("skimage", "RedLionfishDeconv", "cupy", "sdeconv", "torch", "pyopencl",
                "flowdec", "tensorflow"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            pass
    return info


def table(results: list[dict], baseline: str = "rlcore[numpy]") -> str:
    lines = []
    for case in results:
        t = case["times"]
        base = statistics.median(t[baseline]) if baseline in t else None
        lines.append(f"\n### {case['shape']} image, {case['psf']}^3 PSF, "
                     f"{case['iterations']} iterations, {case['repeats']} interleaved rounds\n")
        dev_mem = case.get("accuracy", {}).get("_device_memory", {})
        lines.append(f"| run | median s | min s | time / {baseline} | peak RSS growth "
                     "(image arrays) | peak GPU memory (image arrays) | rel. L2 to float64 "
                     "reference (model) |")
        lines.append("|---|---:|---:|---:|---:|---:|---|")
        for name, values in t.items():
            med = statistics.median(values)
            ratio = f"{med / base:.2f}" if base else "-"
            mem = case["memory"][name] / case["image_bytes"]
            acc = case.get("accuracy", {}).get(name)
            acc = acc if isinstance(acc, float) else None
            acc_text = f"{acc:.2e} ({MODEL.get(name, 'periodic')})" if acc is not None else "-"
            gpu = (f"{dev_mem[name] / case['image_bytes']:.2f}" if name in dev_mem else "-")
            lines.append(f"| {name} | {med:.3f} | {min(values):.3f} | {ratio} | {mem:.2f} | "
                         f"{gpu} | {acc_text} |")
        if base:
            per_round = {
                name: statistics.median(
                    [a / b for a, b in zip(t[baseline], values)]
                )
                for name, values in t.items() if name != baseline
            }
            pretty = ", ".join(f"{k}: {v:.2f}" for k, v in per_round.items())
            lines.append(f"\nMedian of per-round ratios {baseline} / run: {pretty}\n")
    return "\n".join(lines)


def ground_truth(data: Path, iterations: int) -> str:
    """NRMSE to the truth of every contender on the EPFL bars set (flowdec_epfl)."""
    import tifffile

    folder = data / "flowdec_epfl" / "bars-25pct"
    image = tifffile.imread(folder / "data.tif").astype(np.float32)
    psf = tifffile.imread(folder / "kernel.tif").astype(np.float32)
    truth = tifffile.imread(folder / "actual.tif").astype(np.float64)
    lines = [f"\n### NRMSE to ground truth, EPFL bars-25pct, {iterations} iterations\n",
             "NRMSE = ||s x - t|| / ||t||, s = flux of the truth / flux of x.\n",
             "| run | NRMSE |", "|---|---:|"]
    scale = float(image.max())
    for name, fn in contenders(iterations).items():
        # scikit-image clips nothing with clip=False but expects data near [0, 1]
        x = np.asarray(fn(image / scale if name == "skimage" else image, psf), np.float64)
        x *= truth.sum() / x.sum()
        lines.append(f"| {name} | {np.linalg.norm(x - truth) / np.linalg.norm(truth):.4f} |")
    return "\n".join(lines)


def sweep(sizes: list[int], psf_size: int, iterations: int, repeats: int,
          peers_max_voxels: float, out: Path | None, skip: tuple[str, ...] = ()) -> str:
    """Time per run against voxels, cubes of edge ``n`` for n in ``sizes``."""
    rows = []
    for n in sizes:
        shape = (n, n, n)
        _, times, _, _ = run_case(shape, min(psf_size, n), iterations, repeats,
                                  skip=("floor", *skip), peers_max_voxels=peers_max_voxels,
                                  accuracy_max_voxels=0)
        rows.append({"shape": shape, "voxels": n**3,
                     "times": {k: statistics.median(v) for k, v in times.items()}})
        print(rows[-1], flush=True)
    names = sorted({k for r in rows for k in r["times"]})
    lines = [f"\n### Size sweep, {psf_size}^3 PSF, {iterations} iterations, medians of "
             f"{repeats}\n", "| voxels | " + " | ".join(names) + " | rlcore s / (N log2 N) ns |",
             "|---:|" + "---:|" * (len(names) + 1)]
    for r in rows:
        cells = [f"{r['times'][k]:.3f}" if k in r["times"] else "-" for k in names]
        base = r["times"].get("rlcore[cupy]", r["times"].get("rlcore[numpy]"))
        nlogn = r["voxels"] * np.log2(r["voxels"])
        lines.append(f"| {r['voxels']:.2e} | " + " | ".join(cells) +
                     f" | {base / nlogn * 1e9:.2f} |")
    if out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for k in names:
            pts = [(r["voxels"], r["times"][k]) for r in rows if k in r["times"]]
            ax.loglog(*zip(*pts), "o-", label=k)
        v = np.array([r["voxels"] for r in rows], float)
        ref = [r["times"].get("rlcore[cupy]", r["times"].get("rlcore[numpy]")) for r in rows]
        ax.loglog(v, ref[-1] * v * np.log2(v) / (v[-1] * np.log2(v[-1])), "k--",
                  label="N log N through the largest rlcore point")
        ax.set_xlabel("voxels")
        ax.set_ylabel(f"seconds for {iterations} iterations")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out.with_name(out.name + "-sweep.png"), dpi=90)
        plt.close(fig)
        out.with_name(out.name + "-sweep.json").write_text(json.dumps(rows, indent=1))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", help="rlcore beside its peers, interleaved")
    c.add_argument("--shapes", nargs="*", default=["64x256x256", "256x256x256"],
                   help="ZxYxX cases, or 'lls' for the real lattice light-sheet stack")
    c.add_argument("--psf", type=int, default=32)
    c.add_argument("--iterations", type=int, default=10)
    c.add_argument("--repeats", type=int, default=5)
    c.add_argument("--skip", nargs="*", default=[], help="skip runs whose name contains this")
    c.add_argument("--peers-max-voxels", type=float, default=float("inf"),
                   help="run the peers only on cases up to this many voxels")
    c.add_argument("--data", type=Path, default=None,
                   help="../shared/data: also NRMSE to the EPFL bars ground truth")
    c.add_argument("--sweep", type=int, nargs="*", default=[],
                   help="also a size sweep over cubes of these edges")
    c.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.json")
    args = p.parse_args(argv)

    results = []
    for text in args.shapes:
        real = None
        if text == "lls":
            if args.data is None:
                p.error("--shapes lls needs --data ../shared/data")
            real = lls_case(args.data)
            shape, psf = real[0].shape, real[1].shape[0]
        else:
            shape = tuple(int(v) for v in text.split("x"))
            psf = 64 if shape == (64, 1024, 1024) else args.psf
        nbytes, times, memory, accuracy = run_case(shape, psf, args.iterations, args.repeats,
                                                   args.skip, args.peers_max_voxels, data=real)
        results.append({"shape": text, "psf": psf, "iterations": args.iterations,
                        "repeats": args.repeats, "image_bytes": nbytes, "times": times,
                        "memory": memory, "accuracy": accuracy})
        print(table(results[-1:]), flush=True)
    info = machine()
    report = ["# rlcore comparison", "", "Machine: " + ", ".join(f"{k} {v}" for k, v in
                                                               info.items()), table(results)]
    if args.data is not None:
        report.append(ground_truth(args.data, 50))
        report.append("\nscikit-image's difference to the float64 reference of its own model "
                      "comes from even-sized PSFs: `convolve(mode=\"same\")` centres them at "
                      "(n-1)//2 and its flipped-kernel adjoint is then off by one voxel; with "
                      "odd PSFs rlcore.richardson_lucy equals it to 1e-4 "
                      "(tests/test_skimage_compat.py).")
        print(report[-1], flush=True)
    if args.sweep:
        report.append(sweep(args.sweep, args.psf, args.iterations, max(1, args.repeats // 2),
                            args.peers_max_voxels, args.out, tuple(args.skip)))
        print(report[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text("\n".join(report) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps({"machine": info,
                                                             "cases": results}, indent=1))
        print(f"wrote {args.out.with_suffix('.md')}")
    return 0
