"""The ``rlcore`` command: a thin layer over the public API.

``rlcore deconvolve IMAGE PSF -o OUT``, ``rlcore info``, ``rlcore sample -o DIR``.
Errors in the input exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import platform
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "parser"]

_EXPECTED = (ValueError, TypeError, FileNotFoundError, FileExistsError, OSError, MemoryError,
             ImportError)


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


_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".zarr", ".ome.zarr")


def _is_zarr_path(path: Path) -> bool:
    return str(path).lower().endswith(".zarr")


def _check_output(path: Path, overwrite: bool) -> None:
    """Before any computing: the output's format, folder and (without --overwrite) absence."""
    name = path.name.lower()
    if not name.endswith(_SUFFIXES):
        raise ValueError(f"output: {path} is not .tif, .ome.tif or .ome.zarr; rlcore writes "
                         "TIFF, OME-TIFF or OME-Zarr")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output: folder {path.parent} does not exist; create it "
                                "first")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    if name.endswith(".zarr"):
        try:
            import ome_zarr.writer  # noqa: F401
            import zarr  # noqa: F401
        except ImportError:
            raise ImportError(f"output: {path} is OME-Zarr, which needs ome-zarr and zarr: "
                              "pip install 'rlcore[dask]'") from None


def _with_psf_axes(image, axes: str, psf_ndim: int):
    """A single plane (read as (Y, X)) with a 3-D PSF: the plane as (1, Y, X), so that it
    is deconvolved by the PSF's in-focus plane and written back with its z axis."""
    import numpy as np

    spatial = sum(a in "zyx" for a in axes)
    if psf_ndim == 2 and "z" in axes:
        warnings.warn(f"psf: a 2-D PSF (Y, X) with an image that has a Z axis (shape "
                      f"{tuple(image.shape)}, {axes.upper()}): each plane is deconvolved in "
                      "2-D; pass a 3-D PSF (Z, Y, X) for a 3-D deconvolution",
                      UserWarning, stacklevel=1)
    if psf_ndim == 3 and spatial == 2:
        at = axes.index("y")
        return np.expand_dims(image, at), axes[:at] + "z" + axes[at:]
    return image, axes


def _psf_background(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', got {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be >= 0 and finite, got {text!r}")
    return value


def _background_value(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', got {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be >= 0 and finite (the camera offset, in "
                                         f"the image's units), got {text!r}")
    return value


def _image_background(value: float | str, image, path: Path) -> float:
    """``--background``: the number given, or the image's estimate (said on stderr)."""
    if value != "auto":
        return float(value)
    from rlcore.background import estimate

    level = estimate(image)
    print(f"rlcore: {path}: background {level:g} (estimated: the mode of its darker half; "
          "--background V sets it)", file=sys.stderr)
    return level


def _centred(psfs: list, paths: Sequence[Path], keep: bool,
             background: float | None = None) -> list:
    """The faces' PSF preparation (:func:`rlcore.psf.centered`): each PSF's background
    removed (``background``, or estimated from its border) and its centre moved to voxel
    n // 2, said on stderr; ``keep`` (--no-center-psf): as given, only a given background
    subtracted."""
    import numpy as np

    if keep:
        if background is None:
            return psfs
        return [np.clip(p.astype(np.float32) - np.float32(background), 0, None)
                for p in psfs]
    from rlcore.psf import centered

    out = []
    for psf, path in zip(psfs, paths):
        psf, moved = centered(psf, background=background)
        if any(moved) or background is not None:
            removed = ("no background removed" if background == 0 else
                       f"background {background:g} removed (--psf-background)"
                       if background is not None else
                       "background estimated from its border removed")
            print(f"rlcore: {path}: PSF centred on its centroid, moved by "
                  f"({', '.join(f'{m:+.2f}' for m in moved)}) voxels, {removed} "
                  "(--no-center-psf keeps it as given)", file=sys.stderr)
        out.append(psf)
    return out


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


def _device(value: str | None):
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def _deconvolve(args: argparse.Namespace) -> int:
    _check_output(args.output, args.overwrite)
    if args.ngff_version and not args.output.name.lower().endswith(".zarr"):
        raise ValueError(f"--ngff-version: {args.output} is a TIFF; the OME-NGFF version "
                         "applies to an OME-Zarr output (.ome.zarr)")
    return _run_file(args, args.image, args.output, _PSFs(args))


class _PSFs:
    """The PSF files read, and prepared (:func:`_centred`) once, when first asked for:
    after the first image is read, so that a bad image fails before any PSF work."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self._raw, self._prepared = args, None, None
        self._resampled: dict = {}
        self._said: set = set()
        #: each PSF's name in messages: its file, or ``file[k]`` for the k-th of a stack
        self.names: list = list(args.psf)

    @property
    def raw(self) -> list:
        if self._raw is None:
            a = self.args
            strata = a.psf_depths is not None or a.psf_depths_um is not None
            if strata and len(a.psf) == 1:  # one file may hold the K strata
                self._raw = _read_psf_stack(Path(a.psf[0]))
                if len(self._raw) > 1:
                    self.names = [f"{a.psf[0]}[{k}]" for k in range(len(self._raw))]
            else:
                self._raw = _read_psfs(a.psf)
        return self._raw

    @property
    def prepared(self) -> list:
        if self._prepared is None:
            a = self.args
            raw = self.raw  # first: reading a stack names its strata (self.names)
            self._prepared = _centred([p for p, _ in raw], self.names, a.no_center_psf,
                                      a.psf_background)
        return self._prepared

    def for_image(self, voxel: Any, path: Path) -> tuple[list, str | None]:
        """The prepared PSFs at the image's voxel size ``voxel`` (:func:`_voxel_sizes`;
        resampled once per voxel size, said on stderr) and the provenance note of the
        resampling (None when not resampled). With --no-resample-psf, a warning for
        each PSF whose voxel size differs from the image's."""
        out, notes = [], []
        for psf, psf_path, (_, psf_voxel) in zip(self.prepared, self.names, self.raw):
            a, b, unknown = _voxel_sizes(psf_voxel, voxel, psf.ndim)
            key = (str(psf_path), b)
            if a == b or self.args.no_resample_psf:
                if a != b:
                    warnings.warn(f"psf: {psf_path} has voxel size {_microns(a)} um, the "
                                  f"image {_microns(b)} um; resample the PSF to the "
                                  "image's voxel size for a correct result (drop "
                                  "--no-resample-psf)",
                                  UserWarning, stacklevel=1)
                out.append(psf)
            elif key in self._resampled:
                out.append(self._resampled[key])
            else:
                from rlcore.psf import resample

                self._resampled[key] = resampled = resample(psf, a, b)
                print(f"rlcore: {path}: PSF {psf_path} resampled from voxel size "
                      f"{_microns(a)} um to the image's {_microns(b)} um, shape "
                      f"{psf.shape} -> {resampled.shape} (--no-resample-psf keeps it as "
                      "given)", file=sys.stderr)
                out.append(resampled)
            if a != b and not self.args.no_resample_psf:
                notes.append(f"{psf_path}: resampled from {_microns(a)} um to "
                             f"{_microns(b)} um (rlcore.psf.resample)")
            if unknown and (str(psf_path), unknown) not in self._said:
                self._said.add((str(psf_path), unknown))
                print(f"rlcore: {path}: PSF {psf_path}: {unknown}", file=sys.stderr)
        return out, "; ".join(notes) or None


def _microns(sizes: Sequence[float]) -> str:
    return f"({', '.join(f'{v:g}' for v in sizes)})"


def _voxel_sizes(psf_voxel: Any, voxel: Any, ndim: int) -> tuple[tuple, tuple, str | None]:
    """The PSF's and the image's voxel sizes on the PSF's ``ndim`` axes, microns: an axis
    one file states and the other does not takes the stated size on both (said in the
    returned line), an axis neither states 1 on both; sizes within 1e-6 of each other
    are equal."""
    names = "zyx"[-ndim:]
    a, b = list(psf_voxel.as_tuple(ndim)), list(voxel.as_tuple(ndim))
    missing = {"the PSF": [n for n, x, y in zip(names, a, b) if x is None and y is not None],
               "the image": [n for n, x, y in zip(names, a, b) if y is None and x is not None]}
    for i in range(ndim):
        a[i] = b[i] if a[i] is None else a[i]
        b[i] = a[i] if b[i] is None else b[i]
        if a[i] is None:  # neither states it
            a[i] = b[i] = 1.0
        elif abs(a[i] - b[i]) <= 1e-6 * max(a[i], b[i]):
            b[i] = a[i]
    said = [f"{who} states no voxel size along {', '.join(axes)}" for who, axes in
            missing.items() if axes]
    line = (f"{' and '.join(said)}: assumed equal to the other file's there, so not "
            f"resampled along it (PSF taken as {_microns(a)} um, image as {_microns(b)} "
            "um)") if said else None
    return tuple(a), tuple(b), line


def _read_psfs(paths: Sequence[Path]) -> list:
    """Each PSF file's array and voxel size."""
    return [_read_psf(Path(path)) for path in paths]


def _read_psf_stack(path: Path) -> list:
    """The strata of a depth-variant PSF from one file: a (K, Z, Y, X) stack (its first axis
    the strata; OME-TIFF or ImageJ axes T or C, or none), each with the file's voxel size;
    a file of one PSF as :func:`_read_psf` reads it."""
    import numpy as np
    import tifffile

    from rlcore.io import VoxelSize, read_series

    if not path.exists():
        raise FileNotFoundError(f"psf file not found: {path}")
    try:
        with tifffile.TiffFile(path) as tif:
            ndim = len(tif.series[0].shape)
    except Exception:  # noqa: BLE001 - not a TIFF: the readers' own messages stand
        ndim = 0
    if ndim != 4:
        return [_read_psf(path)]
    try:
        data, _, voxel = read_series(path, lazy=False)
    except ValueError:  # no axes metadata: the first axis is the strata, sizes unknown
        data, voxel = tifffile.imread(path), VoxelSize()
    data = np.asarray(data)
    if data.ndim != 4:
        raise ValueError(f"psf: {path} has shape {tuple(data.shape)}; a stack of PSFs for "
                         "--psf-depths is (K, Z, Y, X), one PSF per depth")
    return [(data[k], voxel) for k in range(data.shape[0])]


def _read_psf(path: Path):
    """One PSF file: a (Z, Y, X) or (Y, X) stack; a missing file or one of more axes named
    as a PSF's problem, with the fix."""
    import tifffile

    from rlcore.io import read_image

    if not path.exists():
        raise FileNotFoundError(f"psf file not found: {path}")
    try:
        return read_image(path)
    except ValueError:
        try:
            with tifffile.TiffFile(path) as tif:
                shape = tuple(tif.series[0].shape)
        except Exception:  # noqa: BLE001 - not a TIFF: the reader's own message stands
            shape = ()
        if len(shape) > 3:
            raise ValueError(f"psf: {path} has shape {shape}; a PSF file holds one (Z, Y, X) "
                             "stack: pass one file per channel (rlcore deconvolve IMAGE "
                             "psf_c0.tif psf_c1.tif), or, for a depth-variant PSF of K "
                             "strata (K, Z, Y, X), their K depths with --psf-depths"
                             ) from None
        raise


def _deconvolve_kwargs(args: argparse.Namespace, background: float, auto: bool) -> dict:
    """The keyword arguments of :func:`rlcore.deconvolve` the options ask for."""
    blocks = dict(block_shape=tuple(args.block_shape) if args.block_shape else None,
                  overlap=tuple(args.overlap) if args.overlap else "auto",
                  max_memory=args.max_memory)
    extra = dict(max_iterations=args.max_iterations, gain=args.gain,
                 offset=background) if auto else {}
    return dict(backend=args.backend, boundary=args.boundary, device=_device(args.device),
                accelerate=args.accelerate if args.accelerate else "auto",
                back_projector=args.back_projector, tv=args.tv, **blocks, **extra)


def _prefetch(path: Path) -> None:
    """Read the bytes of ``path`` (a file) once and drop them, so that its reading by the
    next run comes from the page cache: ``batch``'s read-ahead, on a thread. Only bytes:
    no reader, no warnings filters or loggers (those are the process's state, not the
    thread's, and a reader's quieting of them would swallow the computing run's
    warnings); a file that cannot be read is left to the run to report."""
    if not path.is_file():
        return
    buffer = bytearray(16 << 20)
    try:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass
    except OSError:
        return


def _run_file(args: argparse.Namespace, path: Path, output: Path, psf_files: _PSFs,
              cache: dict | None = None) -> int:
    """One input through the options of ``args`` into ``output`` (``deconvolve`` and each
    file of ``batch``); ``cache``: Deconvolvers kept across files (``batch``) for plain
    runs."""
    import numpy as np

    import rlcore
    from rlcore import formats
    from rlcore.io import read_series, write_series

    # OME-Zarr stays lazy (dask); a vendor file (bioio) too when written to OME-Zarr (a
    # TIFF output holds the whole result anyway, and --uint16 needs its maximum)
    vendor = formats.is_vendor(path)
    image, axes, voxel = read_series(path, lazy=not vendor or _is_zarr_path(output))
    psfs, resampled = psf_files.for_image(voxel, path)
    image, axes = _with_psf_axes(image, axes, psfs[0].ndim)
    psf, channel_axis, strata = _psf_argument(args, psfs, image, axes, voxel)
    lazy = type(image).__module__.startswith("dask")
    if lazy and strata:  # depth-variant runs take arrays in memory (not Dask)
        image, lazy = np.asarray(image), False
    if lazy and args.uint16:
        raise ValueError("--uint16: needs the whole result's maximum; with an OME-Zarr "
                         "input, or a vendor file written to OME-Zarr (both read lazily), "
                         "write float32 (drop --uint16) or a TIFF")
    auto = args.iterations == "auto"
    background = _image_background(args.background, image, path)
    if background and not lazy and float(np.max(image)) <= background:
        raise ValueError(f"--background: {background:g} is at or above every voxel "
                         f"(maximum {float(np.max(image)):g}); the result would be all zero")
    if background and not auto:
        image = np.clip(image.astype(np.float32) - np.float32(background), 0, None)
    options = dict(_deconvolve_kwargs(args, background, auto), **strata)
    if args.dry_run:  # the plan of the same request the run would make
        return _dry_run(image, psf if strata else psfs[0], args.iterations, options)
    if lazy and not auto and set(axes) <= set("zyx") and _is_zarr_path(output):
        # OME-Zarr to OME-Zarr: blocks in this process within --max-memory, each core
        # written as it is done into a temporary OME-Zarr, moved into place when complete
        from rlcore.io import zarr_output

        with zarr_output(output, tuple(image.shape), axes, voxel,
                         overwrite=args.overwrite,  # a vendor file: one chunk a volume
                         chunks=None if vendor else image.chunksize,
                         ngff_version=args.ngff_version,
                         provenance=_provenance(args, path, background, resampled)) as out:
            rlcore.deconvolve(image, psf, args.iterations, progress=args.progress,
                              out=out, **options)
        print(f"wrote {output} {tuple(image.shape)} float32 ({axes.upper()}), in blocks")
        return 0
    plain = cache is not None and not (auto or lazy or strata or args.block_shape
                                       or args.max_memory)
    if plain:  # one Deconvolver per (frame shape, channel PSF) across the files
        result = _with_cached_plans(args, np.asarray(image), axes, psfs, cache)
    else:
        result = rlcore.deconvolve(image, psf, args.iterations, channel_axis=channel_axis,
                                   progress=args.progress and not lazy and cache is None,
                                   return_info=auto, **options)
    made = _provenance(args, path, background, resampled)
    if auto:  # the count the data chose, and the rule that chose it
        result, info = result
        print(f"rlcore: {path}: iterations auto: {info.iterations} updates "
              f"({info.stop_rule})", file=sys.stderr)
        made.update(iterations=info.iterations, iterations_rule=info.stop_rule)
    if lazy and not _is_zarr_path(output):
        result = result.compute()  # TIFF output: the whole result in memory
    if args.uint16:
        peak = float(result.max())
        scale = 65535.0 / peak if peak > 0 else 0.0
        result = np.round(result * scale).astype(np.uint16)
        made["uint16_scale"] = scale  # result = float32 estimate x this
    write_series(output, result, axes, voxel, overwrite=args.overwrite,  # zarr: by chunk
                 ngff_version=args.ngff_version, provenance=made)
    if cache is None:
        print(f"wrote {output} {result.shape} {result.dtype} ({axes.upper()})")
    return 0


def _psf_argument(args: argparse.Namespace, psfs: list, image: Any, axes: str,
                  voxel: Any) -> tuple[Any, int | None, dict]:
    """The ``psf`` argument of :func:`rlcore.deconvolve` for these PSF files, the
    image's channel axis, and ``psf_depths`` when the files are a depth-variant PSF's
    strata (``--psf-depths`` / ``--psf-depths-um``)."""
    channel_axis = axes.index("c") if "c" in axes else None
    depths = _strata_depths(args, len(psfs), voxel)
    if depths is not None:  # one stack for every channel
        return list(psfs), channel_axis, {"psf_depths": depths}
    if len(psfs) > 1 and channel_axis is None:
        raise ValueError(f"psf: {len(psfs)} PSFs but the image ({axes}, shape "
                         f"{tuple(image.shape)}) has no C axis; pass one PSF, or one per "
                         "depth with --psf-depths (a depth-variant PSF)")
    if channel_axis is not None and len(psfs) not in (1, image.shape[channel_axis]):
        raise ValueError(f"psf: {len(psfs)} PSFs for {image.shape[channel_axis]} channels; "
                         "pass one PSF, or one per channel")
    return (psfs if len(psfs) > 1 else psfs[0]), channel_axis, {}


def _strata_depths(args: argparse.Namespace, count: int, voxel: Any
                   ) -> tuple[float, ...] | None:
    """``--psf-depths`` (planes of the image's z axis) or ``--psf-depths-um`` (microns
    below the image's first plane, by its z voxel size), one per PSF file; None without
    either."""
    planes, microns = args.psf_depths, args.psf_depths_um
    if planes is None and microns is None:
        return None
    if planes is not None and microns is not None:
        raise ValueError("--psf-depths, --psf-depths-um: give one of them")
    if microns is not None:
        if voxel.z is None:
            raise ValueError("--psf-depths-um: the image states no z voxel size; give the "
                             "depths in planes with --psf-depths")
        planes = [d / voxel.z for d in microns]
    flag = "--psf-depths" if microns is None else "--psf-depths-um"
    if len(planes) != count:
        raise ValueError(f"{flag}: {len(planes)} depths for {count} PSF(s); give one "
                         "depth per PSF file, in the files' order, or one file of the "
                         "strata (K, Z, Y, X) and its K depths")
    return tuple(float(d) for d in planes)


def _provenance(args: argparse.Namespace, path: Path, background: float,
                resampled: str | None = None) -> dict:
    """How the output is made, written into it (:func:`rlcore.io.read_provenance`);
    ``resampled``: how the PSF was resampled (:meth:`_PSFs.for_image`)."""
    from datetime import datetime, timezone

    psf = "as given" if args.no_center_psf else "centred on voxel n // 2 (rlcore.psf.centered)"
    bg = args.psf_background
    return {"rlcore": _version(), "input": str(path),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "iterations": args.iterations, "iterations_rule": "fixed count",
            "psf": [str(p) for p in args.psf],
            "psf_preparation": f"{psf}, background "
                               f"{'estimated from its border' if bg is None else bg}"
                               + (f"; {resampled}" if resampled else ""),
            "boundary": args.boundary, "background": background,
            "accelerate": args.accelerate or None, "back_projector": args.back_projector,
            "tv": args.tv, "backend": args.backend}


def _with_cached_plans(args: argparse.Namespace, image, axes: str, psfs: list, cache: dict):
    """``image`` deconvolved through the Deconvolver of its frame shape and channel's PSF
    (made once per batch): the same result as ``rlcore.deconvolve``."""
    import rlcore
    from rlcore._request import resolve_fixed
    from rlcore.series import map_channels

    frame = tuple(int(n) for n in image.shape[-psfs[0].ndim:])
    accelerate, back = resolve_fixed(args.accelerate or "auto", args.back_projector)

    def deconvolver(c: int) -> rlcore.Deconvolver:
        index = c if len(psfs) > 1 else 0
        # the PSF itself in the key: one resampled per image voxel size (_PSFs keeps each,
        # so its id stays its own for the whole batch)
        key = (frame, index, id(psfs[index]))
        if key not in cache:
            cache[key] = rlcore.Deconvolver(
                psfs[index], frame, args.iterations, backend=args.backend,
                device=_device(args.device), boundary=args.boundary,
                accelerate=accelerate, back_projector=back, tv=args.tv)
        return cache[key]

    if "c" in axes:
        channels = image.shape[axes.index("c")]
        return map_channels(image, list(range(channels)), axes.index("c"),
                            lambda channel, c: deconvolver(c).run(channel))
    return deconvolver(0).run(image)


def _inputs(patterns: Sequence[str]) -> list[Path]:
    import glob

    files: list[Path] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not found:
            raise FileNotFoundError(f"inputs: nothing matches {pattern!r}")
        files.extend(Path(f) for f in found)
    return files


#: batch --format: each output's suffix
_FORMATS = {"ome-tiff": ".ome.tif", "ome-zarr": ".ome.zarr", "tiff": ".tif"}


def _target(folder: Path, path: Path, fmt: str) -> Path:
    """Where ``batch`` writes the result of ``path``: its name in ``folder``, in the
    input's format (``fmt`` "input"; a vendor file as OME-TIFF) or in ``fmt``'s."""
    from rlcore import formats

    vendor = formats.is_vendor(path)
    if fmt == "input" and not vendor:
        return folder / path.name
    name = path.name
    known = next((s for s in _SUFFIXES[::-1] if name.lower().endswith(s)), None)
    stem = name[:-len(known)] if known else (path.stem if vendor else name)
    return folder / (stem + _FORMATS["ome-tiff" if fmt == "input" else fmt])


def _batch(args: argparse.Namespace) -> int:
    """Every input with the options of ``deconvolve`` (one option table); plain runs share
    one :class:`rlcore.Deconvolver` per (frame shape, channel PSF); the next input's bytes
    are read on a thread while one computes (:func:`_prefetch`); each warning and error
    names its file."""
    files = _inputs(args.inputs)
    args.output.mkdir(parents=True, exist_ok=True)
    targets = [_target(args.output, f, args.format) for f in files]
    clash = [t for t in targets if t.exists()]
    if clash and not args.overwrite and not args.dry_run:  # before any computing
        raise FileExistsError(f"{clash[0]} exists (and {len(clash) - 1} more); pass "
                              "--overwrite to replace them")
    if len(set(targets)) != len(targets):
        raise ValueError("inputs: two inputs have the same file name; the output folder "
                         "would hold one of them")
    psf_files = _PSFs(args)
    cache: dict = {}
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    bar = tqdm(total=len(files), unit="file", disable=not args.progress)
    # the next input's bytes are read on a thread while this one computes (_prefetch)
    with ThreadPoolExecutor(1, thread_name_prefix="rlcore-read") as reader:
        for i, (path, target) in enumerate(zip(files, targets)):
            if i + 1 < len(files) and not args.dry_run:
                reader.submit(_prefetch, files[i + 1])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    _run_file(args, path, target, psf_files, cache)
                except (*_EXPECTED,) as exc:
                    said = str(exc)  # named once: most errors of a read name the file
                    raise type(exc)(said if said.startswith(f"{path}:")
                                    else f"{path}: {said}") from exc
                finally:
                    for w in caught:
                        print(f"rlcore: warning: {path}: {w.message}", file=sys.stderr)
            bar.update(1)
    bar.close()
    if not args.dry_run:
        print(f"wrote {len(files)} files to {args.output} ({len(cache)} plan(s))")
    return 0


def _dry_run(image, psf, iterations, options: dict) -> int:
    """Print the backend and the plan of blocks that ``deconvolve(image, psf, iterations,
    **options)`` would use (one frame: series run frame by frame)."""
    from rlcore.api import block_plan

    be, p = block_plan(image, psf, iterations, **options)
    shape = tuple(image.shape)[-psf.ndim:]
    print(f"backend {be.name} on {be.device}: {be.memory().free / 2**30:.1f} GiB free")
    print(f"image {shape}, PSF {tuple(psf.shape)}, boundary {options['boundary']}")
    print(f"plan: {p}")
    return 0


def _psf(args: argparse.Namespace) -> int:
    from rlcore import psf as psf_tools
    from rlcore.io import VoxelSize, read_image, write_image

    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    voxel = None
    if args.psf_command == "distill":
        beads, voxel = read_image(args.beads)
        result, found = psf_tools.distill(beads, args.shape, threshold=args.threshold,
                                          iterations=args.iterations, return_beads=True)
        print(f"{len(found)} bead(s) at (z, y, x) "
              + ", ".join(f"({', '.join(f'{v:.1f}' for v in c)})" for c in found[:10])
              + (" ..." if len(found) > 10 else ""))
    elif args.psf_command == "gaussian":
        result = psf_tools.gaussian(args.shape, args.sigma)
    else:
        voxel = VoxelSize(*args.voxel_size)
        result = psf_tools.widefield(args.shape, args.voxel_size, na=args.na,
                                     wavelength=args.wavelength, ni=args.ni)
    write_image(args.output, result, voxel, overwrite=args.overwrite)
    if voxel is not None and voxel.known:
        widths = psf_tools.fwhm(result, (voxel.z, voxel.y, voxel.x)[-result.ndim:])
        print(f"FWHM (z, y, x) um: {', '.join(f'{w:.3f}' for w in widths)}")
    print(f"wrote {args.output} {result.shape} {result.dtype}")
    return 0


def _info() -> int:
    import numpy as np

    import rlcore

    print(f"rlcore {rlcore.__version__}  python {platform.python_version()}  "
          f"numpy {np.__version__}  {platform.platform()}")
    backends = rlcore.available_backends()
    auto = next((b.name for b in backends if b.available and b.auto), "numpy")
    for b in backends:
        if not b.available:
            print(f"  {b.name:10s} unavailable: {b.reason}")
            continue
        mark = "  <- auto" if b.name == auto else ""
        print(f"  {b.name:10s} {b.devices[0] if b.devices else ''}{mark}")
        for d in b.devices[1:]:  # one device per line (OpenCL lists every platform/device)
            print(f"  {'':10s} {d}")
        if b.name != auto:  # why "auto" took another
            note = (f"not chosen by 'auto' for NumPy input: {b.auto_note}" if b.auto_note
                    else f"'auto' prefers {auto} (in this order: CuPy on NVIDIA GPUs, "
                    "OpenCL on other GPUs, numpy)")
            print(f"  {'':10s} {note}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from rlcore import data

    args.output.mkdir(parents=True, exist_ok=True)
    import filecmp

    names = ("lls_image.tif", "lls_psf.tif")
    # the sample already there, byte for byte, is kept (the README's command re-runs)
    present = [args.output / n for n in names if (args.output / n).exists()
               and not filecmp.cmp(args.output / n, data.path(n), shallow=False)]
    if present and not args.overwrite:
        raise FileExistsError(f"{present[0]} exists and is not the sample; pass "
                              "--overwrite to replace it")
    for name in names:
        if not (args.output / name).exists() or args.overwrite:
            shutil.copyfile(data.path(name), args.output / name)
        print(args.output / name)
    print(f"image background (camera offset): {data.BACKGROUND:g}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("rlcore: interrupted; an output not finished was not written (an existing one "
              "is untouched)", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="rlcore: %(message)s"
    )
    from rlcore.formats import LOGGERS

    for name in ("tifffile", "ome_zarr", "zarr", "numcodecs", "imagecodecs") + LOGGERS:
        # the file libraries' own log lines (rlcore.io says what matters in its errors)
        logging.getLogger(name).setLevel(logging.INFO if args.verbose else logging.ERROR)

    def one_line(text: object) -> str:
        return " ".join(str(text).split())

    warnings.showwarning = lambda message, *a, **k: print(
        f"rlcore: warning: {one_line(message)}", file=sys.stderr
    )
    from rlcore.errors import RLCoreError

    try:
        if args.command == "deconvolve":
            return _deconvolve(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "info":
            return _info()
        if args.command == "psf":
            return _psf(args)
        return _sample(args)
    except (*_EXPECTED, RLCoreError) as exc:
        print(f"rlcore: error: {one_line(exc) or type(exc).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
