"""Read and write TIFF / OME-TIFF (tifffile) and OME-Zarr (ome-zarr) images with their
voxel size.

Voxel sizes are in microns, ``(z, y, x)`` order; axes of the arrays are ``(Z, Y, X)``.
Writes are atomic (:mod:`rlcore._atomic`): the file or folder is written under a temporary
name beside its destination and moved into place when complete, so a stopped run leaves
the old output untouched and nothing that looks finished. Reads check what they read: a
TIFF whose pages are fewer than its metadata says (truncated), a page-less TIFF, colour
(RGB) samples, unreadable OME-Zarr metadata or chunks, and a zarr that a blocked run
left incomplete are errors that name the file.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from rlcore import _atomic

__all__ = ["VoxelSize", "read_image", "write_image", "read_series", "write_series",
           "zarr_output"]

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


def _ome_pixels(tif: tifffile.TiffFile) -> dict:
    meta = tifffile.xml2dict(tif.ome_metadata)
    image = meta.get("OME", {}).get("Image", {})
    return (image[0] if isinstance(image, list) else image).get("Pixels", {})


def _ome_voxel_size(tif: tifffile.TiffFile) -> VoxelSize:
    pixels = _ome_pixels(tif)

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


def _missing(path: Path, what: str) -> FileNotFoundError:
    hint = _atomic.interrupted_swap(path)
    return FileNotFoundError(hint or f"{what} not found: {path}")


class _NamedChunks:
    """Dask's chunk getter, with the file and chunk named in any read error (a corrupt
    or missing chunk would otherwise surface as a bare codec message)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, array: Any, index: Any, asarray: bool = True, lock: Any = None) -> Any:
        from dask.array.core import getter

        try:
            return getter(array, index, asarray=asarray, lock=lock)
        except Exception as exc:
            raise _unreadable_chunk(self.path, index, exc) from exc


def _unreadable_chunk(path: Path, index: Any, exc: Exception) -> ValueError:
    where = ", ".join(f"{s.start}:{s.stop}" for s in index) if isinstance(index, tuple) \
        else "all"
    return ValueError(f"{path}: the chunk at [{where}] is unreadable ({exc}); the file is "
                      "corrupt or incomplete")


def _read_zarr(path: Path, lazy: bool) -> tuple[Any, str, VoxelSize]:
    """The full-resolution array of an OME-Zarr image, its axes and voxel size."""
    try:
        import zarr
        from ome_zarr.io import parse_url
        from ome_zarr.reader import Reader
    except ImportError as exc:
        raise ImportError("OME-Zarr needs ome-zarr: pip install 'rlcore[dask]'") from exc
    try:
        location = parse_url(str(path))
        nodes = list(Reader(location)()) if location is not None else []
        if not nodes or not nodes[0].data:
            raise ValueError("no OME-Zarr image found")
        node = nodes[0]
        dataset = node.specs[0].datasets[0]
        array = zarr.open_array(store=location.store, path=dataset, mode="r")
        meta = node.metadata
    except ImportError:
        raise
    except Exception as exc:  # JSON, key and codec errors of a corrupt store
        raise ValueError(f"{path}: not a readable OME-Zarr image ({exc})") from exc
    if dict(array.attrs).get("rlcore_complete") is False:  # rlcore.scheduler.COMPLETE
        raise ValueError(f"{path}: incomplete: a blocked rlcore run stopped before writing "
                         "every block; run it again")
    if lazy:
        import dask.array as da

        data = da.from_array(array, chunks=array.chunks, getitem=_NamedChunks(path),
                             asarray=True, fancy=False)
    else:
        try:
            data = array[...]
        except Exception as exc:
            raise _unreadable_chunk(path, None, exc) from exc
    axes = [a["name"] if isinstance(a, dict) else a for a in meta.get("axes", [])]
    units = [a.get("unit") if isinstance(a, dict) else None for a in meta.get("axes", [])]
    sizes: dict[str, float | None] = {}
    transforms = meta.get("coordinateTransformations") or [[]]
    for t in transforms[0]:
        if t.get("type") == "scale":
            for name, unit, value in zip(axes, units, t["scale"]):
                factor = _NGFF_UNITS.get(unit)  # no unit: not calibrated
                sizes[name] = None if factor is None else float(value) * factor
    voxel = VoxelSize(sizes.get("z"), sizes.get("y"), sizes.get("x"))
    names = "".join(str(a).lower()[:1] for a in axes) if axes else "zyx"[-data.ndim:]
    if len(names) != data.ndim or any(a not in SERIES_AXES for a in names):
        raise ValueError(f"{path}: axes {axes} are not a subset of t, c, z, y, x")
    return data, names, voxel


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


class _TiffLog(logging.Handler):
    """Collects what tifffile logs while one file is read (it logs, rather than raises,
    when page offsets point past the end of a truncated file)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tiff_messages():
    log = logging.getLogger("tifffile")
    handler = _TiffLog()
    log.addHandler(handler)
    try:
        yield handler.messages
    finally:
        log.removeHandler(handler)


def _stated_planes(tif: tifffile.TiffFile) -> int | None:
    """Planes (pages of one sample each) the metadata says the file holds, if it says."""
    try:
        if tif.is_imagej:
            return int((tif.imagej_metadata or {}).get("images", 0)) or None
        if tif.is_ome:
            pixels = _ome_pixels(tif)
            sizes = [int(pixels.get(k, 1)) for k in ("SizeZ", "SizeC", "SizeT")]
            samples = pixels.get("Channel", {})
            samples = samples[0] if isinstance(samples, list) else samples
            per_page = int(samples.get("SamplesPerPixel", 1)) if samples else 1
            return math.prod(sizes) // max(1, per_page)
    except (ValueError, TypeError, AttributeError):
        return None
    return None


def _read_tiff(path: Path) -> tuple[np.ndarray, str, VoxelSize]:
    """The first series of a TIFF with its axes, checked against the metadata."""
    if not path.is_file():
        raise _missing(path, "image file")
    try:
        with _tiff_messages() as messages, tifffile.TiffFile(path) as tif:
            if not tif.pages:
                raise ValueError("has no image pages (empty or truncated TIFF)")
            series = tif.series[0]
            data = series.asarray()
            voxel = _ome_voxel_size(tif) if tif.is_ome else _tiff_voxel_size(tif)
            axes = _tiff_axes(series, tif.is_ome, tif.is_imagej, tuple(data.shape))
            stated = _stated_planes(tif)
    except (tifffile.TiffFileError, KeyError, IndexError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable TIFF ({exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    planes = math.prod(data.shape[:-2]) if data.ndim > 2 else 1
    damaged = [m for m in messages if any(w in m.lower() for w in
                                          ("invalid", "corrupt", "truncat", "failed"))]
    if (stated is not None and planes < stated) or damaged:
        said = f"its metadata states {stated} planes, " if stated else ""
        raise ValueError(f"{path}: truncated or corrupt TIFF ({said}{planes} could be read"
                         f"{'; ' + damaged[0] if damaged else ''}); write it again")
    if not axes:
        raise ValueError(f"{path}: has shape {data.shape} and no axes metadata; write "
                         "it as OME-TIFF (axes TCZYX) or ImageJ hyperstack")
    return data, axes, voxel


def read_series(path: str | os.PathLike, *, lazy: bool = False
                ) -> tuple[Any, str, VoxelSize]:
    """Read an image with its axes: ``(T, C, Z, Y, X)`` or any subset.

    Parameters
    ----------
    path : str or path
        TIFF / OME-TIFF file or OME-Zarr folder, as :func:`read_image`.
    lazy : bool, default False
        OME-Zarr: a ``dask.array`` over the stored chunks (a chunk that cannot be read
        raises a ValueError naming the file and chunk when computed).

    Returns
    -------
    image : ndarray or dask.array.Array
        Singleton t, c and z axes removed, in the file's order of axes.
    axes : str
        One letter per axis of ``image``, from ``"tczyx"`` (OME-TIFF and ImageJ axes,
        OME-NGFF axis names; plain TIFF: ``"zyx"`` or ``"yx"``).
    voxel_size : VoxelSize

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (the message names the old and new outputs if a
        replacement of it was interrupted).
    ValueError
        Not a readable image: truncated or page-less TIFF, fewer pages than its metadata
        states, colour (RGB) samples, axes other than t, c, z, y, x, unreadable OME-Zarr
        metadata or chunks, a zarr left incomplete by a stopped blocked run.
    ImportError
        An OME-Zarr path without ome-zarr installed.
    """
    path = Path(path)
    if _is_zarr(path):
        if not path.exists():
            raise _missing(path, "image")
        data, axes, voxel = _read_zarr(path, lazy=lazy)
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
        (OME-NGFF; full resolution), holding one (Z, Y, X) or (Y, X) image.
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
                 voxel_size: VoxelSize | None = None, *, overwrite: bool = False) -> Path:
    """Write an image with its axes (a subset of ``"tczyx"``), atomically.

    OME-TIFF and OME-Zarr keep any order of axes; ImageJ TIFF needs them in ImageJ's
    order (t, z, c, y, x) and is transposed to it.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False (checked when the complete data are
        moved into place, so also when it appeared meanwhile): ``path`` is left untouched
        and the data are kept beside it under a free name (``out-1.tif``), given in the
        message.
    ValueError
        ``axes`` does not match the image.
    """
    axes = axes.lower()
    if len(axes) != len(image.shape) or any(a not in SERIES_AXES for a in axes):
        raise ValueError(f"axes: {axes!r} does not name the {len(image.shape)} axes of the "
                         "image with letters from 'tczyx'")
    path = Path(path)
    voxel = voxel_size or VoxelSize()
    if _is_zarr(path):
        return _write_zarr(path, image, voxel, axes, overwrite)
    image = np.asarray(image)
    if path.name.lower().endswith((".ome.tif", ".ome.tiff")):
        kwargs = _tiff_kwargs(axes, voxel, ome=True)
    else:
        order = [a for a in "tzcyx" if a in axes]
        image = np.transpose(image, [axes.index(a) for a in order])
        kwargs = _tiff_kwargs("".join(order), voxel, ome=False)
    return _atomic_tiff(path, image, overwrite, **kwargs)


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
    FileExistsError
        As :func:`write_series`.
    """
    return write_series(path, image, "zyx"[-len(image.shape):], voxel_size,
                        overwrite=overwrite)


def _tiff_kwargs(axes: str, voxel: VoxelSize, *, ome: bool) -> dict:
    """tifffile keywords: OME ``PhysicalSize*`` or ImageJ ``spacing`` + resolution; no
    unit where the voxel size is unknown."""
    if ome:
        meta: dict = {"axes": axes.upper()}
        for axis, value in zip("ZYX", (voxel.z, voxel.y, voxel.x)):
            if value is not None and axis.lower() in axes:
                meta[f"PhysicalSize{axis}"] = value
                meta[f"PhysicalSize{axis}Unit"] = "µm"
        return {"ome": True, "metadata": meta}
    kwargs: dict = {"imagej": True, "metadata": {"axes": axes.upper()}}
    if voxel.known:
        kwargs["metadata"]["unit"] = "um"
    if voxel.z is not None and "z" in axes:
        kwargs["metadata"]["spacing"] = voxel.z
    if voxel.x is not None and voxel.y is not None:
        kwargs["resolution"] = (1.0 / voxel.x, 1.0 / voxel.y)
    return kwargs


def _atomic_tiff(path: Path, image: np.ndarray, overwrite: bool, **kwargs: Any) -> Path:
    tmp = _atomic.temp_file(path)
    try:
        tifffile.imwrite(tmp, image, **kwargs)
        return _atomic.publish(tmp, path, overwrite=overwrite)
    finally:
        tmp.unlink(missing_ok=True)  # published: gone already


def _ome_zarr_into(folder: Path, image: Any, voxel: VoxelSize, axes: str) -> None:
    """Write an OME-Zarr image (one resolution level) into an empty folder."""
    try:
        import zarr
        from ome_zarr.io import parse_url
        from ome_zarr.writer import write_image as ome_write
    except ImportError as exc:
        raise ImportError("OME-Zarr needs ome-zarr: pip install 'rlcore[dask]'") from exc
    sizes = dict(zip("tczyx", (None, None, voxel.z, voxel.y, voxel.x)))
    scale = {a: float(sizes[a]) if sizes[a] is not None else 1.0 for a in axes}
    units = {a: "micrometer" for a in axes if sizes[a] is not None}
    root = zarr.group(store=parse_url(str(folder), mode="w").store, overwrite=True)
    ome_write(image, root, scale_factors=[], axes=axes, scale=scale,
              axes_units=units or None)


def _write_zarr(path: Path, image: Any, voxel: VoxelSize, axes: str, overwrite: bool
                ) -> Path:
    tmp = _atomic.temp_folder(path)
    try:
        _ome_zarr_into(tmp, image, voxel, axes)
        return _atomic.publish(tmp, path, overwrite=overwrite)
    finally:
        _atomic.remove(tmp)  # published: gone already


@contextlib.contextmanager
def zarr_output(path: str | os.PathLike, shape: tuple[int, ...], axes: str,
                voxel_size: VoxelSize | None = None, *, overwrite: bool = False,
                chunks: tuple[int, ...] | None = None):
    """An OME-Zarr output written piece by piece (e.g. a blocked run's ``out=``), moved
    into place only when complete.

    Yields the full-resolution float32 zarr array of a new OME-Zarr image in a temporary
    folder beside ``path`` (unwritten chunks read as 0); when the ``with`` block ends
    without an exception the folder replaces ``path`` as :func:`write_series` does, else
    it is deleted and ``path`` is untouched.

    Parameters
    ----------
    path : str or path
        ``.ome.zarr`` / ``.zarr`` destination.
    shape : tuple of int
        Shape of the image, one length per letter of ``axes``.
    axes : str
        Letters from ``"tczyx"``.
    voxel_size : VoxelSize, optional
        Microns.
    overwrite : bool, default False
        Replace an existing ``path``.
    chunks : tuple of int, optional
        Zarr chunks (default: ome-zarr's choice).

    Raises
    ------
    FileExistsError
        As :func:`write_series`.
    ImportError
        ome-zarr is not installed.
    """
    import dask.array as da
    import zarr

    path = Path(path)
    tmp = _atomic.temp_folder(path)
    try:
        empty = da.zeros(shape, dtype=np.float32, chunks=chunks or "auto")
        _ome_zarr_into(tmp, empty, voxel_size or VoxelSize(), axes.lower())
        group = zarr.open_group(str(tmp), mode="r+")
        dataset = group.attrs.asdict()
        dataset = (dataset.get("ome", dataset))["multiscales"][0]["datasets"][0]["path"]
        yield group[dataset]
        _atomic.publish(tmp, path, overwrite=overwrite)
    finally:
        _atomic.remove(tmp)  # published: gone already
