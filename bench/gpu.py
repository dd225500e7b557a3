"""GPU measurements of the CuPy backend: ``python -m bench.gpu --out DIR``.

One run measures, on the GPU it finds:

1. end to end, numpy in -> numpy out, 10 iterations, interleaved with a straightforward
   CuPy RL (cupy.fft, no fusion, no plan reuse beyond CuPy's cache) on the same data;
2. per-iteration device time (CUDA events, arrays already on the device) against the
   floor measured in the same run: 2 rfftn+irfftn pairs (cuFFT, same plans) plus 3
   elementwise passes of 12 bytes per voxel at the measured device-to-device copy
   bandwidth (bytes read + written);
3. agreement with the numpy backend (rel. L2) and peak device memory in image-sized
   float32 arrays (CuPy's memory pool, cuFFT workspace included);
4. the largest (N, 2048, 2048) volume that deconvolves unblocked (CuPy in, CuPy out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import cupy as cp
import numpy as np

import rlcore
from bench.compare import gaussian_psf, machine, make_image
from rlcore.backends import cupy as cupy_backend
from rlcore.errors import DeviceOutOfMemoryError
from rlcore.iteration import Convolution, richardson_lucy
from rlcore.registry import get_backend


def event_ms(fn, repeats: int = 10, warmup: int = 2) -> float:
    """Median device time of ``fn()`` in ms (CUDA events)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return statistics.median(times)


def naive_rl(image: np.ndarray, psf: np.ndarray, iterations: int) -> np.ndarray:
    """A straightforward CuPy RL, the kind most users would write."""
    shape = image.shape
    y = cp.asarray(image, dtype=cp.float32)
    placed = cp.zeros(shape, cp.float32)
    placed[tuple(slice(0, n) for n in psf.shape)] = cp.asarray(psf)
    placed = cp.roll(placed, tuple(-(n // 2) for n in psf.shape), axis=tuple(range(3)))
    otf = cp.fft.rfftn(placed)
    x = y.copy()
    for _ in range(iterations):
        hx = cp.fft.irfftn(cp.fft.rfftn(x) * otf, s=shape)
        ratio = y / hx
        x = x * cp.fft.irfftn(cp.fft.rfftn(ratio) * cp.conj(otf), s=shape)
    return cp.asnumpy(x)


def sync_time(fn) -> float:
    cp.cuda.Device().synchronize()
    t0 = time.perf_counter()
    fn()
    cp.cuda.Device().synchronize()
    return time.perf_counter() - t0


def measure_case(shape, psf_size, repeats, report):
    image = make_image(shape)
    psf = gaussian_psf(psf_size)
    n = int(np.prod(shape))
    row = {"shape": list(shape), "psf": psf_size, "voxels": n}

    # 1. end to end, interleaved
    runs = {"rlcore[cupy]": lambda: rlcore.deconvolve(image, psf, 10, backend="cupy",
            boundary="periodic"),
            "naive cupy": lambda: naive_rl(image, psf, 10)}
    for fn in runs.values():
        fn()  # warm-up: plans, kernels, pools
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(sync_time(fn))
    row["end_to_end_s"] = {k: statistics.median(v) for k, v in times.items()}
    row["end_to_end_min_s"] = {k: min(v) for k, v in times.items()}

    # transfers alone: pageable (plain CuPy) and through the backend (pinned, chunked)
    be = get_backend("cupy")
    dev = cp.asarray(image)

    def ms(fn):
        return 1e3 * statistics.median(sync_time(fn) for _ in range(5))

    row["h2d_ms"] = {"pageable": ms(lambda: cp.asarray(image)),
                     "rlcore": ms(lambda: be.upload(image))}
    row["d2h_ms"] = {"pageable": ms(lambda: dev.get()), "rlcore": ms(lambda: be.to_host(dev))}

    # 2. per-iteration device time vs floor
    op = Convolution(be, psf / psf.sum(), shape)
    est = dev.copy()
    eps = 1e-6 * float(dev.max())
    iter_ms = event_ms(lambda: richardson_lucy(op, dev, est, 10, eps), repeats=5) / 10
    real = be.empty(shape)
    spec = be.empty(op.otf.shape, complex=True)
    from cupy.cuda import cufft

    r2c, c2r = be._plan(tuple(shape), "R2C"), be._plan(tuple(shape), "C2R")
    pair_ms = event_ms(lambda: (r2c.fft(dev, spec, cufft.CUFFT_FORWARD),
                                c2r.fft(spec, real, cufft.CUFFT_INVERSE)), 20)
    src = cp.empty(1 << 28, cp.float32)  # 1 GiB
    dst = cp.empty_like(src)
    rt = cp.cuda.runtime
    copy_ms = event_ms(lambda: rt.memcpyAsync(dst.data.ptr, src.data.ptr, src.nbytes,
                                              rt.memcpyDeviceToDevice, 0), 20)
    bandwidth = 2 * src.nbytes / (copy_ms * 1e-3)
    pass_ms = 12 * n / bandwidth * 1e3
    floor = 2 * pair_ms + 3 * pass_ms
    parts = {
        "apply_otf": event_ms(lambda: be.apply_otf(dev, op.otf, work=spec, out=real), 20),
        "divide": event_ms(lambda: be.divide_guarded(dev, real, eps, out=real), 20),
        "multiply": event_ms(lambda: be.multiply(est, real), 20),
    }
    src = dst = None
    row.update(iteration_ms=iter_ms, fft_pair_ms=pair_ms, copy_bandwidth_GBs=bandwidth / 1e9,
               elementwise_pass_floor_ms=pass_ms, floor_iteration_ms=floor,
               iteration_over_floor=iter_ms / floor, parts_ms=parts)
    op = est = real = spec = r2c = c2r = None

    # 3. agreement with numpy, peak device memory
    ours = rlcore.deconvolve(image, psf, 10, backend="cupy", boundary="periodic")
    ref = rlcore.deconvolve(image, psf, 10, backend="numpy", boundary="periodic")
    row["rel_l2_vs_numpy"] = float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))
    pool = cp.get_default_memory_pool()
    dev = None
    cupy_backend.clear_plan_cache()
    pool.free_all_blocks()
    before = pool.used_bytes()
    be.plan(tuple(shape))
    workspace = pool.used_bytes() - before  # both cuFFT plans' work areas
    cupy_backend.clear_plan_cache()
    pool.free_all_blocks()
    before = pool.used_bytes()
    rlcore.deconvolve(image, psf, 10, backend="cupy", boundary="periodic")
    row["peak_pool_bytes"] = pool.total_bytes() - before
    row["peak_image_arrays"] = row["peak_pool_bytes"] / (4 * n)
    row["cufft_workspace_image_arrays"] = workspace / (4 * n)
    cupy_backend.clear_plan_cache()
    pool.free_all_blocks()
    report["cases"].append(row)
    print(json.dumps(row, indent=1), flush=True)


def op_timings(report, shape=(256, 256, 256)):
    """Device time of each protocol operation the variants add (CUDA events)."""
    be = get_backend("cupy")
    x = cp.asarray(make_image(shape))
    y = x * 0.5 + 1
    s, p = x.copy(), x.copy()
    ops = {
        "multiply": lambda: be.multiply(s, y),
        "multiply_with_step": lambda: be.multiply_with_step(s, y, p),
        "update_norms": lambda: be.update_norms(x, y, None),
        "update_norms+dot": lambda: be.update_norms(x, y, p),
        "extrapolate": lambda: be.extrapolate(x, p, 0.5),
        "copy_into": lambda: be.copy_into(x, p),
        "tv_factor": lambda: be.tv_factor(x, 0.002),
        "all_finite": lambda: be.all_finite(x),
        "cp.sum(x*y)": lambda: cp.sum(x * y),
        "cp.dot(x,y)": lambda: cp.dot(x.ravel(), y.ravel()),
    }
    report["ops_ms"] = {k: event_ms(f, 10) for k, f in ops.items()}
    print(json.dumps(report["ops_ms"], indent=1), flush=True)


def variants_cost(report, shape=(256, 256, 256), psf_size=32, repeats=7):
    """Cost of each variant relative to plain periodic RL, CuPy in and out (no transfers),
    interleaved rounds: whole calls of 20 updates (setup included) and one update's
    marginal cost ((60 updates - 20 updates) / 40)."""
    x = cp.asarray(make_image(shape))
    psf = gaussian_psf(psf_size)
    variants = {"plain periodic": {}, "accelerate": {"accelerate": True},
                "momentum": {"accelerate": "momentum"},
                "wiener-butterworth": {"back_projector": "wiener-butterworth"},
                "otf-masked": {"back_projector": "otf-masked"},
                "tv=0.002": {"tv": 0.002}, "non-circulant": {"boundary": "non-circulant"},
                "zero": {"boundary": "zero"}}
    for kw in variants.values():
        rlcore.deconvolve(x, psf, 2, **kw)
    times = {k: [] for k in variants}
    longer = {k: [] for k in variants}  # 60 updates: the marginal cost of one update
    for _ in range(repeats):
        for name, kw in variants.items():
            times[name].append(sync_time(lambda kw=kw: rlcore.deconvolve(x, psf, 20, **kw)))
            longer[name].append(sync_time(lambda kw=kw: rlcore.deconvolve(x, psf, 60, **kw)))
    base = times["plain periodic"]
    per_update = {k: [(b - a) / 40 for a, b in zip(times[k], longer[k])] for k in variants}
    base_update = per_update["plain periodic"]
    report["variants"] = {
        name: {"median_s": statistics.median(v),
               "ratio_to_plain": statistics.median(a / b for a, b in zip(v, base)),
               "update_ms": 1e3 * statistics.median(per_update[name]),
               "update_ratio_to_plain": statistics.median(
                   a / b for a, b in zip(per_update[name], base_update))}
        for name, v in times.items()}
    print(json.dumps(report["variants"], indent=1), flush=True)


def largest(report, sizes):
    pool = cp.get_default_memory_pool()
    psf = gaussian_psf(32)
    found = []
    for nz in sizes:
        shape = (nz, 2048, 2048)
        entry = {"shape": shape, "voxels": int(np.prod(shape))}
        x = None
        try:
            x = cp.random.random(shape, dtype=cp.float32)
            x += 0.1
            base = pool.used_bytes()
            get_backend("cupy").plan(shape)
            entry["cufft_workspace_arrays"] = (pool.used_bytes() - base) / x.nbytes
            free, total = cp.cuda.runtime.memGetInfo()
            entry["driver_used_after_plans_arrays"] = (total - free) / x.nbytes
            t = sync_time(lambda x=x: rlcore.deconvolve(x, psf, 10, backend="cupy",
                    boundary="periodic"))
            entry.update(ok=True, seconds=t, pool_total_arrays=pool.total_bytes() / x.nbytes)
        except DeviceOutOfMemoryError as exc:
            entry.update(ok=False, error=f"DeviceOutOfMemoryError: {str(exc)[:200]}",
                         pool_used_arrays=pool.used_bytes() / (4 * entry["voxels"]),
                         pool_total_arrays=pool.total_bytes() / (4 * entry["voxels"]))
        except Exception as exc:  # cuFFT size limits and the like: record, do not hide
            entry.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:200]}")
        finally:
            x = None
            cupy_backend.clear_plan_cache()
            pool.free_all_blocks()
        found.append(entry)
        print(entry, flush=True)
        if not entry["ok"]:
            break
    report["largest"] = found


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--cases", nargs="*", default=["256x256x256:32", "64x1024x1024:64"],
                   help="SHAPE:PSF pairs")
    p.add_argument("--variants-only", action="store_true",
                   help="only the variants' cost (with --cases and --sizes empty)")
    p.add_argument("--sizes", type=int, nargs="*", default=[704, 768, 800, 832, 864, 896])
    args = p.parse_args(argv)
    info = machine()
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                          "--format=csv,noheader"], capture_output=True, text=True)
    info.update(gpu=smi.stdout.strip(), cuda_runtime=cp.cuda.runtime.runtimeGetVersion(),
                cupy=cp.__version__)
    report = {"machine": info, "cases": []}
    print(info, flush=True)
    for text in args.cases:
        shape, psf = text.split(":")
        measure_case(tuple(int(v) for v in shape.split("x")), int(psf), args.repeats, report)
    op_timings(report)
    variants_cost(report)
    largest(report, args.sizes)
    if args.variants_only:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "variants.json").write_text(json.dumps(report, indent=1, default=str))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(report, indent=1, default=str))
    lines = [f"# rlcore CuPy backend on {info['gpu']}", "",
             f"CuPy {info['cupy']}, CUDA runtime {info['cuda_runtime']}, numpy {info['numpy']}",
             "", "| case | rlcore e2e s | naive CuPy e2e s | naive / rlcore | iteration ms | "
             "floor ms | iteration / floor | rel L2 vs numpy | peak device arrays |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["cases"]:
        e = r["end_to_end_s"]
        lines.append(
            f"| {'x'.join(map(str, r['shape']))}, {r['psf']}^3 PSF | {e['rlcore[cupy]']:.4f} | "
            f"{e['naive cupy']:.4f} | {e['naive cupy'] / e['rlcore[cupy]']:.2f} | "
            f"{r['iteration_ms']:.3f} | {r['floor_iteration_ms']:.3f} | "
            f"{r['iteration_over_floor']:.2f} | {r['rel_l2_vs_numpy']:.2e} | "
            f"{r['peak_image_arrays']:.2f} |")
    lines.append("")
    for r in report["cases"]:
        lines.append(f"- {'x'.join(map(str, r['shape']))}: FFT pair {r['fft_pair_ms']:.3f} ms, "
                     f"copy bandwidth {r['copy_bandwidth_GBs']:.0f} GB/s, elementwise pass "
                     f"floor {r['elementwise_pass_floor_ms']:.3f} ms, parts {r['parts_ms']}, "
                     f"H2D {r['h2d_ms']} ms, D2H {r['d2h_ms']} ms, cuFFT workspace "
                     f"{r['cufft_workspace_image_arrays']:.2f} image arrays")
    lines.append("")
    lines.append("Cost per iteration relative to plain periodic RL (256^3, 32^3 PSF, CuPy in "
                 "and out, 20 iterations, medians of per-round ratios):")
    for name, r in report.get("variants", {}).items():
        lines.append(f"- {name}: {r['median_s']:.4f} s, {r['ratio_to_plain']:.2f}x")
    lines.append("")
    for entry in report["largest"]:
        lines.append(f"- {entry['shape']} ({entry['voxels'] / 1e9:.2f} G voxels): "
                     + (f"ok, {entry['seconds']:.2f} s" if entry["ok"] else entry["error"]))
    (args.out / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
