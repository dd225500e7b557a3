"""Boundary modes, acceleration and RLTV measured against ground truth; writes figures.

``python -m bench.variants --data ../shared/data --out bench/results/variants``
(figures go to ``docs/``). Measures, with NRMSE = ||s x - t|| / ||t||, where ``s`` scales
the estimate ``x`` to the truth's flux (the data sets do not keep the scale), and, in the
outer band of PSF half-width, the band's RMSE over the RMS of the whole truth:

* per boundary mode, on the EPFL "Hollow Bars" set (flowdec_epfl/bars-25pct, truth
  ``actual.tif``) and on an edge-touching object made from the same phantom (blurred on
  its full field, then cropped so that the bars cross the volume's edges): NRMSE overall
  and in the outer band of PSF half-width;
* NRMSE after every iteration of plain RL (1..200), accelerated RL (1..100) and RLTV at
  several weights (1..200) on the bars set;
* the cost per iteration of each variant relative to plain periodic RL (interleaved,
  (64, 256, 256) image, 32^3 PSF), and the non-circulant grid size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import tifffile

import rlcore
import rlcore.psf
from rlcore.boundary import make_grid

MODES = ("periodic", "zero", "reflect", "non-circulant")


def nrmse(x: np.ndarray, truth: np.ndarray) -> float:
    x = x.astype(np.float64) * (truth.sum() / max(float(x.sum()), 1e-30))
    return float(np.linalg.norm(x - truth) / np.linalg.norm(truth))


def psf_half_width(psf: np.ndarray, level: float = 0.01) -> tuple[int, ...]:
    """Half the extent, per axis, of the PSF where it exceeds ``level`` of its peak."""
    out = []
    for axis in range(psf.ndim):
        profile = psf.max(axis=tuple(a for a in range(psf.ndim) if a != axis))
        above = np.nonzero(profile >= level * profile.max())[0]
        out.append(int(np.ceil((above[-1] - above[0] + 1) / 2)))
    return tuple(out)


def band_mask(shape, half) -> np.ndarray:
    band = np.ones(shape, bool)
    band[tuple(slice(h, n - h) for h, n in zip(half, shape))] = False
    return band


def curve(image, psf, truth, iterations, **kwargs):
    """NRMSE to ``truth`` after every update (:meth:`rlcore.Deconvolver.run`'s observe)."""
    errors = []
    with rlcore.Deconvolver(psf, image.shape, iterations, backend="numpy", **kwargs) as rl:
        rl.run(image, observe=lambda k, x: errors.append(nrmse(np.asarray(x), truth)))
    return errors


def load_bars(data: Path):
    folder = data / "flowdec_epfl" / "bars-25pct"
    image = tifffile.imread(folder / "data.tif").astype(np.float32)
    psf = tifffile.imread(folder / "kernel.tif").astype(np.float64)
    truth = tifffile.imread(folder / "actual.tif").astype(np.float64)
    return image, psf / psf.sum(), truth


def edge_case(image, psf, truth, seed=0):
    """The bars phantom blurred on its whole field (zero outside), Poisson noise at the
    data set's own level, then cropped so that the object crosses every edge."""
    from scipy.signal import fftconvolve

    # linear convolution, PSF centre at n // 2 (independent of rlcore's own operator)
    full = fftconvolve(truth, psf, mode="full")
    blurred = np.clip(full[tuple(slice(p // 2, p // 2 + n) for p, n in zip(psf.shape,
                                                                          truth.shape))], 0, None)
    scale = image.sum() / blurred.sum()
    noisy = np.random.default_rng(seed).poisson(blurred * scale).astype(np.float32)
    # the bars span z 8-22, y 17-44, x 16-47: this crop cuts them at z 10, y 20 and x 20
    crop = (slice(10, 32), slice(20, 64), slice(20, 64))
    return noisy[crop], truth[crop] * scale


def random_edge_case(psf, seed=2, pad=16):
    """Random blocks on a field larger than the image (so objects cross every edge),
    blurred (linear convolution), Poisson noise, cropped to the image."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    full = np.zeros((32 + 2 * pad, 64 + 2 * pad, 64 + 2 * pad))
    for _ in range(150):
        z, y, x = (int(rng.integers(0, n)) for n in full.shape)
        full[max(z - 2, 0):z + 2, max(y - 3, 0):y + 3, max(x - 3, 0):x + 3] += rng.random() * 50
    blurred = fftconvolve(full, psf, mode="full")
    blurred = np.clip(blurred[tuple(slice(p // 2, p // 2 + n) for p, n in zip(psf.shape,
                                                                            full.shape))], 0, None)
    crop = (slice(pad, -pad),) * 3
    noisy = rng.poisson(blurred[crop] + 1.0).astype(np.float32)
    return noisy, full[crop] + 1.0


def low_count_case(psf, truth, peak=10.0, background=1.0, seed=1):
    """The bars phantom imaged with few photons (peak ``peak`` photons over a
    ``background``): the regime where RL's error turns up again (noise-limited) and RLTV
    is meant to help."""
    from scipy.signal import fftconvolve

    full = fftconvolve(truth, psf, mode="full")
    blurred = np.clip(full[tuple(slice(p // 2, p // 2 + n) for p, n in zip(psf.shape,
                                                                          truth.shape))], 0, None)
    s = peak / blurred.max()
    noisy = np.random.default_rng(seed).poisson(blurred * s + background).astype(np.float32)
    return noisy, truth * s + background


def forward_model_fit(image, psf, truth):
    """How the data set was made: RMS residual of the least-squares fit
    ``image ~ a * H truth + b`` with ``H`` periodic (circular) or zero-boundary (linear)
    convolution. The smaller residual names the forward model the data follow."""
    out = {}
    for mode in ("periodic", "zero"):
        blurred = rlcore.convolve(truth.astype(np.float32), psf, boundary=mode).astype(float)
        design = np.stack([blurred.ravel(), np.ones(blurred.size)], 1)
        coef, *_ = np.linalg.lstsq(design, image.ravel().astype(float), rcond=None)
        resid = image.ravel() - design @ coef
        out[mode] = {"rms_residual": float(np.sqrt(np.mean(resid ** 2))),
                     "scale": float(coef[0]), "offset": float(coef[1])}
    return out


def biggs_andrews_reference(image, psf, truth, iterations, order):
    """NRMSE per iteration of Biggs & Andrews (1997) acceleration of order 1 (their
    eq. 7, as cudaDecon and rlcore) or 2 (their section 2.6: the second-difference term
    ``a^2 / 2 (h_k - h_{k-1})`` added to the prediction), float64, periodic; an
    experiment outside the library, to see whether the higher order is worth adding."""
    otf = np.fft.rfftn(np.fft.ifftshift(psf))
    axes = tuple(range(image.ndim))

    def conv(x, spectrum):
        return np.fft.irfftn(np.fft.rfftn(x) * spectrum, image.shape, axes=axes)

    y = image.astype(np.float64)
    eps = 1e-6 * y.max()
    x, prev, prev2, steps, errors = y.copy(), None, None, [], []
    for _ in range(iterations):
        alpha = 0.0
        if len(steps) >= 2:
            alpha = float(np.clip((steps[-1] * steps[-2]).sum() / (steps[-2] ** 2).sum(), 0, 1))
        z = x
        if alpha > 0:
            z = x + alpha * (x - prev)
            if order == 2 and prev2 is not None:
                z = z + alpha ** 2 / 2 * ((x - prev) - (prev - prev2))
            z = np.maximum(z, 0)
        hx = conv(z, otf)
        new = z * conv(np.divide(y, hx, out=np.zeros_like(hx), where=hx > eps), otf.conj())
        steps = [*steps[-1:], new - z]
        prev2, prev, x = prev, x, new
        errors.append(nrmse(x, truth))
    return errors


def first_reaching(errors, target):
    return next((k + 1 for k, e in enumerate(errors) if e <= target), None)


def best(errors):
    return {"best": min(errors), "best_at": int(np.argmin(errors)) + 1, "last": errors[-1]}


def speed_and_tv(image, psf, truth, boundary="periodic", weights=(0.0005, 0.002)):
    """Acceleration reach, RLTV's best and accelerated RLTV's best (run to convergence:
    200 accelerated iterations) against plain RL's best over 1..200, on one case."""
    kw = {"boundary": boundary}
    plain = curve(image, psf, truth, 200, **kw)
    fast = curve(image, psf, truth, 200, accelerate=True, **kw)
    curves = {"plain RL": plain, "accelerated RL": fast}
    out = {"plain_10": plain[9], "plain_50": plain[49], "plain": best(plain),
           "accelerated": best(fast), "accelerated_to_plain_10": first_reaching(fast, plain[9]),
           "accelerated_to_plain_50": first_reaching(fast, plain[49]),
           "accelerated_at_5": fast[4]}
    for w in weights:
        curves[f"RLTV tv={w}"] = curve(image, psf, truth, 200, tv=w, **kw)
        curves[f"accelerated RLTV tv={w}"] = curve(image, psf, truth, 200, tv=w,
                                                   accelerate=True, **kw)
    out.update({name: best(e) for name, e in curves.items() if "RLTV" in name})
    return out, curves


def boundary_table(cases, iterations, half):
    rows = []
    for name, (image, psf, truth) in cases.items():
        band = band_mask(truth.shape, half)
        for mode in MODES:
            out = rlcore.deconvolve(image, psf, iterations, boundary=mode, backend="numpy")
            scale = truth.sum() / out.sum()
            inner_err = nrmse(out, truth)
            # RMSE in the band over the RMS of the whole truth (the band may hold no object)
            band_err = float(np.sqrt(np.mean((out[band] * scale - truth[band]) ** 2)) /
                             np.sqrt(np.mean(truth ** 2)))
            rows.append({"case": name, "mode": mode, "nrmse": inner_err, "band_nrmse": band_err,
                         "grid": make_grid(image.shape, psf.shape, mode).shape})
    return rows


def cost_table(repeats=5, backend="numpy", longer_run=30):
    """Each variant against plain periodic RL on ``backend`` (NumPy in and out),
    (64, 256, 256) with a 32^3 PSF, interleaved rounds: whole calls of 10 updates and one
    update's marginal cost ((``longer_run`` updates - 10 updates) / (``longer_run`` - 10):
    setup and transfers cancel; a GPU's update is short, so a longer run averages out the
    transfers' jitter)."""
    from bench.compare import gaussian_psf, make_image

    image, psf = make_image((64, 256, 256)), gaussian_psf(32)
    variants = {"plain periodic": {}, "accelerate": {"accelerate": True},
                "momentum": {"accelerate": "momentum"},
                "wiener-butterworth": {"back_projector": "wiener-butterworth"},
                "otf-masked": {"back_projector": "otf-masked"},
                "tv=0.002": {"tv": 0.002}, "non-circulant": {"boundary": "non-circulant"},
                "zero": {"boundary": "zero"}}
    times = {k: [] for k in variants}
    longer = {k: [] for k in variants}
    for kw in variants.values():
        rlcore.deconvolve(image, psf, 2, backend=backend, **kw)

    def timed(n, kw):
        t0 = time.perf_counter()
        rlcore.deconvolve(image, psf, n, backend=backend, **kw)
        return time.perf_counter() - t0

    for _ in range(repeats):
        for name, kw in variants.items():
            times[name].append(timed(10, kw))
            longer[name].append(timed(longer_run, kw))
    base = times["plain periodic"]
    update = {k: [(b - a) / (longer_run - 10) for a, b in zip(times[k], longer[k])]
              for k in variants}
    return {name: {"median_s": statistics.median(v),
                   "ratio_to_plain": statistics.median(a / b for a, b in zip(v, base)),
                   "update_ms": 1e3 * statistics.median(update[name]),
                   "update_ratio_to_plain": statistics.median(
                       a / b for a, b in zip(update[name], update["plain periodic"])),
                   "grid": make_grid(image.shape, psf.shape,
                                     variants[name].get("boundary", "periodic")).shape}
            for name, v in times.items()}


def figures(docs: Path, cases, curves, half):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlcore.data import BACKGROUND, lls_sample

    raw, lls_psf, _ = lls_sample()
    lls = np.clip(raw.astype(np.float32) - BACKGROUND, 0, None)
    image, psf, truth = cases["edge-touching bars"]
    z = truth.shape[0] // 2
    zl = lls.shape[0] // 2
    fig, axes = plt.subplots(3, 5, figsize=(16, 10))
    rows = [
        [("LLS data (real)", lls[zl])] + [
            (f"LLS {m}", rlcore.deconvolve(lls, lls_psf, 20, boundary=m, backend="numpy")[zl])
            for m in MODES],
        [("bars data", image[z])] + [
            (m, rlcore.deconvolve(image, psf, 50, boundary=m, backend="numpy")) for m in MODES],
    ]
    for ax, (title, arr) in zip(axes[0], rows[0]):
        ax.imshow(arr, cmap="magma", vmin=0, vmax=np.percentile(arr, 99.8))
        ax.set_title(title)
        ax.axis("off")
    vmax = np.percentile(truth, 99.5)
    axes[1][0].imshow(truth[z], cmap="magma", vmin=0, vmax=vmax)
    axes[1][0].set_title("bars truth (edge-touching)")
    axes[2][0].imshow(image[z], cmap="magma")
    axes[2][0].set_title("bars data")
    for col, (title, arr) in enumerate(rows[1][1:], start=1):
        a = arr * (truth.sum() / arr.sum())
        axes[1][col].imshow(a[z], cmap="magma", vmin=0, vmax=vmax)
        axes[1][col].set_title(f"bars {title}, 50 it")
        axes[2][col].imshow(np.abs(a - truth)[z], cmap="viridis", vmin=0, vmax=vmax / 2)
        axes[2][col].set_title(f"|error| {title}")
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle("Edge artefacts per boundary mode: real LLS sample (20 iterations, middle "
                 f"z-slice) and an edge-touching bars phantom (PSF half-width {half})")
    fig.tight_layout()
    fig.savefig(docs / "boundaries.png", dpi=70)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, errors in curves.items():
        ax.plot(np.arange(1, len(errors) + 1), errors, label=name,
                linestyle="--" if "centred" in name else "-")
    ax.set_xscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("NRMSE to ground truth")
    ax.set_title("EPFL Hollow Bars (bars-25pct): error vs iterations\n(dashed: kernel "
                 "centred sub-voxel, rlcore.psf.center)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(docs / "acceleration.png", dpi=90)
    plt.close(fig)


def markdown(report) -> str:
    lines = ["# Boundary modes, acceleration, RLTV (numpy backend)", "",
             f"PSF half-width (1% of peak) {report['psf_half_width']} voxels; NRMSE = "
             "||s x - t|| / ||t||, s = flux of the truth / flux of x; outer band: RMSE in the "
             "band of PSF half-width over the RMS of the whole truth.", "",
             "How bars-25pct was made (least-squares fit image ~ a H truth + b; RMS residual):"]
    for kernel, fit in report["forward_model"].items():
        lines.append(f"- kernel {kernel}: periodic {fit['periodic']['rms_residual']:.0f}, "
                     f"zero {fit['zero']['rms_residual']:.0f} (zero-model offset "
                     f"{fit['zero']['offset']:.0f})")
    lines += ["", "| case | mode | grid | NRMSE | NRMSE outer band |", "|---|---|---|---:|---:|"]
    for r in report["boundaries"]:
        lines.append(f"| {r['case']} | {r['mode']} | {r['grid']} | {r['nrmse']:.4f} | "
                     f"{r['band_nrmse']:.4f} |")
    lines += ["", "Acceleration and RLTV (best over iterations 1..200; accelerated runs to 200 "
              "as well, i.e. to convergence):", "",
              "| case | plain 10 / 50 | plain best | accel. to plain-10 / plain-50 | accel. at 5 "
              "| accel. best | RLTV best | accel. RLTV best |", "|---|---|---|---|---|---|---|---|"]

    def at(r):
        return f"{r['best']:.4f} @{r['best_at']}"

    for name, r in report["speed_tv"].items():
        tv = [k for k in r if k.startswith("RLTV")]
        lines.append(
            f"| {name} | {r['plain_10']:.4f} / {r['plain_50']:.4f} | {at(r['plain'])} | "
            f"{r['accelerated_to_plain_10']} / {r['accelerated_to_plain_50']} | "
            f"{r['accelerated_at_5']:.4f} | {at(r['accelerated'])} | "
            + ", ".join(f"{k[5:]}: {at(r[k])}" for k in tv) + " | "
            + ", ".join(f"{k[5:]}: {at(r['accelerated ' + k])}" for k in tv) + " |")
    lines += ["", "Biggs & Andrews order 1 (rlcore, cudaDecon) vs order 2 (their section 2.6), "
              "float64 reference outside the library, periodic:"]
    for name, r in report["biggs_andrews_order"].items():
        lines.append(f"- {name}: to plain-10 {r['to_plain_10']}, to plain-50 "
                     f"{r['to_plain_50']}, NRMSE at 5 {r['at_5']:.4f} (plain-10 "
                     f"{r['plain_10']:.4f}), best {r['best']:.4f} at {r['best_at']}")
    lines += ["", "Low-count acquisition of the same phantom (peak 10 photons + 1 background, "
              "Poisson), iterations 1..200:"]
    for name, r in report["rltv_low_count"].items():
        lines.append(f"- {name}: best {r['best']:.4f} at {r['best_at']}, at 200 "
                     f"{r['last']:.4f}")
    if "cost" in report:
        lines += ["", "| variant (64x256x256, 32^3 PSF, 10 it) | grid | median s | "
                  "per-round ratio to plain periodic |", "|---|---|---:|---:|"]
        for name, r in report["cost"].items():
            lines.append(f"| {name} | {r['grid']} | {r['median_s']:.3f} | "
                         f"{r['ratio_to_plain']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--out", type=Path, default=Path("bench/results/variants"))
    p.add_argument("--docs", type=Path, default=Path("docs"))
    p.add_argument("--no-cost", action="store_true")
    p.add_argument("--cost-only", action="store_true",
                   help="only the cost table (writes OUT-cost.json, OUT-cost-BACKEND.json "
                   "for another backend)")
    p.add_argument("--backend", default="numpy", help="the cost table's backend")
    p.add_argument("--repeats", type=int, default=5, help="the cost table's rounds")
    p.add_argument("--longer-run", type=int, default=30,
                   help="updates of the cost table's longer run (the shorter: 10)")
    args = p.parse_args(argv)
    if args.cost_only:
        cost = cost_table(args.repeats, args.backend, args.longer_run)
        suffix = "-cost" if args.backend == "numpy" else f"-cost-{args.backend}"
        args.out.with_name(args.out.name + suffix).with_suffix(".json").write_text(
            json.dumps(cost, indent=1, default=list))
        for name, r in cost.items():
            print(f"{name:20s} call {r['ratio_to_plain']:.3f}x, one update "
                  f"{r['update_ms']:.1f} ms = {r['update_ratio_to_plain']:.3f}x")
        return 0
    image, psf, truth = load_bars(args.data)
    centred = rlcore.psf.center(psf, subvoxel=True)
    half = psf_half_width(psf)
    edge_image, edge_truth = edge_case(image, psf, truth)
    cases = {"bars": (image, psf, truth), "edge-touching bars": (edge_image, psf, edge_truth)}
    small_psf = psf[tuple(slice(n // 2 - h - 1, n // 2 + h + 2) for n, h in zip(psf.shape, half))]
    small_psf = small_psf / small_psf.sum()
    random_image, random_truth = random_edge_case(small_psf)
    cases["edge-touching random blocks"] = (random_image, small_psf, random_truth)
    report: dict = {"psf_half_width": half}
    report["forward_model"] = {"as shipped": forward_model_fit(image, psf, truth),
                               "centred sub-voxel": forward_model_fit(image, centred, truth)}
    report["boundaries"] = boundary_table(cases, 50, half)
    report["speed_tv"], all_curves = {}, {}
    for name, args_ in {
        "bars, kernel as shipped": (image, psf, truth, "periodic"),
        "bars, kernel centred sub-voxel": (image, centred, truth, "periodic"),
        "edge-touching bars, periodic": (edge_image, psf, edge_truth, "periodic"),
        "edge-touching bars, non-circulant": (edge_image, psf, edge_truth, "non-circulant"),
    }.items():
        report["speed_tv"][name], all_curves[name] = speed_and_tv(*args_)
    report["biggs_andrews_order"] = {}
    for kernel, k in (("as shipped", psf), ("centred sub-voxel", centred)):
        plain = all_curves[f"bars, kernel {kernel}"]["plain RL"]
        for order in (1, 2):
            e = biggs_andrews_reference(image, k, truth, 60, order)
            report["biggs_andrews_order"][f"bars, kernel {kernel}, order {order}"] = {
                "to_plain_10": first_reaching(e, plain[9]),
                "to_plain_50": first_reaching(e, plain[49]), "at_5": e[4],
                "plain_10": plain[9], **best(e)}
    low_image, low_truth = low_count_case(psf, truth)
    low = {"plain RL": curve(low_image, psf, low_truth, 200)}
    for weight in (0.001, 0.002, 0.005):
        low[f"RLTV tv={weight}"] = curve(low_image, psf, low_truth, 200, tv=weight)
    report["rltv_low_count"] = {name: best(e) for name, e in low.items()}
    if not args.no_cost:
        report["cost"] = cost_table()
    curves = dict(all_curves["bars, kernel as shipped"])
    curves.update({f"{k}, centred kernel": v for k, v in
                   all_curves["bars, kernel centred sub-voxel"].items() if "RLTV" not in k})
    args.docs.mkdir(exist_ok=True)
    figures(args.docs, cases, curves, half)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({**report, "curves": all_curves},
                                                        indent=1, default=list))
    text = markdown(report)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
