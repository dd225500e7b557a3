"""Read and write TIFF / OME-TIFF (tifffile) and OME-Zarr (ome-zarr) images with their
voxel size.

Voxel sizes are in microns, ``(z, y, x)`` order; axes of the arrays are ``(Z, Y, X)``.
Writes are atomic: the file is written under a temporary name in the destination folder
and renamed, so a failed run never leaves a truncated output.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

__all__ = ["VoxelSize", "read_image", "write_image", "read_series", "write_series"]

#: the axes rlcore reads and writes, in OME-NGFF's order
SERIES_AXES = "tczyx"

_NGFF_UNITS = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3, "meter": 1e6,
               "angstrom": 1e-4}
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


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or path.name.lower().endswith(".ome.zarr")


def _read_zarr(path: Path, lazy: bool = False, keep_axes: bool = False) -> tuple:
    try:
        from ome_zarr.io import parse_url
        from ome_zarr.reader import Reader
    except ImportError as exc:
        raise ImportError("OME-Zarr needs ome-zarr: pip install 'rlcore[dask]'") from exc
    location = parse_url(str(path))
    if location is None:
        raise ValueError(f"{path}: not a readable OME-Zarr image")
    nodes = list(Reader(location)())
    if not nodes or not nodes[0].data:
        raise ValueError(f"{path}: no OME-Zarr image found")
    node = nodes[0]
    data = node.data[0] if lazy else np.asarray(node.data[0])  # full resolution
    axes = [a["name"] if isinstance(a, dict) else a for a in node.metadata.get("axes", [])]
    units = [a.get("unit") if isinstance(a, dict) else None
             for a in node.metadata.get("axes", [])]
    sizes: dict[str, float | None] = {}
    transforms = node.metadata.get("coordinateTransformations") or [[]]
    for t in transforms[0]:
        if t.get("type") == "scale":
            for name, unit, value in zip(axes, units, t["scale"]):
                factor = _NGFF_UNITS.get(unit, 1.0 if unit is None else None)
                sizes[name] = None if factor is None else float(value) * factor
    voxel = VoxelSize(sizes.get("z"), sizes.get("y"), sizes.get("x"))
    if keep_axes:
        names = "".join(str(a).lower()[:1] for a in axes) if axes else "zyx"[-data.ndim:]
        if len(names) != data.ndim or any(a not in SERIES_AXES for a in names):
            raise ValueError(f"{path}: axes {axes} are not a subset of t, c, z, y, x")
        return data, names, voxel
    keep = [i for i, n in enumerate(axes) if n in "zyx"] if axes else list(range(data.ndim))
    if axes and len(keep) != data.ndim:  # drop singleton t / c axes
        data = data.reshape([data.shape[i] for i in keep]) if all(
            data.shape[i] == 1 for i in range(data.ndim) if i not in keep) else data
    return data, voxel


def _tiff_axes(series: Any, is_ome: bool, is_imagej: bool, shape: tuple[int, ...]) -> str:
    """Lower-case axes of a TIFF series in rlcore's letters (t, c, z, y, x).

    Raises
    ------
    ValueError
        Colour samples (RGB) or an axis rlcore cannot place.
    """
    axes = str(series.axes).upper()
    if axes.endswith("S") and shape[-1] in (3, 4):
        raise ValueError(f"has colour samples (axes {axes}, shape {shape}); rlcore "
                         "deconvolves intensity stacks: split the channels first, e.g. "
                         "image[..., 0]")
    if not (is_ome or is_imagej):  # plain TIFF: pages are z (tifffile may say Q, I or S)
        return "zyx"[-len(shape):] if len(shape) <= 3 else ""
    mapping = {"T": "t", "C": "c", "Z": "z", "Y": "y", "X": "x", "Q": "z", "I": "z"}
    out = "".join(mapping.get(a, "?") for a in axes)
    if "?" in out or len(set(out)) != len(out):
        raise ValueError(f"has axes {axes}; rlcore reads T, C, Z, Y, X")
    return out


def read_series(path: str | os.PathLike, *, lazy: bool = False
                ) -> tuple[Any, str, VoxelSize]:
    """Read an image with its axes: ``(T, C, Z, Y, X)`` or any subset.

    Parameters
    ----------
    path : str or path
        TIFF / OME-TIFF file or OME-Zarr folder, as :func:`read_image`.
    lazy : bool, default False
        OME-Zarr: a ``dask.array`` over the stored chunks.

    Returns
    -------
    image : ndarray or dask.array.Array
        Singleton axes removed, in the file's order of axes.
    axes : str
        One letter per axis of ``image``, from ``"tczyx"`` (OME-TIFF and ImageJ axes,
        OME-NGFF axis names; plain TIFF: ``"zyx"`` or ``"yx"``).
    voxel_size : VoxelSize

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not a readable image, colour (RGB) samples, or axes other than t, c, z, y, x.
    """
    path = Path(path)
    if _is_zarr(path):
        if not path.exists():
            raise FileNotFoundError(f"image not found: {path}")
        data, axes, voxel = _read_zarr(path, lazy=lazy, keep_axes=True)
    else:
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                data = series.asarray()
                voxel = _ome_voxel_size(tif) if tif.is_ome else _tiff_voxel_size(tif)
                axes = _tiff_axes(series, tif.is_ome, tif.is_imagej, tuple(data.shape))
        except (tifffile.TiffFileError, KeyError, IndexError) as exc:
            raise ValueError(f"{path}: not a readable TIFF ({exc})") from exc
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        if not axes:
            raise ValueError(f"{path}: has shape {data.shape} and no axes metadata; write "
                             "it as OME-TIFF (axes TCZYX) or ImageJ hyperstack")
    keep = [i for i, n in enumerate(data.shape) if n != 1 or axes[i] in "yx"]
    if len(keep) != len(axes):
        data = data.reshape(tuple(data.shape[i] for i in keep))
        axes = "".join(axes[i] for i in keep)
    return data, axes, voxel


def write_series(path: str | os.PathLike, image: Any, axes: str,
                 voxel_size: VoxelSize | None = None, *, overwrite: bool = False) -> Path:
    """Write an image with its axes (a subset of ``"tczyx"``), atomically.

    OME-TIFF and OME-Zarr keep any order of axes; ImageJ TIFF needs them in ImageJ's
    order (t, z, c, y, x) and is transposed to it.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    ValueError
        ``axes`` does not match the image.
    """
    axes = axes.lower()
    if len(axes) != len(image.shape) or any(a not in SERIES_AXES for a in axes):
        raise ValueError(f"axes: {axes!r} does not name the {len(image.shape)} axes of the "
                         "image with letters from 'tczyx'")
    if set(axes) <= set("zyx"):
        return write_image(path, image, voxel_size, overwrite=overwrite)
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite)")
    voxel = voxel_size or VoxelSize()
    if _is_zarr(path):
        return _write_zarr(path, image, voxel, axes=axes)
    image = np.asarray(image)
    if path.name.lower().endswith((".ome.tif", ".ome.tiff")):
        return _atomic_tiff(path, image, **_tiff_kwargs(axes, voxel, ome=True))
    order = [a for a in "tzcyx" if a in axes]
    image = np.transpose(image, [axes.index(a) for a in order])
    return _atomic_tiff(path, image, **_tiff_kwargs("".join(order), voxel, ome=False))


def _tiff_kwargs(axes: str, voxel: VoxelSize, *, ome: bool) -> dict:
    """tifffile keywords: OME ``PhysicalSize*`` or ImageJ ``spacing`` + resolution."""
    if ome:
        meta: dict = {"axes": axes.upper()}
        for axis, value in zip("ZYX", (voxel.z, voxel.y, voxel.x)):
            if value is not None and axis.lower() in axes:
                meta[f"PhysicalSize{axis}"] = value
                meta[f"PhysicalSize{axis}Unit"] = "µm"
        return {"ome": True, "metadata": meta}
    kwargs: dict = {"imagej": True, "metadata": {"axes": axes.upper(), "unit": "um"}}
    if voxel.z is not None and "z" in axes:
        kwargs["metadata"]["spacing"] = voxel.z
    if voxel.x is not None and voxel.y is not None:
        kwargs["resolution"] = (1.0 / voxel.x, 1.0 / voxel.y)
    return kwargs


def _atomic_tiff(path: Path, image: np.ndarray, **kwargs: Any) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        tifffile.imwrite(tmp, image, **kwargs)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_image(path: str | os.PathLike, *, lazy: bool = False) -> tuple[Any, VoxelSize]:
    """Read a TIFF, OME-TIFF or OME-Zarr stack and its voxel size.

    Parameters
    ----------
    path : str or path
        A ``.tif`` / ``.tiff`` / ``.ome.tif`` file, or an ``.ome.zarr`` / ``.zarr`` folder
        (OME-NGFF; full resolution), holding one (Z, Y, X) or (Y, X) image.
    lazy : bool, default False
        For OME-Zarr: return the ``dask.array`` over the stored chunks without reading
        them (for images larger than memory); TIFF is always read.

    Returns
    -------
    image : ndarray or dask.array.Array
        The first series, singleton axes removed, in the file's dtype.
    voxel_size : VoxelSize
        In microns, from OME ``PhysicalSize*``, ImageJ ``spacing``/``unit``, the
        resolution tags, or the OME-Zarr scale transform; ``None`` where not stated.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not a readable TIFF, or holds more than 3 non-singleton axes.
    """
    path = Path(path)
    if _is_zarr(path):
        if not path.exists():
            raise FileNotFoundError(f"image not found: {path}")
        return _read_zarr(path, lazy=lazy)
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
        Destination; ``.ome.tif`` / ``.ome.tiff`` writes OME-TIFF, ``.ome.zarr`` /
        ``.zarr`` OME-Zarr (one resolution level), other names ImageJ TIFF.
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
    if _is_zarr(path):
        return _write_zarr(path, image, voxel)
    ome = path.name.lower().endswith((".ome.tif", ".ome.tiff"))
    return _atomic_tiff(path, image, **_tiff_kwargs("zyx"[-image.ndim:], voxel, ome=ome))


def _write_zarr(path: Path, image: np.ndarray, voxel: VoxelSize, axes: str | None = None
                ) -> Path:
    try:
        import zarr
        from ome_zarr.io import parse_url
        from ome_zarr.writer import write_image as ome_write
    except ImportError as exc:
        raise ImportError("OME-Zarr needs ome-zarr: pip install 'rlcore[dask]'") from exc
    axes = axes or "zyx"[-image.ndim:]
    sizes = dict(zip("tczyx", (None, None, voxel.z, voxel.y, voxel.x)))
    scale = {a: float(sizes[a]) if sizes[a] is not None else 1.0 for a in axes}
    units = {a: "micrometer" for a in axes if sizes[a] is not None}
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        root = zarr.group(store=parse_url(str(tmp), mode="w").store, overwrite=True)
        ome_write(image, root, scale_factors=[], axes=axes, scale=scale,
                  axes_units=units or None)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
