"""Depth-variant PSFs (issue #30): the strata model against one PSF on a ground-truth phantom,
and the cost of one update.

``python -m bench.depth_variant study --optics oil-water --out bench/results/depth-variant``
``python -m bench.depth_variant cost --out bench/results/depth-variant``
``python -m bench.depth_variant blocks --out bench/results/depth-variant``
``python -m bench.depth_variant report --out bench/results/depth-variant`` (the markdown)

``study``: a phantom of beads (Gaussian blobs, sigma 0.7 x 0.8 x 0.8 voxels) at 12 depths
and 4 filaments running through the whole depth, imaged by a widefield PSF computed for
*every* plane (psfmodels' Gibson-Lanni scalar model, each plane's PSF at that plane's
depth below the coverslip, the focal shift kept: :func:`rlcore.psf.widefield_depths`),
by linear convolution (zero outside the volume), then Poisson noise at two photon levels
(the brightest voxel of the noiseless image at ``--photons``). Each is deconvolved (numpy,
the default boundary, plain RL up to ``--iterations`` updates) with one PSF (at the
coverslip, and at the middle depth: psfmodels' own, uncentred) and with K = 2, 4, 8, 16
strata spread evenly over the volume's depth, the first and last at its first and last
plane; NRMSE (flux-scaled, :func:`bench.variants.nrmse`) after every update,
overall and per third of the depth, at the update that minimises the overall NRMSE (the
best count; also each third's own best); and each with ``iterations="auto"`` (for strata
the held-out loss of the strata model, matched with momentum: rlcore.autostop_strata).
Beads: the axial centroid error and the axial FWHM, microns, per depth, at the best count.

``cost [--backend cupy] [--shape 64x256x256]``: seconds per RL update (after a warm-up run
of the same plan; CuPy: a device-resident image, synchronised, and the memory pool's peak
instead of resident memory), numpy, (64, 256, 256) and a 31 x 63 x 63 Gaussian PSF
stack (widths growing with depth), periodic and non-circulant-half, plain RL against K = 2,
4, 8 strata (interleaved rounds, median), and the peak resident memory of each run against
the memory model (:attr:`rlcore.Deconvolver.bytes_per_voxel` x grid voxels, plus the
result), the plan made and run inside the measurement.

``blocks``: thin blocks in z: (512, 96, 96), cores of 32 planes (overlap from the
plan), a 31 x 31 x 31 stack as above, 1, 4 and 8 strata spread over the depth, numpy,
the default
boundary: seconds per update of the blocked and the unblocked run (interleaved rounds,
median), and the strata each block's plan holds (mean and most).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import scipy.fft

import rlcore
import rlcore.psf
from bench.variants import nrmse

#: the optics of the study: (NA, immersion index, sample index, emission wavelength um,
#: voxel (z, y, x) um, PSF shape, first plane's depth below the coverslip um)
OPTICS = {
    "oil-water": dict(na=1.4, ni=1.515, ns=1.33, wavelength=0.52, voxel=(0.3, 0.1, 0.1),
                      psf_shape=(41, 33, 33), top=1.0, shape=(96, 64, 64)),
    "dry-ice": dict(na=0.9, ni=1.0, ns=1.31, wavelength=0.52, voxel=(0.4, 0.13, 0.13),
                    psf_shape=(41, 33, 33), top=0.5, shape=(72, 64, 64)),
}


# -- the phantom ---------------------------------------------------------------------------


def _blob(shape, centre, sigma) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    return np.exp(-0.5 * sum(((g - c) / s) ** 2 for g, c, s in zip(grids, centre, sigma)))


def phantom(shape: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Beads at 12 depths (two lateral spots, alternating) and 4 filaments (random smooth
    curves spanning the depth, Gaussian cross-section of 1 voxel), values ~1 (beads 4 at
    their peak); returns the object and the beads' centres ``(n, 3)``."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    obj = np.zeros(shape)
    zs = np.linspace(4, nz - 5, 12)
    spots = [(ny * 0.25, nx * 0.25), (ny * 0.75, nx * 0.75)]
    beads = np.array([(z, *spots[i % 2]) for i, z in enumerate(zs)])
    for c in beads:
        obj += 4.0 * _blob(shape, c, (0.7, 0.8, 0.8))
    t = np.linspace(0, 1, 4 * nz)
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    for i in range(4):  # curves away from the bead spots (the other diagonal, the centre)
        y0, x0 = [(0.75, 0.25), (0.25, 0.75), (0.5, 0.5), (0.5, 0.3)][i]
        a = rng.uniform(3, 6, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        ys = ny * y0 + a[0] * np.sin(2 * np.pi * t * rng.uniform(0.5, 1.5) + ph[0])
        xs = nx * x0 + a[1] * np.cos(2 * np.pi * t * rng.uniform(0.5, 1.5) + ph[1])
        zs_c = 2 + t * (nz - 5)
        for z, y, x in zip(zs_c, ys, xs):
            iz = int(round(z))
            sl = slice(max(iz - 3, 0), min(iz + 4, nz))
            d2 = ((grids[0][sl] - z) ** 2 + (grids[1][sl] - y) ** 2 + (grids[2][sl] - x) ** 2)
            obj[sl] = np.maximum(obj[sl], np.exp(-0.5 * d2))
    return obj, beads


def plane_psfs(optics: dict, nz: int) -> np.ndarray:
    """The PSF of every plane (its depth below the coverslip), float32 ``(nz, *psf)``."""
    depths = optics["top"] + optics["voxel"][0] * np.arange(nz)
    return rlcore.psf.widefield_depths(optics["psf_shape"], optics["voxel"], depths,
                                       **_psf_kw(optics))


def _psf_kw(optics: dict) -> dict:
    return dict(na=optics["na"], wavelength=optics["wavelength"], ni=optics["ni"],
                ns=optics["ns"], model="scalar")


def image_of(obj: np.ndarray, psfs: np.ndarray) -> np.ndarray:
    """Linear convolution, every input plane by its own PSF (zero outside the volume)."""
    nz = obj.shape[0]
    full = [n + p - 1 for n, p in zip(obj.shape, psfs.shape[1:])]
    fshape = [scipy.fft.next_fast_len(n, real=True) for n in full]
    total = np.zeros(scipy.fft.rfftn(np.zeros(fshape), workers=2).shape, np.complex128)
    for z in range(nz):
        plane = np.zeros(fshape)
        plane[z, :obj.shape[1], :obj.shape[2]] = obj[z]
        otf = scipy.fft.rfftn(psfs[z].astype(np.float64), fshape, workers=2)
        total += scipy.fft.rfftn(plane, workers=2) * otf
    out = scipy.fft.irfftn(total, fshape, workers=2)
    c = [p // 2 for p in psfs.shape[1:]]
    return out[tuple(slice(ci, ci + n) for ci, n in zip(c, obj.shape))]


# -- the measures ----------------------------------------------------------------------------


def thirds(nz: int) -> list[slice]:
    b = [round(nz * i / 3) for i in range(4)]
    return [slice(b[i], b[i + 1]) for i in range(3)]


def errors(x: np.ndarray, truth: np.ndarray) -> list[float]:
    """NRMSE overall and per third of the depth (the estimate scaled to the truth's
    flux once, over the whole volume)."""
    s = truth.sum() / max(float(x.sum()), 1e-30)
    xs = x.astype(np.float64) * s
    out = [nrmse(x, truth)]
    for sl in thirds(truth.shape[0]):
        out.append(float(np.linalg.norm(xs[sl] - truth[sl]) / np.linalg.norm(truth[sl])))
    return out


def _fwhm(profile: np.ndarray) -> float:
    p = profile - profile.min()
    half = p.max() / 2
    i = int(np.argmax(p))
    lo = i
    while lo > 0 and p[lo - 1] > half:
        lo -= 1
    hi = i
    while hi < len(p) - 1 and p[hi + 1] > half:
        hi += 1
    left = lo - 1 + (half - p[lo - 1]) / (p[lo] - p[lo - 1]) if lo > 0 else lo
    right = hi + (p[hi] - half) / (p[hi] - p[hi + 1]) if hi < len(p) - 1 else hi
    return float(right - left)


def bead_measures(x: np.ndarray, beads: np.ndarray, dz: float) -> list[dict]:
    """Per bead: its depth plane, the axial centroid error and the axial FWHM (um), in a
    window of +-2 voxels laterally and +-8 planes axially around the true centre."""
    out = []
    for z, y, xx in beads:
        iz, iy, ix = int(round(z)), int(round(y)), int(round(xx))
        zl, zh = max(iz - 8, 0), min(iz + 9, x.shape[0])
        win = x[zl:zh, iy - 2:iy + 3, ix - 2:ix + 3].astype(np.float64)
        prof = win.sum(axis=(1, 2))
        prof = prof - prof.min()
        cz = zl + float((prof * np.arange(len(prof))).sum() / max(prof.sum(), 1e-30))
        out.append({"plane": round(float(z), 1), "dz_um": round((cz - z) * dz, 3),
                    "fwhm_z_um": round(_fwhm(win[:, 2, 2]) * dz, 3)})
    return out


# -- the study --------------------------------------------------------------------------------


def run_curve(image, psf, iterations, truth, psf_depths=None):
    """NRMSE (overall, thirds) after every update, and the estimate at the best update."""
    curve, best = [], [np.inf, None, 0]

    def observe(k, x):
        e = errors(np.asarray(x), truth)
        curve.append(e)
        if e[0] < best[0]:
            best[:] = [e[0], np.array(x, copy=True), k]

    t = time.perf_counter()
    with rlcore.Deconvolver(psf, image.shape, iterations, backend="numpy",
                            psf_depths=psf_depths) as rl:
        rl.run(image, observe=observe)
    return curve, best[1], best[2], time.perf_counter() - t


def run_auto(image, psf, truth, psf_depths=None) -> dict:
    """``iterations="auto"`` (numpy, the default boundary): its count, NRMSE (overall,
    thirds), stop rule and seconds."""
    t = time.perf_counter()
    auto, info = rlcore.deconvolve(image, psf, "auto", backend="numpy", return_info=True,
                                   psf_depths=psf_depths)
    return {"iterations": info.iterations, "nrmse": [round(v, 4) for v in errors(auto, truth)],
            "stop_rule": info.stop_rule, "seconds": round(time.perf_counter() - t, 1)}


def strata(optics: dict, nz: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """K PSFs at depths spread evenly over the volume, and their depths in voxels."""
    planes = np.linspace(0, nz - 1, k)
    depths_um = optics["top"] + optics["voxel"][0] * planes
    psfs = rlcore.psf.widefield_depths(optics["psf_shape"], optics["voxel"], depths_um,
                                       **_psf_kw(optics))
    return psfs, planes


def study(name: str, photons: list[float], iterations: int, out: Path,
          ks: tuple[int, ...] = (2, 4, 8, 16)) -> dict:
    optics = OPTICS[name]
    shape = optics["shape"]
    nz = shape[0]
    t = time.perf_counter()
    obj, beads = phantom(shape)
    per_plane = plane_psfs(optics, nz)
    clean = np.clip(image_of(obj, per_plane), 0, None)
    print(f"{name}: phantom and per-plane image in {time.perf_counter() - t:.0f} s", flush=True)
    methods = {"one PSF, coverslip": (rlcore.psf.widefield_depths(
        optics["psf_shape"], optics["voxel"], [0.0], **_psf_kw(optics))[0], None),
               "one PSF, middle depth": (per_plane[nz // 2], None)}
    for k in ks:
        methods[f"K = {k} strata"] = strata(optics, nz, k)
    rows = []
    truth_beads = bead_measures(obj, beads, optics["voxel"][0])
    for level in photons:
        scale = level / clean.max()
        truth = obj * scale
        image = np.random.default_rng(1).poisson(clean * scale).astype(np.float32)
        for label, (psf, depths) in methods.items():
            curve, best_x, best_k, seconds = run_curve(image, psf, iterations, truth, depths)
            c = np.array(curve)
            row = {"optics": name, "photons": level, "method": label, "best_k": best_k,
                   "nrmse_at_best": [round(v, 4) for v in c[best_k - 1]],
                   "best_per_third": [[int(np.argmin(c[:, j])) + 1,
                                       round(float(c[:, j].min()), 4)] for j in (1, 2, 3)],
                   "seconds": round(seconds, 1),
                   "beads": bead_measures(best_x, beads, optics["voxel"][0])}
            row["auto"] = run_auto(image, psf, truth, depths)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "beads"}), flush=True)
    result = {"optics": name, "params": {k: v for k, v in optics.items()},
              "truth_beads": truth_beads, "iterations": iterations, "rows": rows}
    path = out.with_name(f"{out.name}-{name}.json")
    path.write_text(json.dumps(result, indent=1))
    return result


# -- the cost ----------------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _peak(fn) -> tuple[float, int]:
    """(seconds, peak resident bytes above the start) of ``fn()``."""
    base, peak, running = _rss(), [0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t
    running[0] = False
    th.join()
    return seconds, max(peak[0] - base, 0)


def _cost_case(shape: tuple, psf_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A Poisson image of ``shape`` and 8 Gaussian PSFs whose widths grow with depth."""
    image = np.random.default_rng(0).poisson(20, shape).astype(np.float32)
    stack = np.stack([rlcore.psf.gaussian(psf_shape, (2.0 + s, 1.2 + s / 3, 1.2 + s / 3))
                      for s in np.linspace(0, 2, 8)])
    return image, stack


def _strata_of(stack: np.ndarray, k: int, nz: int) -> tuple[np.ndarray, tuple | None]:
    """K of the stack's PSFs spread over ``nz`` planes (one PSF: the fourth, no depths)."""
    if k == 1:
        return stack[3], None
    return stack[np.round(np.linspace(0, 7, k)).astype(int)], tuple(np.linspace(0, nz - 1, k))


def _device_peak(backend: str, fn) -> tuple[float, int]:
    """(seconds, peak bytes) of ``fn()``: resident memory on the host (numpy), the CuPy
    memory pool's bytes after the run, its cached blocks freed first (cupy)."""
    if backend != "cupy":
        return _peak(fn)
    import cupy as cp

    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    base = pool.total_bytes()
    t = time.perf_counter()
    fn()
    cp.cuda.Device().synchronize()
    return time.perf_counter() - t, pool.total_bytes() - base


def _on(backend: str, image: np.ndarray):
    """The image where the backend computes (CuPy: device-resident, so the cost is the
    updates', not the transfers')."""
    if backend == "cupy":
        import cupy as cp

        return cp.asarray(image)
    return image


def _sync(backend: str) -> None:
    if backend == "cupy":
        import cupy as cp

        cp.cuda.Device().synchronize()


def cost(shape=(64, 256, 256), rounds: int = 3, iterations: int = 3,
         backend: str = "numpy") -> list[dict]:
    image, stack = _cost_case(shape, (31, 63, 63))
    image = _on(backend, image)
    cases = [(b, k) for b in ("periodic", "non-circulant-half") for k in (1, 2, 4, 8)]
    times: dict = {c: [] for c in cases}
    peaks: dict = {}
    for _ in range(rounds):
        for boundary, k in cases:
            psf, depths = _strata_of(stack, k, shape[0])
            made = {}

            def plan_and_run(psf=psf, depths=depths, boundary=boundary, made=made):
                rl = rlcore.Deconvolver(psf, shape, iterations, backend=backend,
                                        boundary=boundary, psf_depths=depths)
                rl.run(image)  # warm (plans, kernels)
                _sync(backend)
                t = time.perf_counter()
                rl.run(image, release=True)
                _sync(backend)
                made.update(seconds=time.perf_counter() - t, grid=rl.grid.shape,
                            per_voxel=rl.bytes_per_voxel)

            _, peak = _device_peak(backend, plan_and_run)
            model = made["per_voxel"] * float(np.prod(made["grid"])) + image.nbytes
            times[(boundary, k)].append(made["seconds"] / iterations)
            peaks[(boundary, k)] = (max(peak, peaks.get((boundary, k), (0,))[0]), model,
                                    made["grid"])
    rows = []
    for boundary, k in cases:
        per = statistics.median(times[(boundary, k)])
        plain = statistics.median(times[(boundary, 1)])
        peak, model, grid = peaks[(boundary, k)]
        rows.append({"backend": backend, "boundary": boundary, "strata": k,
                     "grid": list(grid), "s_per_update": round(per, 5),
                     "vs_plain": round(per / plain, 2), "peak_run_MiB": round(peak / 2**20),
                     "model_MiB": round(model / 2**20)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def blocked_cost(shape=(512, 96, 96), block_z: int = 32, rounds: int = 3,
                 iterations: int = 3, backend: str = "numpy") -> list[dict]:
    """Thin blocks in z (``block_shape=(block_z, Y, X)``) with one PSF and with K strata
    spread over the depth, against the same runs unblocked: seconds per update (all
    blocks), and the strata a block's plan holds (those that weigh on its planes)."""
    from rlcore.api import block_plan
    from rlcore.blocks import blocks_of
    from rlcore.iteration import strata_weights

    image, stack = _cost_case(shape, (31, 31, 31))
    cases = [(k, blocked) for k in (1, 4, 8) for blocked in (False, True)]
    times: dict = {c: [] for c in cases}
    held: dict = {}
    for _ in range(rounds):
        for k, blocked in cases:
            psf, depths = _strata_of(stack, k, shape[0])
            kw = dict(backend=backend, psf_depths=depths)
            if blocked:
                kw["block_shape"] = (block_z,) + shape[1:]
            t = time.perf_counter()
            rlcore.deconvolve(image, psf, iterations, **kw)
            _sync(backend)
            times[(k, blocked)].append((time.perf_counter() - t) / iterations)
            if blocked and k not in held:
                _, p = block_plan(image, psf, iterations, **kw)
                per = [1 if depths is None else int(np.any(
                    strata_weights(depths, np.arange(*b.source[0])) > 0, axis=1).sum())
                       for b in blocks_of(p)]
                held[k] = (p.n_blocks, statistics.mean(per), max(per), p.block_shape)
    rows = []
    for k, blocked in cases:
        per = statistics.median(times[(k, blocked)])
        plain = statistics.median(times[(1, blocked)])
        row = {"backend": backend, "strata": k, "blocked": blocked, "s_per_update": round(per, 3),
               "vs_one_psf": round(per / plain, 2)}
        if blocked:
            n, mean, top, block = held[k]
            row.update(blocks=n, block_shape=list(block), strata_per_block_mean=round(mean, 2),
                       strata_per_block_max=top)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


# -- the report ----------------------------------------------------------------------------------


def _um(depth_planes: float, params: dict) -> float:
    return params["top"] + params["voxel"][0] * depth_planes


def _study_md(r: dict) -> list[str]:
    p = r["params"]
    nz = p["shape"][0]
    lines = [f"## {r['optics']}: NA {p['na']}, immersion n = {p['ni']}, sample n = {p['ns']}, "
             f"emission {p['wavelength']} um", "",
             f"Volume {tuple(p['shape'])} voxels of {tuple(p['voxel'])} um, planes at "
             f"{_um(0, p):.1f}-{_um(nz - 1, p):.1f} um below the coverslip; PSFs "
             f"{tuple(p['psf_shape'])}; up to {r['iterations']} plain RL updates.", ""]
    for level in sorted({row["photons"] for row in r["rows"]}):
        rows = [row for row in r["rows"] if row["photons"] == level]
        lines += [f"### {level:g} photons at the brightest voxel", "",
                  "| method | best count | NRMSE | top third | middle third | deepest third "
                  "| each third's best (count: NRMSE) | `iterations=\"auto\"` | s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            n = row["nrmse_at_best"]
            own = ", ".join(f"{k}: {v:.3f}" for k, v in row["best_per_third"])
            auto = (f"{row['auto']['iterations']}: {row['auto']['nrmse'][0]:.3f} "
                    f"({', '.join(f'{v:.3f}' for v in row['auto']['nrmse'][1:])})"
                    if row["auto"] else "refused")
            lines.append(f"| {row['method']} | {row['best_k']} | {n[0]:.3f} | {n[1]:.3f} | "
                         f"{n[2]:.3f} | {n[3]:.3f} | {own} | {auto} | {row['seconds']} |")
        strata_rows = [row for row in rows if row["method"].startswith("K =")]
        deep = [(int(row["method"].split()[2]), row["nrmse_at_best"][3]) for row in strata_rows]
        stop = next((k for (k, v), (_, w) in zip(deep, deep[1:]) if w > 0.95 * v), None)
        lines += [""] + _auto_md(rows)
        lines += ["", "Deepest third against K: " + ", ".join(f"K = {k}: {v:.3f}"
                                                             for k, v in deep) + "; "
                  + (f"it stops improving (by 5% or more) after K = {stop}."
                     if stop else "still improving by 5% or more at the largest K."), ""]
        lines += _beads_md(r, rows)
    return lines


def _auto_md(rows: list) -> list[str]:
    """``iterations="auto"`` against the best count (the oracle), overall and per third."""
    lines = ["`iterations=\"auto\"` against the best count (NRMSE; auto / best):", "",
             "| method | auto updates | auto NRMSE | best count's | auto / best | top third "
             "auto / best | middle | deepest | auto s |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        a, b = row["auto"]["nrmse"], row["nrmse_at_best"]
        thirds = " | ".join(f"{x:.3f} / {y:.3f} ({x / y:.2f})" for x, y in zip(a[1:], b[1:]))
        lines.append(f"| {row['method']} | {row['auto']['iterations']} | {a[0]:.3f} | "
                     f"{b[0]:.3f} | {a[0] / b[0]:.3f} | {thirds} | "
                     f"{row['auto'].get('seconds', '')} |")
    return lines


def _beads_md(r: dict, rows: list) -> list[str]:
    p = r["params"]
    head = "| bead depth um | truth FWHM z | " + " | ".join(row["method"] for row in rows) + " |"
    lines = ["Beads at the best count: axial centroid error, um / axial FWHM, um", "", head,
             "|" + "---|" * (len(rows) + 2)]
    for i, truth in enumerate(r["truth_beads"]):
        cells = [f"{row['beads'][i]['dz_um']:+.2f} / {row['beads'][i]['fwhm_z_um']:.2f}"
                 for row in rows]
        lines.append(f"| {_um(truth['plane'], p):.1f} | {truth['fwhm_z_um']:.2f} | "
                     + " | ".join(cells) + " |")
    return lines + [""]


def report(folder: Path, name: str = "depth-variant") -> str:
    """The markdown of the study and cost JSON files ``folder/name-*.json``."""
    lines = ["# Depth-variant PSFs: the strata model against one PSF", "",
             "Written by `python -m bench.depth_variant report` from the JSON beside it; "
             "each part's command is in its section. 2-core CPU, numpy backend.", "",
             "How to read it: the image is made with a PSF computed for every plane "
             "(psfmodels' Gibson-Lanni scalar model, each plane's at its own depth, the focal "
             "shift kept), so K strata differ from the truth's model only by the linear "
             "interpolation between their depths, one PSF by its depth mismatch. The PSFs "
             "are the same truncated family for the image and for every method (the "
             "lateral box of 33 voxels cuts the far defocus rings alike). Poisson noise only "
             "(no background, no read noise). 'best count' is the update with the smallest "
             "overall NRMSE to the truth (an oracle; 'each third's best' the same per third); "
             "a best count equal to the cap means the run was still improving there. "
             "`iterations=\"auto\"`: its count and NRMSE (overall; top, middle, deepest "
             "third), from the data alone: matched updates with momentum (the default "
             "boundary's phase) stopped by the held-out loss, for strata that of the strata "
             "forward model (rlcore.autostop_strata); 'auto / best' divides its "
             "NRMSE by the best count's (overall, and per third by the best count's thirds; "
             "where the best count is the cap, plain RL was still improving). 's': seconds of "
             "the run of all its updates with the NRMSE taken after each (shared cores: for "
             "the cost per update see the last table). "
             "Beads: axial centroid (of the bead's profile summed over 5 x 5 voxels, +-8 "
             "planes) minus the true centre, and the axial FWHM of the central column.", ""]
    for optics in OPTICS:
        path = folder / f"{name}-{optics}.json"
        if path.exists():
            lines += [f"`python -m bench.depth_variant study --optics {optics} --out "
                      f"bench/results/{name}`", ""]
            lines += _study_md(json.loads(path.read_text()))
    path = folder / f"{name}-cost.json"
    if path.exists():
        lines += ["## Cost of one update", "",
                  f"`python -m bench.depth_variant cost --out bench/results/{name}`: "
                  "(64, 256, 256), PSFs 31 x 63 x 63, numpy, 3 updates per run, median of 3 "
                  "rounds; peak resident memory of plan + run against the memory model "
                  "(bytes_per_voxel x grid voxels + the result).", "",
                  "| boundary | K | grid | s per update | vs plain RL | peak MiB | model MiB |",
                  "|---|---|---|---|---|---|---|"]
        for row in json.loads(path.read_text()):
            lines.append(f"| {row['boundary']} | {row['strata']} | {tuple(row['grid'])} | "
                         f"{row['s_per_update']} | {row['vs_plain']} | {row['peak_run_MiB']} "
                         f"| {row['model_MiB']} |")
        lines.append("")
    path = folder / f"{name}-blocks.json"
    if path.exists():
        lines += ["## Thin blocks in z", "",
                  f"`python -m bench.depth_variant blocks --out bench/results/{name}`: "
                  "(512, 96, 96), cores of 32 planes with the plan's overlap, PSFs 31 x 31 "
                  "x 31, K strata spread over the depth, numpy, the default boundary, 3 "
                  "updates per run, median of 3 interleaved rounds; a block's plan holds "
                  "only the strata that weigh on its planes.", "",
                  "| K | blocked | s per update | vs one PSF (same blocking) | blocks | "
                  "block | strata per block (mean / most) |", "|---|---|---|---|---|---|---|"]
        for row in json.loads(path.read_text()):
            blocked = row["blocked"]
            lines.append(
                f"| {row['strata']} | {'yes' if blocked else 'no'} | {row['s_per_update']} "
                f"| {row['vs_one_psf']} | {row.get('blocks', 1)} | "
                f"{tuple(row['block_shape']) if blocked else 'whole'} | "
                + (f"{row['strata_per_block_mean']} / {row['strata_per_block_max']} |"
                   if blocked else f"{row['strata']} |"))
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("study", "cost", "blocks", "report"))
    ap.add_argument("--optics", choices=tuple(OPTICS), default="oil-water")
    ap.add_argument("--photons", type=float, nargs="+", default=[100.0, 1000.0])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--strata", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--out", type=Path, default=Path("bench/results/depth-variant"))
    ap.add_argument("--backend", default="numpy", help="cost and blocks: numpy or cupy")
    ap.add_argument("--shape", default=None, help="cost: the image, e.g. 64x256x256")
    args = ap.parse_args(argv)
    if args.what == "study":
        study(args.optics, args.photons, args.iterations, args.out, tuple(args.strata))
    elif args.what == "report":
        args.out.with_suffix(".md").write_text(report(args.out.parent, args.out.name))
    elif args.what == "blocks":
        rows = blocked_cost(backend=args.backend)
        suffix = "" if args.backend == "numpy" else f"-{args.backend}"
        args.out.with_name(f"{args.out.name}-blocks{suffix}.json").write_text(json.dumps(rows,
                                                                                 indent=1))
    else:
        shape = tuple(int(n) for n in args.shape.split("x")) if args.shape else (64, 256, 256)
        rows = cost(shape, backend=args.backend)
        suffix = "" if args.backend == "numpy" else f"-{args.backend}"
        path = args.out.with_name(f"{args.out.name}-cost{suffix}.json")
        path.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
