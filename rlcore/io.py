"""Read and write TIFF / OME-TIFF images with their voxel size, through tifffile.

Voxel sizes are in microns, ``(z, y, x)`` order; axes of the arrays are ``(Z, Y, X)``.
Writes are atomic: the file is written under a temporary name in the destination folder
and renamed, so a failed run never leaves a truncated output.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

__all__ = ["VoxelSize", "read_image", "write_image"]

_TO_MICRONS = {"µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "\\u00B5m": 1.0,
               "nm": 1e-3, "mm": 1e3, "m": 1e6, "cm": 1e4, "pixel": None, "": None}


@dataclass(frozen=True)
class VoxelSize:
    """Voxel size in microns; ``None`` for an axis whose size the file does not state."""

    z: float | None = None
    y: float | None = None
    x: float | None = None

    def as_tuple(self, ndim: int) -> tuple[float | None, ...]:
        return (self.z, self.y, self.x)[-ndim:] if ndim <= 3 else (None,) * ndim

    @property
    def known(self) -> bool:
        return any(v is not None for v in (self.z, self.y, self.x))


def _microns(value: float | None, unit: str | None) -> float | None:
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    factor = _TO_MICRONS.get((unit or "µm").strip(), None) if unit is not None else 1.0
    return None if factor is None else float(value) * factor


def _ome_voxel_size(tif: tifffile.TiffFile) -> VoxelSize:
    meta = tifffile.xml2dict(tif.ome_metadata)
    image = meta.get("OME", {}).get("Image", {})
    pixels = (image[0] if isinstance(image, list) else image).get("Pixels", {})

    def get(axis: str) -> float | None:
        value = pixels.get(f"PhysicalSize{axis}")
        unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
        return _microns(float(value), unit) if value is not None else None

    return VoxelSize(get("Z"), get("Y"), get("X"))


def _tiff_voxel_size(tif: tifffile.TiffFile) -> VoxelSize:
    page = tif.pages[0]
    ij = tif.imagej_metadata or {}
    unit = ij.get("unit")
    resunit = page.tags.get("ResolutionUnit")
    resunit = int(resunit.value) if resunit is not None else 1
    per_unit = {2: 25400.0, 3: 10000.0}.get(resunit)  # microns per inch / per cm

    def from_resolution(tag: str) -> float | None:
        t = page.tags.get(tag)
        if t is None:
            return None
        num, den = t.value
        if num == 0:
            return None
        size = den / num  # units per pixel
        if per_unit is not None:
            return size * per_unit
        return _microns(size, unit) if unit else None

    z = _microns(float(ij["spacing"]), unit) if "spacing" in ij and unit else None
    return VoxelSize(z, from_resolution("YResolution"), from_resolution("XResolution"))


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, VoxelSize]:
    """Read a TIFF or OME-TIFF stack and its voxel size.

    Parameters
    ----------
    path : str or path
        A ``.tif`` / ``.tiff`` / ``.ome.tif`` file holding one (Z, Y, X) or (Y, X) series.

    Returns
    -------
    image : ndarray
        The first series, singleton axes removed, in the file's dtype.
    voxel_size : VoxelSize
        In microns, from OME ``PhysicalSize*``, ImageJ ``spacing``/``unit`` and the
        resolution tags; ``None`` for what the file does not state.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not a readable TIFF, or holds more than 3 non-singleton axes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.series[0].asarray()
            voxel = _ome_voxel_size(tif) if tif.is_ome else _tiff_voxel_size(tif)
    except (tifffile.TiffFileError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable TIFF ({exc})") from exc
    data = np.squeeze(data)
    if data.ndim > 3:
        raise ValueError(
            f"{path}: has shape {data.shape}; rlcore reads one channel and time point "
            "(Z, Y, X) - split channels/time points first"
        )
    return data, voxel


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
        Destination; ``.ome.tif`` / ``.ome.tiff`` writes OME-TIFF, other names ImageJ TIFF.
    image : ndarray, shape (Z, Y, X) or (Y, X)
        Data (float32, uint16, uint8, ...).
    voxel_size : VoxelSize, optional
        Written as OME ``PhysicalSize*`` or ImageJ ``spacing`` + resolution, in microns.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite)")
    voxel = voxel_size or VoxelSize()
    name = path.name.lower()
    is_ome = name.endswith((".ome.tif", ".ome.tiff"))
    axes = "ZYX"[-image.ndim:]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if is_ome:
            meta: dict = {"axes": axes}
            for axis, value in zip("ZYX", (voxel.z, voxel.y, voxel.x)):
                if value is not None and axis in axes:
                    meta[f"PhysicalSize{axis}"] = value
                    meta[f"PhysicalSize{axis}Unit"] = "µm"
            tifffile.imwrite(tmp, image, ome=True, metadata=meta)
        else:
            kwargs: dict = {"imagej": True, "metadata": {"axes": axes, "unit": "um"}}
            if voxel.z is not None and image.ndim == 3:
                kwargs["metadata"]["spacing"] = voxel.z
            if voxel.x is not None and voxel.y is not None:
                kwargs["resolution"] = (1.0 / voxel.x, 1.0 / voxel.y)
            tifffile.imwrite(tmp, image, **kwargs)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
