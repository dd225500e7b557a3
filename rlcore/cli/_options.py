"""The ``rlcore`` command's argument parser: its subcommands, their options and the
argument types (counts, sizes in bytes, background values)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _iterations(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int or 'auto', got {text!r}") from None


def _version() -> str:
    from rlcore import __version__

    return __version__


def _level(text: str, meaning: str = "") -> float | str:
    """A non-negative finite number, or "auto"."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', got {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be >= 0 and finite{meaning}, got {text!r}")
    return value


def _psf_background(text: str) -> float | None:
    value = _level(text)
    return None if value == "auto" else value


def _background_value(text: str) -> float | str:
    return _level(text, " (the camera offset, in the image's units)")


def _run_options() -> dict[str, tuple[tuple[str, ...], dict]]:
    """The options of a deconvolution run, one table for ``deconvolve`` and ``batch``
    (each takes the ones it supports, so the two cannot drift apart)."""
    from rlcore.backprojector import BACK_PROJECTORS
    from rlcore.boundary import BOUNDARIES, FACE_BOUNDARY

    return {
        "iterations": (("-n", "--iterations"), dict(
            type=_iterations, default=10,
            help="RL iterations (10), or 'auto': stop chosen from the data by a held-out "
                 "split (see rlcore.autostop)")),
        "max_iterations": (("--max-iterations",), dict(
            type=int, default=200, help="with -n auto: the most updates it may run (200)")),
        "gain": (("--gain",), dict(
            type=float, default=None,
            help="with -n auto: camera gain, image units per photon (default: photon "
                 "counts if the data look like counts, else fitted)")),
        "backend": (("--backend",), dict(
            default="auto", help="backend name or 'auto' (see rlcore info)")),
        "device": (("--device",), dict(
            default=None, help="backend device (numpy: thread count)")),
        "boundary": (("--boundary",), dict(
            default=FACE_BOUNDARY, choices=BOUNDARIES,
            help=f"how the volume's edges are modelled (default {FACE_BOUNDARY}: objects "
                 "cut by the edges do not move; periodic is about 2x faster on CPUs)")),
        "accelerate": (("--accelerate",), dict(
            nargs="?", const="biggs-andrews", default=False,
            choices=["biggs-andrews", "momentum"],
            help="acceleration: biggs-andrews (the default when given alone) or momentum "
                 "(deconwolf's scaled heavy ball)")),
        "back_projector": (("--back-projector",), dict(
            default="auto", choices=("auto",) + BACK_PROJECTORS,
            help="back projector: matched (classic RL; what auto means for a fixed count; "
                 "with -n auto, matched with momentum on padded boundaries, "
                 "Wiener-Butterworth then matched with momentum on periodic), "
                 "wiener-butterworth (Guo 2020) or otf-masked (PetaKit5D); the last two "
                 "need 2-15 iterations instead of tens")),
        "tv": (("--tv",), dict(type=float, default=0.0, help="RLTV weight, 0 (off)")),
        **_data_options(),
    }


def _data_options() -> dict[str, tuple[tuple[str, ...], dict]]:
    """:func:`_run_options`' part about the data: background, the PSF's preparation,
    the output, blocks."""
    return {
        "background": (("--background",), dict(
            type=_background_value, default=0.0, metavar="V",
            help="the image's background (camera offset), subtracted first: a number in "
                 "the image's units (0), or auto (estimated: rlcore.background.estimate)")),
        "psf_background": (("--psf-background",), dict(
            type=_psf_background, default=None, metavar="V",
            help="the PSF's background, subtracted then clipped at 0: a number in the "
                 "PSF's units, or auto (default: the median of its darkest face plus 3 "
                 "noise standard deviations, rlcore.psf.border_background); 0 keeps a "
                 "clean PSF's tails")),
        "psf_depths": (("--psf-depths",), dict(
            type=float, nargs="+", default=None, metavar="D",
            help="a depth-variant PSF: the PSF files are its strata, measured or computed "
                 "at these depths, planes of the image's z axis (0: its first plane), one "
                 "per file, increasing; or one file holding the K strata, (K, Z, Y, X) "
                 "(rlcore.deconvolve's psf_depths; -n auto too)")),
        "psf_depths_um": (("--psf-depths-um",), dict(
            type=float, nargs="+", default=None, metavar="D",
            help="as --psf-depths, in microns below the image's first plane (converted "
                 "by the image's z voxel size)")),
        "no_center_psf": (("--no-center-psf",), dict(
            action="store_true",
            help="keep the PSF array as given (default: its background removed and its "
                 "centroid moved to voxel n // 2, so the result is not shifted)")),
        "no_resample_psf": (("--no-resample-psf",), dict(
            action="store_true",
            help="keep the PSF's voxels as given (default: resampled to the image's voxel "
                 "size when both files state theirs, rlcore.psf.resample)")),
        "uint16": (("--uint16",), dict(
            action="store_true",
            help="write uint16 scaled so the maximum is 65535 (default: float32)")),
        "ngff_version": (("--ngff-version",), dict(
            default=None, choices=("0.4", "0.5"),
            help="OME-Zarr output: the OME-NGFF version written (default: the input's, "
                 "else ome-zarr's current one); batch: for its OME-Zarr inputs")),
        "progress": (("--progress",), dict(action="store_true", help="show a progress bar")),
        "overwrite": (("--overwrite",), dict(
            action="store_true", help="replace existing output")),
        "block_shape": (("--block-shape",), dict(
            type=int, nargs="+", default=None, metavar="N",
            help="compute in blocks with these cores, voxels (Z Y X)")),
        "overlap": (("--overlap",), dict(
            type=int, nargs="+", default=None, metavar="N",
            help="block overlap per side, voxels (default: the PSF extent)")),
        "max_memory": (("--max-memory",), dict(
            type=_bytes, default=None,
            help="bytes per block (e.g. 2G, 512M): blocks sized automatically")),
        "dry_run": (("--dry-run",), dict(
            action="store_true",
            help="print the block plan and memory estimate, compute nothing")),
    }


def _add_run_options(p: argparse.ArgumentParser, names: Sequence[str]) -> None:
    table = _run_options()
    for name in names:
        flags, kwargs = table[name]
        p.add_argument(*flags, **kwargs)


def _psf_parser(sub: Any) -> None:
    p_psf = sub.add_parser("psf", help="make a PSF: distill from beads, gaussian, widefield")
    kinds = p_psf.add_subparsers(dest="psf_command", required=True)
    k = kinds.add_parser("distill", help="distil a PSF from an image of beads")
    k.add_argument("beads", type=Path, help="bead image (TIFF, OME-TIFF, OME-Zarr)")
    k.add_argument("--shape", type=int, nargs="+", default=None, help="PSF shape, voxels")
    k.add_argument("--threshold", type=float, default=None,
                   help="bead detection threshold over background (default: automatic)")
    k.add_argument("--iterations", type=int, default=30,
                   help="RL iterations of the reverse deconvolution (30)")
    g = kinds.add_parser("gaussian", help="a Gaussian PSF")
    g.add_argument("--shape", type=int, nargs="+", required=True, help="shape, voxels")
    g.add_argument("--sigma", type=float, nargs="+", required=True, help="sigma, voxels")
    w = kinds.add_parser("widefield", help="theoretical widefield PSF (psfmodels)")
    w.add_argument("--na", type=float, required=True, help="numerical aperture")
    w.add_argument("--wavelength", type=float, required=True, help="emission, microns")
    w.add_argument("--ni", type=float, default=1.515, help="immersion refractive index")
    w.add_argument("--voxel-size", type=float, nargs=3, required=True, metavar=("Z", "Y", "X"),
                   help="microns")
    w.add_argument("--shape", type=int, nargs=3, required=True, metavar=("Z", "Y", "X"),
                   help="PSF shape, voxels")
    for q in (k, g, w):
        q.add_argument("-o", "--output", type=Path, required=True, help="output PSF file")
        q.add_argument("--overwrite", action="store_true", help="replace an existing output")


#: batch --format: each output's suffix
_FORMATS = {"ome-tiff": ".ome.tif", "ome-zarr": ".ome.zarr", "tiff": ".tif"}


def parser() -> argparse.ArgumentParser:
    """The ``rlcore`` command's argument parser (every subcommand and option; the CLI
    reference is generated from it)."""
    p = argparse.ArgumentParser(prog="rlcore", description="Richardson-Lucy deconvolution.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.add_argument("--version", action="version", version=f"rlcore {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("deconvolve", help="deconvolve a TIFF / OME-TIFF stack")
    d.add_argument("image", type=Path,
                   help="image: TIFF, OME-TIFF or OME-Zarr, or CZI, ND2, LIF, ... through "
                        "bioio (pip install 'rlcore[formats]'); (Z, Y, X), or a series with "
                        "T and C axes (read from the file's metadata)")
    d.add_argument("psf", type=Path, nargs="+",
                   help="PSF file (Z, Y, X): one for all channels, or one per channel in "
                        "the order of the image's C axis")
    d.add_argument("-o", "--output", type=Path, required=True,
                   help="output: .tif, .ome.tif (OME-TIFF) or .ome.zarr (OME-Zarr)")
    _add_run_options(d, list(_run_options()))

    sub.add_parser("info", help="versions, backends and devices")
    _psf_parser(sub)

    b = sub.add_parser("batch", help="deconvolve many files with one plan per shape (the "
                       "next file read while one computes)")
    b.add_argument("inputs", nargs="+",
                   help="image files or glob patterns (quoted: 'data/*.ome.tif'); TIFF, "
                        "OME-TIFF, OME-Zarr, or CZI, ND2, LIF, ... through bioio; series "
                        "with T and C axes too")
    b.add_argument("--psf", type=Path, nargs="+", required=True,
                   help="PSF file: one for all channels, or one per channel")
    b.add_argument("-o", "--output", type=Path, required=True,
                   help="output folder (made if missing); each result keeps its input's "
                        "name, format and axes (see --format)")
    b.add_argument("--format", default="input", choices=("input",) + tuple(_FORMATS),
                   help="the outputs' format: input (each its input's; a vendor file, "
                        "CZI, ND2, LIF, ..., as OME-TIFF), ome-tiff, ome-zarr or tiff; "
                        "the name keeps the input's stem")
    _add_run_options(b, list(_run_options()))  # every option of deconvolve, per file

    s = sub.add_parser("sample", help="write the shipped real sample (LLS image + PSF)")
    s.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    s.add_argument("--overwrite", action="store_true", help="replace the files if present")
    return p


def _bytes(text: str) -> int:
    """'2G', '512M', '1.5GiB', '1000000' -> bytes."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(float(t))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size in bytes: {text!r} (e.g. 2G)") from None
