"""The PSF files of a run: read (TIFF, OME-TIFF, a stack of depth strata), their voxel
sizes, and prepared once (background, centring) when the first image asks for them."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any


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
