"""Boundary modes on objects cut by the volume's edges: full vs half extension.

``python -m bench.boundaries --data ../shared/data --out bench/results/boundaries-half``

For each mode of :data:`rlcore.boundary.BOUNDARIES` (``non-circulant`` is the full
extension, image + P - 1; ``non-circulant-half`` image + (P + 1) / 2): NRMSE to the truth
(after flux scaling) over the whole volume and in the outer band of PSF half-width, at 10
and 50 iterations, on the edge-cut phantoms of ``bench/variants.py`` (EPFL bars blurred on
their full field and cropped through the bars; random blocks on a larger field); the grid
and the time of 10 iterations (median of 5 interleaved rounds, numpy backend); and on the
LLS stack the correlation with cudaDecon's ``im_decon.tif`` (after undoing its 1-voxel z
offset), 10 iterations, the prepared PSF of ``tests/test_io_cli.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import tifffile

import rlcore
from bench.variants import (
    band_mask,
    edge_case,
    load_bars,
    nrmse,
    psf_half_width,
    random_edge_case,
)
from rlcore.boundary import BOUNDARIES, make_grid


def errors(cases: dict, half: tuple[int, ...]) -> list[dict]:
    rows = []
    for name, (image, psf, truth) in cases.items():
        band = band_mask(truth.shape, half)
        for mode in BOUNDARIES:
            row = {"case": name, "mode": mode,
                   "grid": list(make_grid(image.shape, psf.shape, mode).shape)}
            for n in (10, 50):
                out = rlcore.deconvolve(image, psf, n, boundary=mode, backend="numpy")
                scale = truth.sum() / out.sum()
                row[f"nrmse@{n}"] = round(nrmse(out, truth), 4)
                row[f"band@{n}"] = round(float(
                    np.sqrt(np.mean((out[band] * scale - truth[band]) ** 2))
                    / np.sqrt(np.mean(truth ** 2))), 4)
            rows.append(row)
    return rows


def timing(rounds: int = 5) -> dict:
    from bench.compare import gaussian_psf, make_image

    image, psf = make_image((64, 256, 256)), gaussian_psf(31)
    times: dict[str, list[float]] = {m: [] for m in BOUNDARIES}
    for mode in BOUNDARIES:
        rlcore.deconvolve(image, psf, 1, backend="numpy", boundary=mode)
    for _ in range(rounds):
        for mode in BOUNDARIES:
            t0 = time.perf_counter()
            rlcore.deconvolve(image, psf, 10, backend="numpy", boundary=mode)
            times[mode].append(time.perf_counter() - t0)
    out = {}
    for mode, t in times.items():
        grid = make_grid(image.shape, psf.shape, mode).shape
        out[mode] = {"grid": list(grid), "grid_over_image": round(
            math.prod(grid) / math.prod(image.shape), 3),
            "median_s": round(statistics.median(t), 3),
            "ratio_to_periodic": round(statistics.median(
                a / b for a, b in zip(t, times["periodic"])), 3)}
    return out


def lls(data: Path) -> dict:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_io_cli import _lls

    image_path, psf = _lls(data)
    raw = tifffile.imread(image_path).astype(np.float32)
    reference = tifffile.imread(image_path.parent / "im_decon.tif").astype(np.float64)
    crop = tuple(slice(0, n) for n in reference.shape)
    psf = rlcore.psf.centered(psf)[0]

    def aligned_corr(a):
        c = np.fft.irfftn(np.fft.rfftn(a) * np.conj(np.fft.rfftn(reference)), a.shape)
        peak = np.unravel_index(np.argmax(c), c.shape)
        shift = tuple(int(p if p <= n // 2 else p - n) for p, n in zip(peak, a.shape))
        a = np.roll(a, tuple(-s for s in shift), axis=(0, 1, 2))
        return round(float(np.corrcoef(a.ravel(), reference.ravel())[0, 1]), 4)

    image = np.clip(raw - 98, 0, None)
    out = {"data": aligned_corr(image[crop].astype(np.float64))}
    for mode in BOUNDARIES:
        result = rlcore.deconvolve(image, psf, 10, boundary=mode, backend="numpy")
        out[mode] = aligned_corr(result[crop].astype(np.float64))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    image, psf, truth = load_bars(args.data)
    half = psf_half_width(psf)
    edge_image, edge_truth = edge_case(image, psf, truth)
    small = psf[tuple(slice(n // 2 - h - 1, n // 2 + h + 2) for n, h in zip(psf.shape, half))]
    small = small / small.sum()
    random_image, random_truth = random_edge_case(small)
    cases = {"edge-cut bars": (edge_image, psf, edge_truth),
             "edge-cut random blocks": (random_image, small, random_truth)}
    report = {"errors": errors(cases, half), "lls_corr_with_cudaDecon": lls(args.data),
              "time_10_iterations_64x256x256_psf31": timing()}
    print(json.dumps(report, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
