"""``iterations="auto"`` on real data and on semi-synthetic sets with real data's properties.

``python -m bench.realdata --data ../shared/data --phantoms periodic non-circulant-half``
(results: ``bench/results/realdata.md`` and ``.json``; pictures: ``docs/realdata-lls.png``,
``docs/realdata-semi.png``; oracle curves cached under ``--cache``, default
``/tmp/auto-cache/realdata``; about 6 minutes on 2 cores with the cache warm).
``--phantoms`` also runs auto on bench/iterations.py's nine sets and compares with their
stored results from before issue 31.

(a) **The LLS stack** (``lls_pycudadecon/im_deskewed.tif``, camera offset 98, the deskew
wedge padded with 98; the measured bead PSF ``psf.tif`` with its background of 100 removed
and centred, ``rlcore.psf.centered(np.clip(psf - 100, 0, None))[0]``): ``iterations="auto"``
against 10 plain RL updates (the count of pycudadecon's reference) and cudaDecon's own
10-iteration result ``im_decon.tif`` (84, 320, 480), on the API's default boundary
(periodic) and the faces' (non-circulant-half). Metrics:

* ``corr``: Pearson correlation with cudaDecon's result inside the cell, on the overlap
  ``[:84, :, :480]`` (cudaDecon crops the end of each axis);
* ``peak``: 99.99th percentile / mean inside the cell;
* ``jump``: mean plane-to-plane jump in the cell, mean ``|x[z+1] - x[z]|`` / mean ``x``;
* the count and ``RunInfo.stop_rule``.

The cell: the image less the offset, smoothed (Gaussian, sigma 2 voxels), above Otsu's
threshold of its logarithm, within the voxels that are not the pad (voxels equal to 98,
dilated by 3) -- 4.6% of the stack.

(b) **Semi-synthetic sets** with a ground truth: objects taken from real data, blurred by a
known PSF, with the noise and artefacts of real acquisitions. The LLS object: 15 plain RL
updates of the LLS stack, taken in the raw (skewed) frame (each plane moved back by its
deskew shift, 2.558 voxels per plane along x, so that a (48, 128, 128) crop is all cell),
blurred by linear convolution with the measured PSF of ``bench/iterations.py`` (background
removed, centred, 41^3) on a larger field and cropped. Then:

* ``LLS camera, deskewed, padded``: Poisson photons (peak ~400, haze as in the stack),
  gain 2 ADU/photon, read noise 4 ADU, offset 100; a deskew-like interpolation (each plane
  shifted along x by the fractional part of 2.558 z, by linear interpolation: neighbouring
  voxels along x share noise, and every plane's variance differs, as in the stack); pad
  wedges of the constant 100 (a third of the voxels). NRMSE on the voxels that are not pad.
* ``LLS camera`` (the same without interpolation and pad: the camera alone);
* ``LLS Poisson`` (independent Poisson photons, the control), and the same with the pad
  wedges (of the constant 2, the haze passed as the offset);
* ``LLS 1-8 counts`` (peak 8 photons, background 0.3);
* ``widefield DAPI, offset 1758``: deconwolf's DAPI nuclei (20 plain updates under the
  Born-Wolf PSF of its demo, NA 1.45, ni 1.512, 461 nm, 130 x 130 x 300 nm) blurred by that
  PSF, photons at the stack's own level (gain 8 ADU/photon), read noise 10 ADU, offset 1758.

For each set: plain RL's error after every update (1..150; the oracle = its best count and
error, after least-squares scaling, NRMSE = ||s x - t|| / ||t||), 10 plain updates, and
``rlcore.deconvolve(image, psf, "auto", offset=...)`` with everything else at its default.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import scipy.signal as ss
import tifffile

import rlcore
import rlcore.psf as P

CACHE = Path("/tmp/auto-cache/realdata")
SEMI_SHAPE = (48, 128, 128)
#: the LLS stack's deskew shift, voxels along x per plane (its wedge's edge)
DESKEW_SHIFT = 2.558
LLS_OFFSET = 98.0
ORACLE_UPDATES = 150


# ---------------------------------------------------------------- helpers

def nrmse(x, truth, mask=None) -> float:
    x = np.asarray(x, np.float64)
    t = np.asarray(truth, np.float64)
    if mask is not None:
        x, t = x[mask], t[mask]
    s = float((x * t).sum() / max(float((x * x).sum()), 1e-30))
    return float(np.linalg.norm(s * x - t) / np.linalg.norm(t))


def _cached(path: Path, make):
    """``make()`` saved as ``path`` (.npy) the first time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return np.load(path)
    value = np.asarray(make())
    np.save(path, value)
    return value


def otsu(values: np.ndarray, bins: int = 256) -> float:
    h, e = np.histogram(values, bins)
    c = (e[1:] + e[:-1]) / 2
    w0 = np.cumsum(h)
    w1 = w0[-1] - w0
    s0 = np.cumsum(h * c)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    return float(c[np.argmax(w0 * w1 * (m0 - m1) ** 2)])


def lls_psf(data: Path) -> np.ndarray:
    """The measured PSF as the brief prescribes: background 100 removed, centred."""
    psf = tifffile.imread(data / "lls_pycudadecon" / "psf.tif").astype(np.float32)
    return P.centered(np.clip(psf - 100, 0, None))[0]


def bench_psf(data: Path) -> np.ndarray:
    """bench/iterations.py's measured PSF (background removed, centred sub-voxel, 41^3)."""
    lls = tifffile.imread(data / "lls_pycudadecon" / "psf.tif").astype(np.float64)
    return P.crop(P.center(P.background_subtract(lls, noise=3), subvoxel=True),
                  (41, 41, 41)).astype(np.float64)


def dapi_psf() -> np.ndarray:
    return np.asarray(P.widefield((39, 63, 63), (0.3, 0.13, 0.13), na=1.45,
                                  wavelength=0.461, ni=1.512), np.float64)


# ---------------------------------------------------------------- (a) the LLS stack

def lls_cell(image: np.ndarray) -> np.ndarray:
    pad = image == LLS_OFFSET
    smooth = ndi.gaussian_filter(np.where(pad, LLS_OFFSET, image).astype(np.float32)
                                 - np.float32(LLS_OFFSET), 2)
    valid = ~ndi.binary_dilation(pad, iterations=3)
    t = np.expm1(otsu(np.log1p(np.clip(smooth[valid], 0, None))))
    return valid & (smooth > t)


def lls_metrics(x: np.ndarray, reference: np.ndarray, cell: np.ndarray) -> dict:
    x = np.asarray(x, np.float32)
    z, y, xx = reference.shape
    m = cell[:z, :y, :xx]
    corr = float(np.corrcoef(x[:z, :y, :xx][m], reference[m])[0, 1])
    inside = x[cell]
    mean = float(inside.mean())
    both = cell[1:] & cell[:-1]
    jump = float(np.abs(x[1:] - x[:-1])[both].mean()) / mean
    return {"corr": corr, "peak": float(np.percentile(inside, 99.99)) / mean,
            "jump": jump, "max": float(x.max())}


def lls_rows(data: Path, cache: Path) -> tuple[list[dict], dict]:
    d = data / "lls_pycudadecon"
    image = tifffile.imread(d / "im_deskewed.tif")
    reference = tifffile.imread(d / "im_decon.tif").astype(np.float32)
    psf = lls_psf(data)
    cell = lls_cell(image)
    rows, results = [], {}
    for boundary in ("periodic", "non-circulant-half"):
        for n in (10, "auto"):
            t0 = time.perf_counter()
            x, info = rlcore.deconvolve(image, psf, n, offset=LLS_OFFSET, boundary=boundary,
                                        backend="numpy", return_info=True)
            seconds = time.perf_counter() - t0
            row = {"run": f"{'auto' if n == 'auto' else '10 plain'}, {boundary}",
                   "boundary": boundary, "iterations": info.iterations,
                   "rule": info.stop_rule or "fixed count", "seconds": seconds,
                   **lls_metrics(x, reference, cell)}
            rows.append(row)
            results[row["run"]] = x
            print(json.dumps(row), flush=True)
    ref = np.zeros(image.shape, np.float32)
    ref[:reference.shape[0], :, :reference.shape[2]] = reference
    rows.append({"run": "cudaDecon (im_decon.tif)", "boundary": "-", "iterations": 10,
                 "rule": "fixed count", "seconds": float("nan"),
                 **lls_metrics(ref, reference, cell)})
    results["cudaDecon"] = ref
    results["image"] = np.clip(image.astype(np.float32) - LLS_OFFSET, 0, None)
    return rows, results


# ---------------------------------------------------------------- (b) semi-synthetic

def lls_object(data: Path, cache: Path) -> np.ndarray:
    """15 plain updates of the LLS stack in its raw (skewed) frame, (88, 320, 256), offset
    removed: plane z moved back by round(2.558 z) along x."""
    def make():
        d = data / "lls_pycudadecon"
        image = tifffile.imread(d / "im_deskewed.tif")
        x = rlcore.deconvolve(image, lls_psf(data), 15, offset=LLS_OFFSET, backend="numpy")
        raw = np.zeros((x.shape[0], x.shape[1], 256), np.float32)
        for z in range(x.shape[0]):
            s = int(round(DESKEW_SHIFT * z))
            raw[z] = x[z, :, s:s + 256]
        return raw
    return _cached(cache / "lls_object.npy", make)


def dapi_object(data: Path, cache: Path) -> np.ndarray:
    def make():
        image = tifffile.imread(data / "deconwolf" / "dapi_001.tif")
        return rlcore.deconvolve(image, dapi_psf(), 20, offset=1758.0, backend="numpy")
    return _cached(cache / "dapi_object.npy", make)


def shift_planes_x(a: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each plane ``a[z]`` sampled at ``x + shifts[z]`` by linear interpolation (edges
    clamped): what a deskew does to its planes."""
    out = np.empty_like(a)
    n = a.shape[-1]
    for z, s in enumerate(shifts):
        i = int(np.floor(s))
        f = s - i
        lo = np.clip(np.arange(n) + i, 0, n - 1)
        hi = np.clip(np.arange(n) + i + 1, 0, n - 1)
        out[z] = (1 - f) * a[z][..., lo] + f * a[z][..., hi]
    return out


def pad_wedges(shape) -> np.ndarray:
    """The deskew wedges of a (Z, Y, X) crop: x below ``0.35 X (1 - z / Z)`` or above
    ``X - 0.35 X z / Z`` (about a third of the voxels)."""
    z = np.arange(shape[0])[:, None, None] / shape[0]
    x = np.arange(shape[2])[None, None, :]
    w = 0.35 * shape[2]
    return np.broadcast_to((x < w * (1 - z)) | (x >= shape[2] - w * z), shape)


def semi_sets(data: Path, cache: Path, shape=SEMI_SHAPE, only=None) -> list[dict]:
    """The semi-synthetic sets: dicts with name, image, psf, truth, offset, mask, kind."""
    psf = bench_psf(data)
    obj = lls_object(data, cache)
    pad = tuple(s // 2 for s in psf.shape)
    # the crop: planes 20..68, rows 96..224, raw columns 64..192 (with the PSF's half
    # size around them: planes 0..88)
    z0, y0, x0 = 20, 96, 64
    big = obj[z0 - pad[0]:z0 + shape[0] + pad[0], y0 - pad[1]:y0 + shape[1] + pad[1],
              x0 - pad[2]:x0 + shape[2] + pad[2]].astype(np.float64)
    big = np.clip(big, 0, None)
    crop = tuple(slice(p, -p) for p in pad)
    truth = big[crop]
    clean = np.clip(ss.fftconvolve(big, psf / psf.sum(), mode="same")[crop], 0, None)
    # photons: the stack's own levels at gain 2 ADU/photon (its cell peaks at ~800 ADU)
    photons = clean * (400.0 / clean.max())
    haze = 2.0
    out = []
    rng = np.random.default_rng(31)
    counts = rng.poisson(photons + haze)
    camera = 2.0 * counts + rng.normal(0, 4, shape) + 100.0
    shifts = (DESKEW_SHIFT * np.arange(shape[0])) % 1.0
    # the raw frame's planes are the deskewed ones moved by +s; deskewing moves them back
    raw = (2.0 * rng.poisson(shift_planes_x(photons + haze, -shifts))
           + rng.normal(0, 4, shape))
    deskewed = shift_planes_x(raw, shifts) + 100.0
    wedge = pad_wedges(shape)
    deskewed = np.where(wedge, 100.0, np.round(deskewed))
    out.append(dict(name="LLS camera, deskewed, padded", image=deskewed, psf=psf,
                    truth=truth, offset=100.0, mask=~wedge, kind="camera+interp+pad"))
    out.append(dict(name="LLS camera (gain 2, read 4, offset 100)", image=np.round(camera),
                    psf=psf, truth=truth, offset=100.0, mask=None, kind="camera"))
    rng = np.random.default_rng(32)
    control = rng.poisson(photons + haze)
    out.append(dict(name="LLS Poisson (control)", image=control,
                    psf=psf, truth=truth, offset=haze, mask=None, kind="counts"))
    out.append(dict(name="LLS Poisson, padded", image=np.where(wedge, haze, control),
                    psf=psf, truth=truth, offset=haze, mask=~wedge, kind="counts+pad"))
    rng = np.random.default_rng(33)
    out.append(dict(name="LLS 1-8 counts", image=rng.poisson(clean * (8.0 / clean.max())
                                                             + 0.3),
                    psf=psf, truth=truth, offset=0.3, mask=None, kind="counts"))
    wpsf = dapi_psf()
    dobj = np.clip(dapi_object(data, cache).astype(np.float64), 0, None)
    dclean = np.clip(ss.fftconvolve(dobj, wpsf / wpsf.sum(), mode="same"), 0, None)
    rng = np.random.default_rng(34)
    dimage = 8.0 * rng.poisson(dclean / 8.0) + rng.normal(0, 10, dclean.shape) + 1758.0
    out.append(dict(name="widefield DAPI, offset 1758 (gain 8, read 10)",
                    image=np.round(dimage), psf=wpsf, truth=dobj, offset=1758.0, mask=None,
                    kind="camera, large offset"))
    for s in out:
        s["image"] = np.asarray(s["image"], np.float32)
    return [s for s in out if not only or any(w in s["name"] for w in only)]


def plain_curve(s: dict, cache: Path, n: int = ORACLE_UPDATES,
                boundary: str = "periodic") -> np.ndarray:
    key = "".join(c if c.isalnum() else "_" for c in s["name"])
    def make():
        errors = []
        data = np.clip(np.asarray(s["image"], np.float32) - np.float32(s["offset"]), 0, None)
        with rlcore.Deconvolver(s["psf"], data.shape, n, backend="numpy",
                                boundary=boundary) as rl:
            rl.run(data, observe=lambda k, x: errors.append(nrmse(x, s["truth"], s["mask"])))
        return np.array(errors)
    return _cached(cache / f"curve_{key}_{boundary}_{n}.npy", make)


def semi_rows(data: Path, cache: Path, only=None, boundary: str = "periodic"):
    rows, results = [], {}
    for s in semi_sets(data, cache, only=only):
        c = plain_curve(s, cache, boundary=boundary)
        k = int(np.argmin(c)) + 1
        t0 = time.perf_counter()
        x, info = rlcore.deconvolve(s["image"], s["psf"], "auto", offset=s["offset"],
                                    boundary=boundary, backend="numpy", return_info=True)
        seconds = time.perf_counter() - t0
        e = nrmse(x, s["truth"], s["mask"])
        row = {"set": s["name"], "kind": s["kind"], "shape": list(s["image"].shape),
               "boundary": boundary, "oracle_error": float(c[k - 1]), "oracle_iterations": k,
               "plain_10": float(c[9]), "auto_error": e, "auto_iterations": info.iterations,
               "auto_rule": info.stop_rule, "auto_seconds": seconds,
               "auto_vs_oracle": e / float(c[k - 1]) - 1, "auto_vs_plain_10": e / float(c[9]) - 1}
        rows.append(row)
        results[s["name"]] = (s, x)
        print(json.dumps(row), flush=True)
    return rows, results


# ---------------------------------------------------------------- (c) the phantom sets

#: auto before issue 31 (the code at 5c2d4e3) on bench/iterations.py's nine sets as they
#: are built now, per boundary (bench/experiments/auto_baseline.py: the measured-PSF sets'
#: PSF preparation changed under issue 31, so the results stored then,
#: iterations-s9-speed.json and iterations-noncirculant-half-s8-speed.json, are of other
#: images)
PHANTOM_BEFORE = {"periodic": "bench/results/iterations-auto-base-periodic.json",
                  "non-circulant-half": "bench/results/iterations-auto-base-half.json"}


def phantom_rows(data: Path, boundary: str) -> list[dict]:
    """``iterations="auto"`` on bench/iterations.py's nine sets against the stored
    results of the same sets before this change (auto's error, once each)."""
    from bench import iterations as I

    before = {r["set"]: r for r in json.loads(Path(PHANTOM_BEFORE[boundary]).read_text())}
    rows = []
    for name, image, psf, truth, offset, _ in I.sets(data):
        x, info = rlcore.deconvolve(image, psf, "auto", offset=offset, backend="numpy",
                                    boundary=boundary, return_info=True)
        e, b = I.nrmse(x, truth), before[name]
        rows.append({"set": name, "boundary": boundary, "before": b["auto_error"],
                     "before_iterations": b["auto_iterations"], "auto_error": e,
                     "auto_iterations": info.iterations, "change": e / b["auto_error"] - 1,
                     "oracle_error": b["oracle_error"], "rule": info.stop_rule})
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ---------------------------------------------------------------- report

def _projections(ax_row_xy, ax_row_xz, images, titles, aspect):
    for a, b, x, t in zip(ax_row_xy, ax_row_xz, images, titles):
        xy, xz = x.max(0), x.max(1)
        a.imshow(xy, cmap="gray", vmin=0, vmax=float(np.percentile(xy, 99.9)))
        b.imshow(xz, cmap="gray", vmin=0, vmax=float(np.percentile(xz, 99.9)), aspect=aspect)
        a.set_title(t, fontsize=9)
        for c in (a, b):
            c.set_xticks([])
            c.set_yticks([])


def lls_figure(results: dict, rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {r["run"]: r for r in rows}
    names = ["image", "10 plain, periodic", "auto, periodic", "10 plain, non-circulant-half",
             "auto, non-circulant-half", "cudaDecon"]
    titles = ["image - 98"]
    for n in names[1:]:
        r = by.get(n) or by["cudaDecon (im_decon.tif)"]
        titles.append(f"{n}: {r['iterations']} it\ncorr {r['corr']:.3f} peak "
                      f"{r['peak']:.1f} jump {r['jump']:.3f}")
    fig, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names), 6.2),
                             gridspec_kw={"height_ratios": [320, 88 * 1.54]})
    _projections(axes[0], axes[1], [results[n] for n in names], titles, 1.54)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def semi_figure(results: dict, rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2 * len(rows), 3, figsize=(10, 4.0 * len(rows)))
    for i, r in enumerate(rows):
        s, x = results[r["set"]]
        y = np.clip(s["image"] - s["offset"], 0, None)
        _projections(axes[2 * i], axes[2 * i + 1], [s["truth"], y, x],
                     [f"{r['set']}\ntruth", f"image - offset ({r['boundary']})",
                      f"auto: {r['auto_iterations']} it, NRMSE {r['auto_error']:.3f}\n"
                      f"(oracle {r['oracle_error']:.3f} @ {r['oracle_iterations']})"], 2.0)
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)


def markdown(lls: list[dict], semi: list[dict], phantoms: list[dict] = ()) -> str:
    lines = ["# iterations=\"auto\" on real data (numpy backend, 2-core CPU)", "",
             "`python -m bench.realdata --data ../shared/data` (see the module docstring for "
             "the sets and metrics).", ""]
    if lls:
        lines += ["## LLS stack (88, 320, 481), offset 98, measured PSF", "",
                  "| run | updates | corr with cudaDecon | peak | jump | max | s | rule |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in lls:
            lines.append(f"| {r['run']} | {r['iterations']} | {r['corr']:.3f} | "
                         f"{r['peak']:.2f} | {r['jump']:.3f} | {r['max']:.0f} | "
                         f"{r['seconds']:.1f} | {r['rule']} |")
        lines.append("")
    if semi:
        for boundary in dict.fromkeys(r["boundary"] for r in semi):
            lines += _semi_table([r for r in semi if r["boundary"] == boundary], boundary)
    for boundary in dict.fromkeys(r["boundary"] for r in phantoms):
        lines += [f"## bench/iterations.py's nine sets (boundary {boundary}): auto before and "
                  "after", "", "| set | oracle | auto before @ it | auto now @ it | change | "
                  "rule |", "|---|---:|---|---|---:|---|"]
        for r in phantoms:
            if r["boundary"] == boundary:
                lines.append(f"| {r['set']} | {r['oracle_error']:.4f} | {r['before']:.4f} @ "
                             f"{r['before_iterations']} | {r['auto_error']:.4f} @ "
                             f"{r['auto_iterations']} | {r['change']:+.2%} | {r['rule']} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _semi_table(semi, boundary):
    lines = [f"## Semi-synthetic sets (boundary {boundary})", "",
             "| set | oracle NRMSE @ it | 10 plain | auto NRMSE @ it | vs oracle | "
             "vs 10 plain | rule |", "|---|---|---:|---|---:|---:|---|"]
    for r in semi:
        lines.append(f"| {r['set']} | {r['oracle_error']:.4f} @ {r['oracle_iterations']} | "
                     f"{r['plain_10']:.4f} | {r['auto_error']:.4f} @ "
                     f"{r['auto_iterations']} | {r['auto_vs_oracle']:+.1%} | "
                     f"{r['auto_vs_plain_10']:+.1%} | {r['auto_rule']} |")
    return lines + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/realdata"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--only", nargs="*", default=None,
                        help="only the semi-synthetic sets whose names contain one of these")
    parser.add_argument("--no-lls", action="store_true")
    parser.add_argument("--no-semi", action="store_true")
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument("--phantoms", nargs="*", default=[],
                        help="also bench/iterations.py's nine sets on these boundaries "
                             "(periodic, non-circulant-half), against the stored results")
    parser.add_argument("--boundaries", nargs="*", default=["periodic", "non-circulant-half"],
                        help="boundaries of the semi-synthetic runs (oracle and auto)")
    args = parser.parse_args(argv)
    lls, semi = [], []
    if not args.no_lls:
        lls, lls_results = lls_rows(args.data, args.cache)
        if not args.no_figure:
            lls_figure(lls_results, lls, args.docs / "realdata-lls.png")
    if not args.no_semi:
        for boundary in args.boundaries:
            rows, semi_results = semi_rows(args.data, args.cache, args.only, boundary)
            semi += rows
            if not args.no_figure and boundary == rlcore.boundary.DEFAULT_BOUNDARY:
                semi_figure(semi_results, rows, args.docs / "realdata-semi.png")
    phantoms = [r for b in args.phantoms for r in phantom_rows(args.data, b)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(
        {"lls": lls, "semi": semi, "phantoms": phantoms}, indent=1))
    text = markdown(lls, semi, phantoms)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
