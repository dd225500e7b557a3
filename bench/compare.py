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


def contenders(iterations: int) -> dict[str, Callable[[np.ndarray, np.ndarray], object]]:
    """Every runnable contender: rlcore on each available backend, then the peers."""
    out: dict[str, Callable] = {}
    for info in rlcore.available_backends():
        if info.available and info.name not in ("array_api",):
            out[f"rlcore[{info.name}]"] = (
                lambda im, psf, name=info.name: rlcore.deconvolve(im, psf, iterations, backend=name)
            )
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


def run_case(shape, psf_size, iterations, repeats, skip=()):
    image = make_image(shape)
    psf = gaussian_psf(psf_size)
    runs = {**contenders(iterations), **floors(shape, iterations)}
    runs = {k: v for k, v in runs.items() if not any(s in k for s in skip)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    memory: dict[str, int] = {}
    for name, fn in runs.items():  # warm-up round, untimed: peak memory is sampled here
        with PeakRSS() as mem:
            fn(image, psf)
        memory[name] = mem.growth
    for _ in range(repeats):  # timed rounds, no sampling thread competing for the cores
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn(image, psf)
            times[name].append(time.perf_counter() - t0)
    return image.nbytes, times, memory


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
    for mod in ("skimage", "RedLionfishDeconv", "cupy"):
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
        lines.append(f"| run | median s | min s | time / {baseline} | peak RSS growth "
                     "(image arrays) |")
        lines.append("|---|---:|---:|---:|---:|")
        for name, values in t.items():
            med = statistics.median(values)
            ratio = f"{med / base:.2f}" if base else "-"
            mem = case["memory"][name] / case["image_bytes"]
            lines.append(f"| {name} | {med:.3f} | {min(values):.3f} | {ratio} | {mem:.2f} |")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", help="rlcore beside its peers, interleaved")
    c.add_argument("--shapes", nargs="+", default=["64x256x256", "256x256x256"])
    c.add_argument("--psf", type=int, default=32)
    c.add_argument("--iterations", type=int, default=10)
    c.add_argument("--repeats", type=int, default=5)
    c.add_argument("--skip", nargs="*", default=[], help="skip runs whose name contains this")
    c.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.json")
    args = p.parse_args(argv)

    results = []
    for text in args.shapes:
        shape = tuple(int(v) for v in text.split("x"))
        nbytes, times, memory = run_case(shape, args.psf, args.iterations, args.repeats,
                                         args.skip)
        results.append({"shape": text, "psf": args.psf, "iterations": args.iterations,
                        "repeats": args.repeats, "image_bytes": nbytes, "times": times,
                        "memory": memory})
        print(table(results[-1:]), flush=True)
    info = machine()
    report = ["# rlcore comparison", "", "Machine: " + ", ".join(f"{k} {v}" for k, v in
                                                               info.items()), table(results)]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text("\n".join(report) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps({"machine": info,
                                                             "cases": results}, indent=1))
        print(f"wrote {args.out.with_suffix('.md')}")
    return 0
