"""PSF centring on the shipped real PSFs (issue #31):
``python -m bench.psf_centring --data ../shared/data [--json bench/results/psf-centring.json]``.

For each PSF (the raw LLS bead ``lls_pycudadecon/psf.tif``; the same after a median
background subtraction, clipped at 0, as a user would do; RedLionfish's bead-averaged
``PSF_RFI_8bit.tif``; a PSF distilled from the confocal beads ``Bead_Image1_crop.tif`` with
``rlcore.psf.distill(beads, (31, 41, 41), threshold=20)``, as ``bench.psf_demo``), this
prints, for :func:`rlcore.psf.centered` and for the function as it was at commit 5c2d4e3
(copied below, "old"):

* ``before``: the centre's offset from ``n // 2`` before centring, voxels (z, y, x). New:
  :func:`rlcore.psf.centroid_offset` (the centroid of the foreground within a window around
  the peak, iterated to a fixed point); old: the centroid of the whole foreground array.
* ``moved``: the shift one pass applied.
* ``after``: the centre's offset after one pass (each function's own definition).
* ``2nd``: the largest shift a second pass applies (0: idempotent).
* ``warns``: whether the Python API's off-centre warning fires on the centred PSF.
* ``1 shift``: (new only) the largest offset left by the first shift alone, before
  :func:`rlcore.psf.centered` refines it (how well the centre follows a shift).
* ``int``: (new only) ``subvoxel=False``: the largest offset after one pass and the largest
  shift of a second.
* ``bead``: a bead (a Gaussian of 0.5 voxel, at a sub-voxel position) convolved with the
  PSF's foreground (noise-free data), then deconvolved with the centred PSF
  (``rlcore.deconvolve(..., 30, backend="numpy", boundary="periodic")``): the largest
  distance, voxels, between the result's bead and the data's, measured by
  :func:`rlcore.psf.center_of` on each (``c``) and by the centroid in a box of two full
  widths at half maximum around the data's bead (``box``).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import tifffile

import rlcore
from rlcore import psf as P
from rlcore.psf import fwhm
from rlcore.psf._centring import _shift, _to_centre

# -- the centring as of commit 5c2d4e3 (rlcore/psf.py, rlcore/_psfmath.py), for comparison


def _old_foreground(psf: np.ndarray) -> np.ndarray:
    p = np.asarray(psf, dtype=np.float64)
    shell = np.ones(p.shape, bool)
    shell[tuple(slice(2, n - 2) for n in p.shape)] = False
    values = p[shell] if shell.any() else np.zeros(1)
    median = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - median)))
    clean = np.clip(p - (median + 3 * sigma), 0, None)
    return clean if clean.sum() > 0 else np.clip(p, 0, None)


def _old_centroid_offset(psf: np.ndarray) -> tuple[float, ...]:
    clean = _old_foreground(psf)
    return tuple(float(c) - n // 2 for c, n in zip(ndi.center_of_mass(clean), clean.shape))


def _old_center_subvoxel(p: np.ndarray) -> np.ndarray:
    q = p / p.sum()
    offset = [n // 2 - c for n, c in zip(p.shape, ndi.center_of_mass(q))]
    moved = np.clip(np.fft.ifftn(ndi.fourier_shift(np.fft.fftn(q), offset)).real, 0, None)
    return (moved * (p.sum() / moved.sum())).astype(np.float32)


def _old_centered(psf: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    offset = _old_centroid_offset(psf)
    if max(abs(o) for o in offset) <= 0.05:
        return psf, (0.0,) * len(offset)
    return _old_center_subvoxel(_old_foreground(psf)), tuple(-o for o in offset)


# -- measurements


def _warns(psf: np.ndarray, old: bool = False) -> bool:
    if old:  # the old warning: the old centroid more than 0.5 voxel off
        return max(abs(o) for o in _old_centroid_offset(psf)) > 0.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = np.ones(np.asarray(psf).shape, np.float32)  # what the API measures and says
        rlcore.deconvolve(image, np.asarray(psf, np.float64), 0, backend="numpy")
    return bool(caught)


def _box_centroid(a: np.ndarray, centre, half) -> np.ndarray:
    box = tuple(slice(max(0, int(round(c - h))), int(round(c + h)) + 1)
                for c, h in zip(centre, half))
    local = np.clip(a[box], 0, None)
    return np.array([s.start + c for s, c in zip(box, ndi.center_of_mass(local))])


def bead_test(raw: np.ndarray, centred: np.ndarray, iterations: int = 30
              ) -> tuple[float, float]:
    """(centre distance, box-centroid distance), voxels, between a deconvolved bead and
    the data's (see the module's docstring)."""
    truth = P.foreground(raw)
    light = ndi.gaussian_filter(truth, 1.0, mode="constant")
    widths = [fwhm(light.sum(axis=tuple(a for a in range(light.ndim) if a != axis)))[0]
              for axis in range(light.ndim)]  # the profiles' widths, voxels
    shape = tuple(n + 2 * int(np.ceil(w)) for n, w in zip(truth.shape, widths))
    x0 = np.array([n // 2 for n in shape]) + np.array([0.3, -0.4, 0.2])[:len(shape)]
    grid = np.indices(shape, dtype=np.float64)
    bead = np.exp(-0.5 * sum((g - c) ** 2 for g, c in zip(grid, x0)) / 0.5 ** 2)
    bead *= 1e6 / bead.sum()
    kernel = np.zeros(shape)
    kernel[tuple(slice(0, n) for n in truth.shape)] = truth / truth.sum()
    kernel = np.roll(kernel, [-(n // 2) for n in truth.shape], axis=tuple(range(len(shape))))
    data = np.fft.irfftn(np.fft.rfftn(bead) * np.fft.rfftn(kernel), shape,
                         axes=tuple(range(len(shape))))
    data = np.clip(data, 0, None)
    data = data.astype(np.float32)
    with warnings.catch_warnings():  # the old function's PSFs warn: they are off-centre
        warnings.simplefilter("ignore", UserWarning)
        result = rlcore.deconvolve(data, centred, iterations, backend="numpy",
                                   boundary="periodic")
    c_data = np.array(P.center_of(data, background=0.0))
    c_result = np.array(P.center_of(result, background=0.0))
    half = 2 * np.array(widths)
    box = _box_centroid(result, c_data, half) - _box_centroid(data, c_data, half)
    return float(np.abs(c_result - c_data).max()), float(np.abs(box).max())


def _load(data: Path) -> dict[str, np.ndarray]:
    lls = tifffile.imread(data / "lls_pycudadecon" / "psf.tif")
    beads = tifffile.imread(data / "confocal_beads_bian" / "Bead_Image1_crop.tif")
    return {
        "LLS psf.tif raw": lls,
        "LLS psf.tif - median": np.clip(lls.astype(np.float32) - np.median(lls), 0, None),
        "PSF_RFI_8bit.tif": tifffile.imread(data / "redlionfish" / "PSF_RFI_8bit.tif"),
        "distilled confocal": P.distill(beads, (31, 41, 41), threshold=20),
    }


def _fmt(v) -> str:
    return "(" + ", ".join(f"{x:+.3f}" for x in v) + ")"


def measure(name: str, psf: np.ndarray, beads: bool) -> dict:
    row: dict = {"psf": name, "shape": list(psf.shape),
                 "peak": [int(i) for i in np.unravel_index(np.argmax(psf), psf.shape)]}
    bg = P.border_background(psf)
    row["background"] = {"level": bg.level, "noise": bg.noise}
    t = time.perf_counter()
    out, moved = P.centered(psf)
    row["seconds"] = time.perf_counter() - t
    _, moved2 = P.centered(out)
    clean = P.foreground(psf)
    _, _, passes = _to_centre(clean, True, P.center_of)
    first = _shift(clean, np.array([n // 2 for n in psf.shape]) - P.center_of(clean))
    out_i, _ = P.centered(psf, subvoxel=False)
    _, moved_i2 = P.centered(out_i, subvoxel=False)
    row["new"] = {
        "before": P.centroid_offset(psf), "moved": moved, "after": P.centroid_offset(out),
        "second": float(np.abs(moved2).max()), "warns": _warns(out), "passes": passes,
        "first_shift_only": float(np.abs(P.centroid_offset(first)).max()),
        "int_after": float(np.abs(P.centroid_offset(out_i)).max()),
        "int_second": float(np.abs(moved_i2).max()),
        "peak_after": [int(i) for i in np.unravel_index(np.argmax(out), out.shape)],
    }
    old, old_moved = _old_centered(psf)
    _, old_moved2 = _old_centered(old)
    row["old"] = {
        "before": _old_centroid_offset(psf), "moved": old_moved,
        "after": _old_centroid_offset(old), "second": float(np.abs(old_moved2).max()),
        "warns": _warns(old, old=True), "warns_now": _warns(old),
        "peak_after": [int(i) for i in np.unravel_index(np.argmax(old), old.shape)],
    }
    if beads:
        row["new"]["bead"] = bead_test(psf, out)
        row["old"]["bead"] = bead_test(psf, old)
    return row


def table(rows: list[dict]) -> str:
    head = ["PSF", "fn", "before", "moved", "after one pass", "2nd pass", "warns after",
            "1st shift alone", "int: after / 2nd", "bead: c / box"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        for fn in ("new", "old"):
            m = r[fn]
            warns = "yes" if m["warns"] else "no"
            if fn == "old" and m["warns_now"] != m["warns"]:
                warns += f" (new warning: {'yes' if m['warns_now'] else 'no'})"
            cells = [r["psf"] if fn == "new" else "", fn, _fmt(m["before"]), _fmt(m["moved"]),
                     _fmt(m["after"]), f"{m['second']:.3f}", warns,
                     f"{m['first_shift_only']:.3f} ({m['passes']} passes)" if fn == "new"
                     else "",
                     f"{m['int_after']:.3f} / {m['int_second']:.3f}" if fn == "new" else "",
                     f"{m['bead'][0]:.3f} / {m['bead'][1]:.3f}" if "bead" in m else ""]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--json", type=Path,
                   help="also write the rows here, and the table beside it (.md)")
    p.add_argument("--no-beads", action="store_true", help="skip the deconvolution test")
    args = p.parse_args(argv)
    rows = []
    for name, psf in _load(args.data).items():
        rows.append(measure(name, psf, not args.no_beads))
        r = rows[-1]
        print(f"{name}: shape {tuple(r['shape'])}, peak {tuple(r['peak'])}, background "
              f"{r['background']['level']:.1f} +- {r['background']['noise']:.1f}, "
              f"peak after {tuple(r['new']['peak_after'])} (old "
              f"{tuple(r['old']['peak_after'])}), {r['seconds']:.2f} s", flush=True)
    print()
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1, default=float) + "\n")
        md = args.json.with_suffix(".md")
        md.write_text("# PSF centring on the shipped real PSFs (issue #31)\n\n"
                      "`python -m bench.psf_centring --data ../shared/data --json "
                      f"{args.json}`; columns: see `bench/psf_centring.py`.\n\n"
                      + table(rows) + "\n")
        print(f"wrote {args.json} and {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
