"""Seam error and cost of the block scheduler on the real lattice light-sheet stack.

``python -m bench.blocks --data ../shared/data --out bench/results/blocks``

For each boundary mode: the unblocked run, then blocked runs with small forced blocks and
the default (and other) overlaps; rel. L2 of blocked vs unblocked over the interior (the
volume less a band of PSF half-width at its own edges) and over the whole volume, and the
time of each run (numpy backend, this machine).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import rlcore
from rlcore import psf as P
from rlcore.blocks import auto_overlap
from rlcore.io import read_image


def load(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The deskewed LLS stack (background 98 removed) and its measured PSF (offset and
    noise floor removed: median of the border + 3 robust sigmas; centred)."""
    image, _ = read_image(data / "lls_pycudadecon" / "im_deskewed.tif")
    psf, _ = read_image(data / "lls_pycudadecon" / "psf.tif")
    image = np.clip(image.astype(np.float32) - 98.0, 0, None)
    psf = P.center(P.background_subtract(psf.astype(np.float32), noise=3.0))
    return image, psf


def rel(a: np.ndarray, b: np.ndarray, region: tuple[slice, ...]) -> float:
    return float(np.linalg.norm(a[region] - b[region]) / np.linalg.norm(b[region]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--iterations", type=int, nargs="*", default=[10])
    ap.add_argument("--block", type=int, nargs=3, default=[88, 320, 120])
    ap.add_argument("--overlap-scale", type=float, nargs="*", default=[0.5, 1.0],
                    help="overlaps tried, as multiples of the automatic overlap")
    ap.add_argument("--boundaries", nargs="*", default=list(rlcore.boundary.BOUNDARIES))
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    image, psf = load(args.data)
    band = tuple(p // 2 for p in psf.shape)
    interior = tuple(slice(b, n - b) for b, n in zip(band, image.shape))
    rows = []
    print(f"image {image.shape}, PSF {psf.shape}, block core {tuple(args.block)}", flush=True)
    for iterations in args.iterations:
        auto = auto_overlap(psf.shape, iterations)
        for mode in args.boundaries:
            t = time.perf_counter()
            ref = rlcore.deconvolve(image, psf, iterations, boundary=mode, backend=args.backend)
            t_ref = time.perf_counter() - t
            for scale in args.overlap_scale:
                overlap = tuple(int(round(scale * o)) for o in auto)
                t = time.perf_counter()
                out, info = rlcore.deconvolve(image, psf, iterations, boundary=mode,
                                              backend=args.backend, return_info=True,
                                              block_shape=tuple(args.block), overlap=overlap)
                t_blk = time.perf_counter() - t
                row = {"iterations": iterations, "boundary": mode, "overlap": overlap,
                       "auto": scale == 1.0, "blocks": info.blocks.n_blocks,
                       "work_ratio": round(info.blocks.work_ratio, 2),
                       "interior_rel_l2": rel(out, ref, interior),
                       "whole_rel_l2": rel(out, ref, tuple(slice(None) for _ in ref.shape)),
                       "time_unblocked_s": round(t_ref, 2), "time_blocked_s": round(t_blk, 2)}
                rows.append(row)
                print(row, flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
        lines = [
            "# Block scheduler: seam error on real LLS data",
            "",
            f"`python -m bench.blocks {' '.join(argv or [])}`".rstrip(),
            "",
            f"Image {image.shape} (lls_pycudadecon/im_deskewed.tif, background 98 removed), "
            f"measured PSF {psf.shape} (offset removed, centred), block cores "
            f"{tuple(args.block)}, automatic overlap (rlcore.blocks.auto_overlap) "
            f"{auto_overlap(psf.shape, args.iterations[0])} voxels per side; interior = "
            f"the volume less a band of PSF half-width {band}. Backend {args.backend}.",
            "",
            "| iterations | boundary | overlap | blocks | voxels computed / image | "
            "interior rel. L2 | whole rel. L2 | unblocked s | blocked s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['iterations']} | {r['boundary']} | {r['overlap']}"
                f"{' (auto)' if r['auto'] else ''} | {r['blocks']} | {r['work_ratio']} | "
                f"{r['interior_rel_l2']:.2e} | {r['whole_rel_l2']:.2e} | "
                f"{r['time_unblocked_s']} | {r['time_blocked_s']} |")
        args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
