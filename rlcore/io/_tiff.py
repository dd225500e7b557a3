"""TIFF, OME-TIFF and ImageJ hyperstacks (tifffile): voxel size, axes and channel names
read; headers, IFDs and strips checked against the file's bytes before reading; the
writer's keywords."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from rlcore import _atomic
from rlcore.io._calibration import VoxelSize, _microns
from rlcore.io._failures import _clause, _gib, _missing, _quiet, _tidy, _total_memory, _writing


class _BadTiff(ValueError):
    """What rlcore's own checks find wrong with a TIFF (the file is named by the caller)."""


def _ome_pixels(tif: tifffile.TiffFile) -> dict:
    meta = tifffile.xml2dict(tif.ome_metadata)
    image = meta.get("OME", {}).get("Image", {})
    return (image[0] if isinstance(image, list) else image).get("Pixels", {})


def _ome_channels(pixels: dict) -> tuple[str, ...]:
    """The OME ``Channel`` names, in order; () unless every channel has one."""
    channels = pixels.get("Channel", [])
    channels = channels if isinstance(channels, list) else [channels]
    names = [c.get("Name") if isinstance(c, dict) else None for c in channels]
    return tuple(str(n) for n in names) if names and all(n is not None for n in names) \
        else ()


def _ome_voxel_size(tif: tifffile.TiffFile) -> VoxelSize:
    pixels = _ome_pixels(tif)

    def get(axis: str) -> float | None:
        value = pixels.get(f"PhysicalSize{axis}")
        unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
        return _microns(float(value), unit) if value is not None else None

    return VoxelSize(get("Z"), get("Y"), get("X"), channels=_ome_channels(pixels))


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


def _tiff_axes(series: Any, is_ome: bool, is_imagej: bool, shape: tuple[int, ...]) -> str:
    """Lower-case axes of a TIFF series in rlcore's letters (t, c, z, y, x).

    Raises
    ------
    ValueError
        Colour samples (RGB) or an axis rlcore cannot place.
    """
    axes = str(series.axes).upper()
    if axes.endswith("S") and shape[-1] in (3, 4):
        raise _BadTiff(f"has colour samples (axes {axes}, shape {shape}); rlcore "
                         "deconvolves intensity stacks: split the channels first, e.g. "
                         "image[..., 0]")
    if not (is_ome or is_imagej):  # plain TIFF: pages are z (tifffile may say Q, I or S)
        return "zyx"[-len(shape):] if len(shape) <= 3 else ""
    mapping = {"T": "t", "C": "c", "Z": "z", "Y": "y", "X": "x", "Q": "z", "I": "z"}
    out = "".join(mapping.get(a, "?") for a in axes)
    if "?" in out or len(set(out)) != len(out):
        raise _BadTiff(f"has axes {axes}; rlcore reads T, C, Z, Y, X")
    return out


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
        if tif.is_shaped:  # tifffile's own plain TIFF: {"shape": [...]} in the description
            shape = (tif.shaped_metadata or [{}])[0].get("shape")
            return math.prod(int(n) for n in shape[:-2]) if shape and len(shape) > 2 \
                else None
    except (ValueError, TypeError, AttributeError, IndexError):
        return None
    return None


#: the most bytes one stored byte can decode to, by TIFF compression (a bound, so that a
#: header claiming more than the file's bytes can hold is refused before allocating)
_MAX_RATIO = {1: 1, 32773: 64, 5: 4096, 8: 1100, 32946: 1100, 50000: 2**16}


_ANY_RATIO = 2**20


def _check_tiff_bytes(tif: tifffile.TiffFile, series: Any) -> None:
    """Refuse a series whose strips or tiles lie past the end of the file (truncated),
    whose pages are missing, or whose header claims more voxels than its bytes can hold
    or this machine's memory can take; before any pixel is read."""
    size = tif.filehandle.size
    claimed = math.prod(int(n) for n in series.shape) * np.dtype(series.dtype).itemsize
    voxels = math.prod(int(n) for n in series.shape)
    if series.dataoffset is not None:  # uncompressed, contiguous: one read
        end = int(series.dataoffset) + claimed
        if end > size:
            raise _BadTiff(f"truncated TIFF or corrupt header: it claims shape "
                           f"{tuple(series.shape)} ({voxels:.3g} voxels, {_gib(claimed)}), "
                           f"stored up to byte {end}; the file has {size}")
        capacity = claimed
    else:
        capacity = 0
        for k, page in enumerate(series):
            if page is None:
                raise _BadTiff(f"truncated or corrupt TIFF: page {k} of "
                               f"{len(series)} is missing")
            ratio = _MAX_RATIO.get(int(page.compression), _ANY_RATIO)
            for offset, count in zip(page.dataoffsets, page.databytecounts):
                if count and offset + count > size:
                    raise _BadTiff(f"truncated TIFF: page {k}'s data end at byte "
                                   f"{offset + count}, the file has {size}")
                capacity += int(count) * ratio
    if capacity < claimed:
        raise _BadTiff(f"its header claims shape {tuple(series.shape)} ({voxels:.3g} "
                       f"voxels, {_gib(claimed)}), more than its {size} bytes can hold; "
                       "corrupt header")
    total = _total_memory()
    if total and claimed > total:
        raise _BadTiff(f"shape {tuple(series.shape)} needs {_gib(claimed)}, more than "
                       f"this machine's memory ({_gib(total)})")


#: bytes per value of each TIFF data type
_TIFF_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
                   13: 4, 16: 8, 17: 8, 18: 8}


def _check_ifds(tif: tifffile.TiffFile) -> None:
    """Every page's IFD (its tag count, tags and next-IFD offset) and every tag value
    stored outside it within the file: a file cut inside its last IFD or tag values
    may still decode, yet is damaged. Parsed from the bytes, as tifffile's frames keep
    no tags."""
    size, fmt, fh = tif.filehandle.size, tif.tiff, tif.filehandle
    for k, page in enumerate(tif.pages):
        offset = int(page.offset)
        fh.seek(offset)
        head = fh.read(fmt.tagnosize)
        count = struct.unpack(fmt.tagnoformat, head)[0] if len(head) == fmt.tagnosize \
            else None
        end = offset + fmt.tagnosize + (count or 0) * fmt.tagsize + fmt.offsetsize
        if count is None or end > size:
            raise _BadTiff(f"truncated TIFF: page {k}'s IFD ends past byte {end}, the "
                           f"file has {size}")
        entries = fh.read(count * fmt.tagsize)
        for i in range(count):
            code, dtype, n, value = struct.unpack(
                fmt.tagheaderformat, entries[i * fmt.tagsize:(i + 1) * fmt.tagsize])
            nbytes = n * _TIFF_TYPE_SIZE.get(dtype, 1)
            if nbytes > fmt.tagoffsetthreshold:
                at = struct.unpack(fmt.offsetformat, value[:fmt.offsetsize])[0]
                if at + nbytes > size:
                    raise _BadTiff(f"truncated TIFF: tag {code} of page {k} ends at byte "
                                   f"{at + nbytes}, the file has {size}")


def _tiff_contents(tif: tifffile.TiffFile, read: bool) -> tuple[Any, str, VoxelSize, Any]:
    """(data or None, axes, voxel size, the series), checked before reading."""
    if not tif.pages:
        raise _BadTiff("has no image pages (empty or truncated TIFF)")
    series = tif.series[0]
    _check_ifds(tif)
    _check_tiff_bytes(tif, series)
    voxel = _ome_voxel_size(tif) if tif.is_ome else _tiff_voxel_size(tif)
    axes = _tiff_axes(series, tif.is_ome, tif.is_imagej, tuple(series.shape))
    data = series.asarray() if read else None
    return data, axes, voxel, series


def _damage(messages: list[str]) -> str | None:
    words = ("invalid", "corrupt", "truncat", "failed", "beyond", "end of file",
             "not enough", "incomplete")
    return next((m for m in messages if any(w in m.lower() for w in words)), None)


def _open_tiff(path: Path, read: bool) -> tuple[Any, str, VoxelSize, int | None]:
    """The first series of a TIFF (or None, ``read=False``), its axes, voxel size and
    the planes its metadata states; every failure one ValueError naming the file."""
    if not path.is_file():
        raise _missing(path, "image file")
    error, codec = None, "its"
    with _quiet() as messages:
        try:
            with tifffile.TiffFile(path) as tif:
                if tif.pages:
                    codec = f"its {tif.pages.first.compression.name} compression"
                data, axes, voxel, series = _tiff_contents(tif, read)
                stated = _stated_planes(tif)
                shape = tuple(series.shape)
        except _BadTiff as exc:
            error = str(exc)
        except MemoryError as exc:
            error = f"too large to read into memory ({_clause(exc)})"
        except Exception as exc:  # noqa: BLE001 - any codec's or parser's error
            if isinstance(exc, ImportError) or "imagecodecs" in str(exc):
                error = f"{codec} needs imagecodecs: pip install imagecodecs"
            else:
                error = f"not a readable TIFF ({_clause(exc)})"
    if error is not None:
        raise ValueError(f"{path}: {error}")
    planes = math.prod(shape[:-2]) if len(shape) > 2 else 1
    damaged = _damage(messages)
    if (stated is not None and planes < stated) or damaged:
        said = f"its metadata states {stated} planes, " if stated else ""
        raise ValueError(f"{path}: truncated or corrupt TIFF ({said}{planes} could be read"
                         f"{'; ' + _tidy(damaged.splitlines()[0]) if damaged else ''}); "
                         "write it "
                         "again")
    if not axes:
        raise ValueError(f"{path}: has shape {shape} and no axes metadata; write it as "
                         "OME-TIFF (axes TCZYX) or ImageJ hyperstack")
    return data, axes, voxel, stated


def _read_tiff(path: Path) -> tuple[np.ndarray, str, VoxelSize]:
    data, axes, voxel, _ = _open_tiff(path, read=True)
    return data, axes, voxel


#: the private TIFF tag that holds an output's provenance (JSON), in the range TIFF
#: reserves for private use (65000-65535)
PROVENANCE_TAG = 65000


def _tiff_kwargs(axes: str, voxel: VoxelSize, *, ome: bool) -> dict:
    """tifffile keywords: OME ``PhysicalSize*`` or ImageJ ``spacing`` + resolution; no
    unit where the voxel size is unknown."""
    if ome:
        meta: dict = {"axes": axes.upper()}
        for axis, value in zip("ZYX", (voxel.z, voxel.y, voxel.x)):
            if value is not None and axis.lower() in axes:
                meta[f"PhysicalSize{axis}"] = value
                meta[f"PhysicalSize{axis}Unit"] = "µm"
        return {"ome": True, "metadata": meta, "photometric": "minisblack"}
    kwargs: dict = {"imagej": True, "metadata": {"axes": axes.upper()},
                    "photometric": "minisblack"}  # never RGB, whatever the last length
    if voxel.known:
        kwargs["metadata"]["unit"] = "um"
    if voxel.z is not None and "z" in axes:
        kwargs["metadata"]["spacing"] = voxel.z
    if voxel.x is not None and voxel.y is not None:
        kwargs["resolution"] = (1.0 / voxel.x, 1.0 / voxel.y)
    return kwargs


def _atomic_tiff(path: Path, image: np.ndarray, overwrite: bool, **kwargs: Any) -> Path:
    with _writing(path):
        tmp = _atomic.temp_file(path)
        try:
            with _quiet():
                tifffile.imwrite(tmp, image, **kwargs)
            return _atomic.publish(tmp, path, overwrite=overwrite)
        finally:
            tmp.unlink(missing_ok=True)  # published: gone already
