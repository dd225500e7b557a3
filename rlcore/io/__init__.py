"""Read and write TIFF / OME-TIFF (tifffile) and OME-Zarr (OME-NGFF 0.4 and 0.5) images
with their voxel size and, for OME-Zarr, every axis's scale, translation and unit; read
vendor formats (CZI, ND2, LIF, ...) through bioio (:mod:`rlcore.formats`,
``pip install 'rlcore[formats]'``).

Voxel sizes are in microns, ``(z, y, x)`` order; axes of the arrays are ``(Z, Y, X)``.
Writes are atomic (:mod:`rlcore._atomic`): the file or folder is written under a temporary
name beside its destination and moved into place when complete, so a stopped run, a full
disk or a file-size limit leaves the old output untouched and nothing that looks finished
(the error says "disk full" / "file too large" and names the output).

Reads check what they read, and every failure is one ``ValueError`` naming the file (and
the chunk): a TIFF truncated anywhere (a strip, tile or page past the end of the file,
fewer pages than its metadata states), any codec's decoding error, a header that claims
more voxels than the file's bytes can hold (refused before anything is allocated),
colour (RGB) samples, unreadable OME-Zarr metadata, a corrupt or truncated zarr chunk, and
a zarr that a blocked run left incomplete. What tifffile, zarr and ome-zarr log or warn
while a file is read is not printed: a damaged file is said in the error, the rest is
logged by ``rlcore.io`` at DEBUG level.

The package: this module is the public face (reading, writing, provenance);
``_calibration`` holds :class:`Calibration` and :class:`VoxelSize`, ``_tiff`` the TIFF
reader's checks and the writer's keywords, ``_zarr`` OME-Zarr (and :func:`zarr_output`),
``_failures`` how a read or write names what went wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from rlcore import formats
from rlcore.io._calibration import (
    SERIES_AXES,
    Calibration,
    VoxelSize,
    _calibrated,
    _channel_names,
    _check_version,
    _restore_axes,
)
from rlcore.io._failures import _check_memory, _clause, _missing, _quiet
from rlcore.io._tiff import PROVENANCE_TAG, _atomic_tiff, _open_tiff, _read_tiff, _tiff_kwargs
from rlcore.io._zarr import (
    PROVENANCE_KEY,
    _is_zarr,
    _open_ngff,
    _read_zarr,
    _write_zarr,
    _zarr,
    zarr_output,
)

__all__ = ["VoxelSize", "Calibration", "read_image", "write_image", "read_series",
           "read_calibration", "write_series", "zarr_output", "read_provenance",
           "PROVENANCE_TAG", "PROVENANCE_KEY"]


def _open_vendor(path: Path) -> formats.VendorImage:
    if not path.exists():
        raise _missing(path, "image file")
    with _quiet():
        return formats.open_image(path)


def _read_vendor(path: Path, lazy: bool) -> tuple[Any, str, VoxelSize]:
    """A vendor file's first scene through bioio: a dask array of one chunk per (T, C)
    volume (``lazy``), else read whole after the memory check."""
    image = _open_vendor(path)
    voxel = VoxelSize(*image.voxel_size, channels=tuple(image.channel_names))
    if lazy:
        return image.data.lazy(), image.axes, voxel
    _check_memory(path, image.data)
    with _quiet():
        data = image.data[()]
    return data, image.axes, voxel


def read_calibration(path: str | os.PathLike) -> Calibration:
    """The per-axis calibration of an image file, without reading its pixels.

    Parameters
    ----------
    path : str or path
        OME-Zarr folder (OME-NGFF 0.4 or 0.5, zarr 2 or 3): every axis's scale,
        translation and unit of the full-resolution dataset, and the NGFF version;
        TIFF / OME-TIFF file: the z, y, x voxel size in micrometres (``version`` None);
        a vendor file (:func:`rlcore.formats.is_vendor`: CZI, ND2, LIF, ...): its
        physical pixel sizes through bioio (``version`` None).

    Returns
    -------
    Calibration
        For the file's axes, singleton axes included (:func:`read_series` removes them).

    Raises
    ------
    FileNotFoundError, ValueError, ImportError
        As :func:`read_series`.
    """
    path = Path(path)
    if _is_zarr(path):
        if not path.exists():
            raise _missing(path, "image")
        _zarr()
        with _quiet():
            try:
                ngff = _open_ngff(path)
            except ImportError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise ValueError(f"{path}: not a readable OME-Zarr image ({_clause(exc)})") \
                    from None
        return ngff.calibration
    if formats.is_vendor(path):
        image = _open_vendor(path)
        return Calibration.from_voxel_size(VoxelSize(*image.voxel_size), image.axes)
    _, axes, voxel, _ = _open_tiff(path, read=False)
    return Calibration.from_voxel_size(voxel, axes)


def read_series(path: str | os.PathLike, *, lazy: bool = False
                ) -> tuple[Any, str, VoxelSize]:
    """Read an image with its axes: ``(T, C, Z, Y, X)`` or any subset.

    Parameters
    ----------
    path : str or path
        TIFF / OME-TIFF file or OME-Zarr folder (OME-NGFF 0.4 or 0.5; a multiscale image
        is read at its full resolution), as :func:`read_image`; or a vendor file read
        through bioio and its plugins (``.czi``, ``.nd2``, ``.lif``, any suffix
        :func:`rlcore.formats.is_vendor` accepts; ``pip install 'rlcore[formats]'``): its
        first scene, with bioio's physical pixel sizes.
    lazy : bool, default False
        OME-Zarr: a ``dask.array`` over the stored chunks (a chunk that cannot be read
        raises a ValueError naming the file and chunk when computed). Vendor file: a
        ``dask.array`` of one chunk per (T, C) volume, read through the plugin when
        computed (a failure: a ValueError naming the file).

    Returns
    -------
    image : ndarray or dask.array.Array
        Singleton t, c and z axes removed, in the file's order of axes.
    axes : str
        One letter per axis of ``image``, from ``"tczyx"`` (OME-TIFF and ImageJ axes,
        OME-NGFF axis names; plain TIFF: ``"zyx"`` or ``"yx"``).
    voxel_size : VoxelSize
        OME-Zarr: with the file's full :class:`Calibration` attached
        (``voxel_size.calibration``), which :func:`write_series` keeps. A space axis
        without a unit is read in micrometres, unless every space scale is 1 and none
        has a unit (uncalibrated). A transformation other than scale and translation
        (e.g. affine) is said in one warning. ``voxel_size.channels``: the channels'
        names where the file gives one for each (OME-TIFF ``Channel Name``, OME-Zarr
        ``omero`` labels, a vendor file's), else ().

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (the message names the old and new outputs if a
        replacement of it was interrupted).
    ValueError
        Not a readable image, one line naming the file (and chunk): truncated or
        page-less TIFF, fewer pages than its metadata states, a strip or tile past the
        end of the file, any codec's decoding error, a header claiming more voxels than
        the file can hold, colour (RGB) samples, axes other than t, c, z, y, x,
        unreadable OME-Zarr metadata or chunks, a zarr left incomplete by a stopped
        blocked run; a vendor file its plugin cannot read (truncated, corrupt), with
        colour samples or mosaic tiles.
    ImportError
        An OME-Zarr path without zarr installed; a vendor file without bioio or its
        plugin (one line naming the pip package).
    """
    path = Path(path)
    if _is_zarr(path):
        if not path.exists():
            raise _missing(path, "image")
        data, axes, cal, channels = _read_zarr(path, lazy=lazy)
        voxel = replace(cal.voxel_size, calibration=cal, channels=channels)
    elif formats.is_vendor(path):
        data, axes, voxel = _read_vendor(path, lazy)
    else:
        data, axes, voxel = _read_tiff(path)
    keep = [i for i, n in enumerate(data.shape) if n != 1 or axes[i] in "yx"]
    if len(keep) != len(axes):
        data = data.reshape(tuple(data.shape[i] for i in keep))
        axes = "".join(axes[i] for i in keep)
    return data, axes, voxel


def read_image(path: str | os.PathLike, *, lazy: bool = False) -> tuple[Any, VoxelSize]:
    """Read a TIFF, OME-TIFF or OME-Zarr stack and its voxel size.

    Parameters
    ----------
    path : str or path
        A ``.tif`` / ``.tiff`` / ``.ome.tif`` file, or an ``.ome.zarr`` / ``.zarr`` folder
        (OME-NGFF 0.4 or 0.5; full resolution), or a vendor file (``.czi``, ``.nd2``,
        ``.lif``, ...: :mod:`rlcore.formats`), holding one (Z, Y, X) or (Y, X) image.
    lazy : bool, default False
        For OME-Zarr: return the ``dask.array`` over the stored chunks without reading
        them (for images larger than memory); TIFF is always read.

    Returns
    -------
    image : ndarray or dask.array.Array
        The first series, singleton t, c and z axes removed (a one-voxel image stays
        ``(1, 1)``), in the file's dtype.
    voxel_size : VoxelSize
        In microns, from OME ``PhysicalSize*``, ImageJ ``spacing``/``unit``, the
        resolution tags, or the OME-Zarr scale transform; ``None`` where not stated.

    Raises
    ------
    FileNotFoundError, ValueError, ImportError
        As :func:`read_series`; ValueError also for more than one time point or channel.
    """
    data, axes, voxel = read_series(path, lazy=lazy)
    if set(axes) - set("zyx"):
        raise ValueError(
            f"{path}: has shape {tuple(data.shape)} (axes {axes.upper()}); rlcore reads one "
            "channel and time point here (Z, Y, X): use rlcore.io.read_series, or split "
            "channels/time points first")
    return data, voxel


def write_series(path: str | os.PathLike, image: Any, axes: str,
                 voxel_size: VoxelSize | None = None, *, overwrite: bool = False,
                 calibration: Calibration | None = None,
                 ngff_version: str | None = None, provenance: dict | None = None) -> Path:
    """Write an image with its axes (a subset of ``"tczyx"``), atomically.

    OME-TIFF and OME-Zarr keep any order of axes; ImageJ TIFF needs them in ImageJ's
    order (t, z, c, y, x) and is transposed to it.

    Parameters
    ----------
    path : str or path
        ``.ome.zarr`` / ``.zarr`` (OME-NGFF), ``.ome.tif`` (OME-TIFF), else ImageJ TIFF.
    image : array
        One axis per letter of ``axes``.
    axes : str
        Letters from ``"tczyx"``.
    voxel_size : VoxelSize, optional
        Microns. One read by :func:`read_series` from an OME-Zarr carries its file's
        :class:`Calibration`, which is then kept as ``calibration`` is; its
        ``channels`` (names, one per channel of the C axis) are written as OME
        ``Channel Name`` (OME-TIFF) or ``omero`` labels (OME-Zarr); ImageJ TIFF keeps
        none.
    overwrite : bool, default False
        Replace an existing ``path``.
    calibration : Calibration, optional
        OME-Zarr: every axis's scale, translation and unit (default: the one
        ``voxel_size`` carries, else from ``voxel_size``); a voxel size that differs in
        z, y or x overrides its scale there. Axes it has and ``axes`` lacks (singleton
        axes a read removed) are written back as length-1 axes. TIFF: its z, y, x
        voxel size.
    ngff_version : {"0.4", "0.5"}, optional
        OME-Zarr: "0.4" (zarr 2 store, ``.zattrs``) or "0.5" (zarr 3, ``zarr.json``);
        default: the calibration's (the input's) version, else ome-zarr's current one.
    provenance : dict, optional
        How the image was made (JSON-serialisable; the CLI writes rlcore's version, the
        iterations and the rule that chose them, the PSF files and their preparation,
        boundary, background, scale): the ``"rlcore"`` attribute of an OME-Zarr's root,
        a TIFF's private tag :data:`PROVENANCE_TAG` (and ImageJ's ``Info``); read back by
        :func:`read_provenance`.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False (checked when the complete data are
        moved into place, so also when it appeared meanwhile): ``path`` is left untouched
        and the data are kept beside it under a free name (``out-1.tif``), given in the
        message.
    OSError
        The disk filled up or a file-size limit was met: one line naming ``path`` and
        saying "disk full" / "file too large"; nothing is left of the new output and an
        existing one is untouched.
    ValueError
        ``axes`` does not match the image, or an unknown ``ngff_version``.
    """
    axes = axes.lower()
    if len(axes) != len(image.shape) or any(a not in SERIES_AXES for a in axes):
        raise ValueError(f"axes: {axes!r} does not name the {len(image.shape)} axes of the "
                         "image with letters from 'tczyx'")
    _check_version(ngff_version)
    path = Path(path)
    cal = _calibrated(axes, voxel_size, calibration)
    names = voxel_size.channels if voxel_size is not None else ()
    if _is_zarr(path):
        image, axes = _restore_axes(image, axes, cal)
        return _write_zarr(path, image, cal.for_axes(axes), ngff_version, overwrite,
                           provenance, _channel_names(names, axes, image.shape))
    voxel = cal.voxel_size
    image = np.asarray(image)
    if path.name.lower().endswith((".ome.tif", ".ome.tiff")):
        kwargs = _tiff_kwargs(axes, voxel, ome=True)
        names = _channel_names(names, axes, image.shape)
        if names:
            kwargs["metadata"]["Channel"] = {"Name": list(names)}
    else:
        order = [a for a in "tzcyx" if a in axes]
        image = np.transpose(image, [axes.index(a) for a in order])
        kwargs = _tiff_kwargs("".join(order), voxel, ome=False)
    if provenance is not None:
        text = json.dumps(provenance, sort_keys=True)
        kwargs["extratags"] = [(PROVENANCE_TAG, "s", 0, text, True)]
        if kwargs.get("imagej"):  # shown by Fiji's Image > Show Info
            kwargs["metadata"]["Info"] = f"rlcore provenance: {text}"
    return _atomic_tiff(path, image, overwrite, **kwargs)


def read_provenance(path: str | os.PathLike) -> dict | None:
    """How an output of rlcore was made (:func:`write_series`'s ``provenance``), or None
    for a file without it.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not a readable TIFF or OME-Zarr, or its provenance is not JSON.
    """
    path = Path(path)
    if not path.exists():
        raise _missing(path, "file")
    try:
        if _is_zarr(path):
            attrs = _zarr().open_group(str(path), mode="r").attrs.asdict()
            return attrs.get(PROVENANCE_KEY)
        with _quiet(), tifffile.TiffFile(path) as tif:
            tag = tif.pages[0].tags.get(PROVENANCE_TAG)
            return None if tag is None else json.loads(tag.value)
    except (OSError, KeyError, tifffile.TiffFileError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: no readable provenance ({exc})") from exc


def write_image(
    path: str | os.PathLike,
    image: np.ndarray,
    voxel_size: VoxelSize | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``image`` as TIFF (ImageJ hyperstack) or OME-TIFF (``*.ome.tif``), atomically.

    Parameters
    ----------
    path : str or path
        Destination; ``.ome.tif`` / ``.ome.tiff`` writes OME-TIFF, ``.ome.zarr`` /
        ``.zarr`` OME-Zarr (one resolution level), other names ImageJ TIFF.
    image : ndarray, shape (Z, Y, X) or (Y, X)
        Data (float32, uint16, uint8, ...).
    voxel_size : VoxelSize, optional
        Written as OME ``PhysicalSize*`` or ImageJ ``spacing`` + resolution, in microns;
        an unknown size is written as uncalibrated (no unit), never as 1 micron.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileExistsError, OSError
        As :func:`write_series`.
    """
    return write_series(path, image, "zyx"[-len(image.shape):], voxel_size,
                        overwrite=overwrite)
