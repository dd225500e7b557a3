"""Blocked GPU runs on volumes larger than the GPU, and the throughput of several GPUs.

``python -m bench.gpu_blocks --out bench/results/gpu-blocks`` (CuPy);
``python -m bench.gpu_blocks --backend opencl --compare-with cupy --factor 1.03``
(OpenCL blocks, their checksum and a smaller blocked result against CuPy's)

* unblocked throughput (voxels x iterations / s, numpy in -> numpy out) on a volume that
  fits;
* blocked throughput on a volume of at least ``--factor`` x the GPU's memory (float32),
  read lazily from a periodically tiled phantom (the host holds one tile, not the volume)
  and written to a sink that keeps a checksum, so neither needs the volume's RAM;
* with several GPUs, the same blocked volume on 1 GPU and on all of them.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

import rlcore
import rlcore.registry
from rlcore.blocks import _runs


class TiledVolume:
    """A lazy (Z, Y, X) float32 volume: ``tile`` repeated along Z (Y, X = the tile's);
    slicing copies only the voxels asked for."""

    def __init__(self, tile: np.ndarray, z: int):
        self.tile = tile
        self.shape = (z,) + tile.shape[1:]
        self.chunks = tile.shape  # reads are cut at tile boundaries: each one is a view
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __getitem__(self, key):
        zs, ys, xs = key
        idx = np.arange(zs.start, zs.stop) % self.tile.shape[0]
        runs = _runs(idx)
        if len(runs) == 1 and not runs[0][2]:  # one period: a view, as NumPy slicing
            return self.tile[runs[0][0], ys, xs]
        out = np.empty((len(idx), ys.stop - ys.start, xs.stop - xs.start), np.float32)
        for src, dst, flip in _runs(idx):
            part = self.tile[src, ys, xs]
            out[dst] = part[::-1] if flip else part
        return out


class Sink:
    """Takes result blocks; keeps their count, a checksum of the voxels whose global
    indices are all multiples of 16 (the same voxels whatever the block plan) and
    finiteness."""

    def __init__(self, shape):
        import threading

        self.lock = threading.Lock()  # writer threads of several GPUs
        self.shape = shape
        self.checksum = 0.0
        self.voxels = 0
        self.finite = True

    def __setitem__(self, key, value):
        sample = value[tuple(slice((-k.start) % 16, None, 16) for k in key)]
        total = float(sample.sum(dtype=np.float64))
        finite = bool(np.isfinite(sample).all())
        with self.lock:
            self.checksum += total
            self.finite &= finite
            self.voxels += value.size


def phantom_tile(shape) -> np.ndarray:
    """Smooth positive structure plus sparse bright points (cheap to make)."""
    from concurrent.futures import ThreadPoolExecutor

    z, y, x = (np.arange(n, dtype=np.float32) for n in shape)
    tile = np.empty(shape, np.float32)
    plane = np.cos(y / 13)[:, None] * np.sin(x / 11)[None]

    def fill(i: int) -> None:  # slab by slab: little temporary memory
        np.multiply(plane, np.float32(40 * np.sin(z[i] / 7)), out=tile[i])
        tile[i] += 100

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fill, range(shape[0])))
    rng = np.random.default_rng(0)
    idx = tuple(rng.integers(0, n, 20000) for n in shape)
    tile[idx] += 5000
    return tile


def gaussian_psf(n: int, sigma: float) -> np.ndarray:
    g = np.exp(-0.5 * ((np.arange(n) - n // 2) / sigma) ** 2)
    h = g[:, None, None] * g[None, :, None] * g[None, None, :]
    return (h / h.sum()).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", default="cupy", choices=["cupy", "opencl"])
    ap.add_argument("--compare-with", default=None, choices=["cupy", "opencl"],
                    help="also run the blocked volume on this backend and compare")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--psf", type=int, default=15)
    ap.add_argument("--fit-shape", type=int, nargs=3, default=[512, 1024, 1024])
    ap.add_argument("--yx", type=int, default=4096, help="Y and X of the large volume")
    ap.add_argument("--factor", type=float, default=2.0, help="volume / GPU memory")
    ap.add_argument("--max-memory", type=float, default=30.0, help="GiB per block")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1,
                    help="blocked runs per configuration, interleaved (the first is cold: "
                         "cuFFT plans, page-locked buffers); the last round is compared")
    ap.add_argument("--skip-single", action="store_true",
                    help="with several GPUs, skip the 1-GPU blocked run")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    if args.backend == "cupy":
        import cupy as cp

        n_gpus = cp.cuda.runtime.getDeviceCount()
    else:
        n_gpus = 1
    be = rlcore.registry.get_backend(args.backend)
    total, name = be.memory().total, be.device
    psf = gaussian_psf(args.psf, args.psf / 6)
    its = args.iterations
    report = {"backend": args.backend, "gpu": name, "gpus": n_gpus,
              "gpu_memory_GiB": round(total / 2**30, 1),
              "iterations": its, "psf": args.psf, "platform": platform.platform()}
    print(report, flush=True)

    # unblocked, a volume that fits
    fit = phantom_tile(tuple(args.fit_shape))
    rlcore.deconvolve(fit, psf, its, backend=args.backend,
            boundary="periodic")  # warm-up (plans, kernels)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        rlcore.deconvolve(fit, psf, its, backend=args.backend, boundary="periodic")
        times.append(time.perf_counter() - t)
    t_fit = float(np.median(times))
    report["unblocked"] = {"shape": list(fit.shape), "median_s": round(t_fit, 3),
                           "throughput_Gvox_it_s": round(fit.size * its / t_fit / 1e9, 2)}
    print(report["unblocked"], flush=True)
    del fit

    # blocked, a volume of factor x the GPU memory
    tile = phantom_tile((256, args.yx, args.yx))
    z = math.ceil(args.factor * total / (4 * args.yx * args.yx) / 128) * 128
    volume = TiledVolume(tile, z)
    nbytes = math.prod(volume.shape) * 4
    max_memory = int(args.max_memory * 2**30)
    one = 0 if args.backend == "cupy" else None
    runs = [("1 GPU", one)] if not (args.skip_single and n_gpus > 1) else []
    if n_gpus > 1:
        runs.append((f"{n_gpus} GPUs", list(range(n_gpus))))
    report["blocked"] = []
    plan = [(label, device, args.backend) for _ in range(args.rounds) for label, device in runs]
    if args.compare_with:
        plan.append(("1 GPU", 0 if args.compare_with == "cupy" else None, args.compare_with))
    for label, device, backend in plan:
        sink = Sink(volume.shape)
        t = time.perf_counter()
        _, info = rlcore.deconvolve(volume, psf, its, backend=backend, device=device,
                                    max_memory=max_memory, out=sink, return_info=True,
                                            boundary="periodic")
        elapsed = time.perf_counter() - t
        assert sink.voxels == math.prod(volume.shape) and sink.finite
        row = {"backend": backend, "run": label, "shape": list(volume.shape),
               "GB": round(nbytes / 1e9, 1),
               "x_gpu_memory": round(nbytes / total, 2), "plan": str(info.blocks),
               "seconds": round(elapsed, 1),
               "throughput_Gvox_it_s": round(math.prod(volume.shape) * its / elapsed / 1e9,
                                             2),
               "checksum": sink.checksum}
        row["unblocked_over_blocked"] = round(
            report["unblocked"]["throughput_Gvox_it_s"] / row["throughput_Gvox_it_s"], 2)
        report["blocked"].append(row)
        print(row, flush=True)
    if args.compare_with:  # the same result on the other backend (a smaller volume)
        small = phantom_tile((192, 512, 512))
        kw = dict(block_shape=(64, 256, 256))
        mine = rlcore.deconvolve(small, psf, its, backend=args.backend, **kw)
        theirs = rlcore.deconvolve(small, psf, its, backend=args.compare_with, **kw)
        report["compare_rel_l2"] = float(np.linalg.norm(mine - theirs)
                                         / np.linalg.norm(theirs))
        a, b = report["blocked"][-2]["checksum"], report["blocked"][-1]["checksum"]
        report["compare_checksum_rel"] = abs(a - b) / abs(b)
        print(f"{args.backend} vs {args.compare_with}:", report["compare_rel_l2"],
              report["compare_checksum_rel"], flush=True)
    if n_gpus > 1:  # the same result on several GPUs as on one (a smaller volume)
        small = phantom_tile((192, 512, 512))
        kw = dict(backend="cupy", block_shape=(64, 256, 256))
        one = rlcore.deconvolve(small, psf, its, device=0, **kw)
        many = rlcore.deconvolve(small, psf, its, device=list(range(n_gpus)), **kw)
        report["multi_gpu_rel_l2"] = float(np.linalg.norm(many - one) / np.linalg.norm(one))
        print("several GPUs vs one, rel. L2:", report["multi_gpu_rel_l2"], flush=True)
    if len(runs) == 2:
        one, many = report["blocked"][-2:]
        report["multi_gpu_speedup"] = round(
            many["throughput_Gvox_it_s"] / one["throughput_Gvox_it_s"], 2)
        print("speed-up", report["multi_gpu_speedup"], flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
