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
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import math
import os
import re
import shutil
import struct
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from rlcore import _atomic, formats
from rlcore._warn import warn

__all__ = ["VoxelSize", "Calibration", "read_image", "write_image", "read_series",
           "read_calibration", "write_series", "zarr_output", "read_provenance",
           "PROVENANCE_TAG", "PROVENANCE_KEY"]

#: the axes rlcore reads and writes, in OME-NGFF's order
SERIES_AXES = "tczyx"
#: the OME-NGFF versions rlcore writes
NGFF_VERSIONS = ("0.4", "0.5")

#: OME-NGFF's length units, in microns
_NGFF_UNITS = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3, "meter": 1e6,
               "centimeter": 1e4, "decimeter": 1e5, "picometer": 1e-6,
               "angstrom": 1e-4, "inch": 25400.0, "foot": 304800.0}
_TO_MICRONS = {"µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "\\u00B5m": 1.0,
               "nm": 1e-3, "mm": 1e3, "m": 1e6, "cm": 1e4, "pixel": None, "": None}
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
_LIBRARY_LOGS = ("tifffile", "ome_zarr", "zarr", "numcodecs", "imagecodecs") + formats.LOGGERS
_log = logging.getLogger(__name__)


class _BadTiff(ValueError):
    """What rlcore's own checks find wrong with a TIFF (the file is named by the caller)."""


@dataclass(frozen=True)
class Calibration:
    """Where each voxel of an image lies: per axis, its scale, translation and unit.

    ``position = index * scale + translation`` along each axis, as OME-NGFF's ``scale``
    and ``translation`` transformations. Read from an OME-Zarr image by
    :func:`read_calibration` (and carried by the :class:`VoxelSize` that
    :func:`read_series` returns), kept on write by :func:`write_series` and
    :func:`zarr_output`.

    Attributes
    ----------
    axes : str
        One letter per axis of the file, from ``"tczyx"``.
    scale, translation : tuple of float
        One per axis, in the axis's unit (1 and 0 where the file states none).
    units : tuple of str or None
        OME-NGFF unit names (``"micrometer"``, ``"second"``, ...), None where not stated.
    version : str or None
        The OME-NGFF version read (``"0.4"``, ``"0.5"``); None when not from OME-Zarr.
        :func:`write_series` writes this version unless asked for another.
    """

    axes: str
    scale: tuple[float, ...]
    translation: tuple[float, ...]
    units: tuple[str | None, ...]
    version: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "axes", str(self.axes).lower())
        for name in ("scale", "translation"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        object.__setattr__(self, "units", tuple(None if u is None else str(u)
                                                for u in self.units))
        n = len(self.axes)
        if any(a not in SERIES_AXES for a in self.axes) or len(set(self.axes)) != n or \
                not (len(self.scale) == len(self.translation) == len(self.units) == n):
            raise ValueError(f"Calibration: axes {self.axes!r} (letters from 'tczyx') need "
                             f"one scale, translation and unit each; got {self.scale}, "
                             f"{self.translation}, {self.units}")

    @classmethod
    def from_voxel_size(cls, voxel_size: VoxelSize | None, axes: str) -> Calibration:
        """Scale from a voxel size in microns (1 and no unit where unknown), no
        translation."""
        voxel = voxel_size or VoxelSize()
        sizes = {"z": voxel.z, "y": voxel.y, "x": voxel.x}
        axes = axes.lower()
        return cls(axes, tuple(sizes.get(a) or 1.0 for a in axes), (0.0,) * len(axes),
                   tuple("micrometer" if sizes.get(a) is not None else None for a in axes))

    @property
    def voxel_size(self) -> VoxelSize:
        """The z, y, x scale in microns. A space axis without a unit is taken in
        micrometres (OME-NGFF's usual unit, what ome-zarr writes when given no unit),
        unless no space axis has a unit and every space scale is 1: uncalibrated."""
        space = [i for i, a in enumerate(self.axes) if a in "zyx"]
        bare = all(self.units[i] is None and self.scale[i] == 1.0 for i in space)
        sizes: dict[str, float | None] = {}
        for i in space:
            unit = self.units[i]
            factor = (None if bare else 1.0) if unit is None else _NGFF_UNITS.get(unit)
            value = self.scale[i]
            ok = factor is not None and math.isfinite(value) and value > 0
            sizes[self.axes[i]] = value * factor if ok else None
        return VoxelSize(sizes.get("z"), sizes.get("y"), sizes.get("x"))

    def for_axes(self, axes: str) -> Calibration:
        """This calibration for other axes: each letter's values, 1 / 0 / no unit for a
        letter it lacks."""
        axes = axes.lower()
        at = {a: i for i, a in enumerate(self.axes)}

        def pick(values: tuple, default: Any) -> tuple:
            return tuple(values[at[a]] if a in at else default for a in axes)

        return Calibration(axes, pick(self.scale, 1.0), pick(self.translation, 0.0),
                           pick(self.units, None), self.version)

    def with_voxel_size(self, voxel_size: VoxelSize) -> Calibration:
        """The z, y, x scale of ``voxel_size`` (microns) where it states one that differs
        from this calibration's; the rest kept."""
        own = self.voxel_size
        scale, units = list(self.scale), list(self.units)
        for i, a in enumerate(self.axes):
            new = getattr(voxel_size, a, None) if a in "zyx" else None
            old = getattr(own, a, None) if a in "zyx" else None
            if new is not None and (old is None or not math.isclose(new, old, rel_tol=1e-9)):
                scale[i], units[i] = float(new), "micrometer"
        return replace(self, scale=tuple(scale), units=tuple(units))


@dataclass(frozen=True)
class VoxelSize:
    """Voxel size in microns; ``None`` for an axis whose size the file does not state.

    ``calibration`` (not compared, not shown): the full per-axis :class:`Calibration` of
    the OME-Zarr image it was read from, which :func:`write_series` and
    :func:`zarr_output` keep when given this voxel size; None otherwise.
    """

    z: float | None = None
    y: float | None = None
    x: float | None = None
    calibration: Calibration | None = field(default=None, compare=False, repr=False)
    #: the channels' names, in the order of the C axis (OME ``Channel Name``, NGFF
    #: ``omero`` labels, a vendor file's); () where the file names none. Not compared.
    channels: tuple[str, ...] = field(default=(), compare=False, repr=False)

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


def _tidy(text: str) -> str:
    """A library's message without its object tags (``<tifffile.TiffTag 270 @70>``) and
    re-raise wrappers (``raised TiffFileError('...')``)."""
    text = re.sub(r"<[^<>]*>\s*", "", text)
    text = re.sub(r"raised \w+\((['\"])(.*)\1\)", r"\2", text)
    return text.strip()


def _clause(exc: BaseException) -> str:
    """One clause for a library's exception: its type and the first line of its text."""
    text = str(exc).strip().splitlines()
    text = _tidy(text[0]) if text else ""
    if len(text) > 160:
        text = text[:157] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text and name not in text else (text or name)


class _Collect(logging.Handler):
    """Collects what the libraries log while one file is read (tifffile logs, rather
    than raises, when page offsets point past the end of a truncated file)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())
        _log.debug("%s: %s", record.name, record.getMessage())


@contextlib.contextmanager
def _quiet():
    """The libraries' log records and warnings held back while a file is read or
    written: yields the list of the WARNING and ERROR messages logged."""
    handler = _Collect()
    saved = []
    for name in _LIBRARY_LOGS:
        log = logging.getLogger(name)
        saved.append((log, log.level, log.propagate))
        log.addHandler(handler)
        log.setLevel(logging.WARNING)
        log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield handler.messages
    finally:
        for log, level, propagate in saved:
            log.removeHandler(handler)
            log.setLevel(level)
            log.propagate = propagate


# ---- TIFF ------------------------------------------------------------------------------

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


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or path.name.lower().endswith(".ome.zarr")


def _missing(path: Path, what: str) -> FileNotFoundError:
    hint = _atomic.interrupted_swap(path)
    return FileNotFoundError(hint or f"{what} not found: {path}")


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


def _gib(n: float) -> str:
    """Bytes in words: 931 GiB, 1 MiB, 508 KiB, 12 bytes."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


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


def _total_memory() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - a bound only; no psutil, no bound
        return None


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


# ---- OME-Zarr ----------------------------------------------------------------------------

def _zarr():
    try:
        import zarr
    except ImportError as exc:
        raise ImportError("OME-Zarr needs ome-zarr and zarr: pip install 'rlcore[dask]'") \
            from exc
    return zarr


@dataclass(frozen=True)
class _Ngff:
    """An opened OME-Zarr image: the full-resolution array and what the file says."""

    array: Any
    dataset: str  # path of the array inside the store, e.g. "s0" or "0/0"
    calibration: Calibration
    dropped: tuple[str, ...]  # transformations that cannot be kept
    blosc: bool = False  # chunks compressed by blosc (checked before decoding)
    channels: tuple[str, ...] = ()  # omero channel labels


def _multiscales(group: Any) -> tuple[Any, dict, str]:
    """(image group, its multiscales[0], its path) of an OME-Zarr root: the image
    itself or bioformats2raw's layout (the first series, ``0``)."""
    prefix = ""
    for _ in range(2):
        attrs = group.attrs.asdict()
        ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
        found = ome.get("multiscales")
        if found:
            ms = dict(found[0])
            ms.setdefault("version", ome.get("version") or found[0].get("version"))
            return group, ms, prefix
        if "bioformats2raw.layout" not in ome:
            break
        group, prefix = group["0"], "0/"
    raise ValueError("no OME-Zarr image found (no 'multiscales' metadata)")


def _compose(transforms: list, n: int, dropped: list) -> tuple[list, list]:
    """Scale and translation of a list of NGFF transformations applied in order."""
    scale, shift = [1.0] * n, [0.0] * n
    for t in transforms or []:
        kind = t.get("type")
        if kind in ("scale", "translation") and kind not in t:
            dropped.append(f"{kind} stored in {t.get('path', 'an array')}")
        elif kind == "scale":
            s = [float(v) for v in t["scale"]]
            scale = [a * b for a, b in zip(scale, s)]
            shift = [a * b for a, b in zip(shift, s)]
        elif kind == "translation":
            shift = [a + float(b) for a, b in zip(shift, t["translation"])]
        elif kind != "identity":
            dropped.append(str(kind))
    return scale, shift


def _open_ngff(path: Path) -> _Ngff:
    zarr = _zarr()
    root = zarr.open_group(str(path), mode="r")
    group, ms, prefix = _multiscales(root)
    axes_meta = ms.get("axes") or []
    names = [a["name"] if isinstance(a, dict) else a for a in axes_meta]
    letters = "".join(str(a).lower()[:1] for a in names)
    units = tuple(a.get("unit") if isinstance(a, dict) else None for a in axes_meta)
    datasets = ms.get("datasets") or []
    if not datasets:
        raise ValueError("its multiscales metadata lists no datasets")
    arrays = [group[d["path"]] for d in datasets]
    full = max(range(len(arrays)), key=lambda i: (math.prod(arrays[i].shape), -i))
    array = arrays[full]
    if not letters:
        letters = "tczyx"[-array.ndim:]
        units = (None,) * array.ndim
    if len(letters) != array.ndim or any(a not in SERIES_AXES for a in letters) or \
            len(set(letters)) != len(letters):
        raise _AxesError(f"axes {names} are not a subset of t, c, z, y, x")
    dropped: list[str] = []
    scale, shift = _compose(datasets[full].get("coordinateTransformations"), array.ndim,
                            dropped)
    outer_scale, outer_shift = _compose(ms.get("coordinateTransformations"), array.ndim,
                                        dropped)
    scale = [a * b for a, b in zip(scale, outer_scale)]
    shift = [a * b + c for a, b, c in zip(shift, outer_scale, outer_shift)]
    version = str(ms.get("version") or ("0.5" if _zarr_format(array) == 3 else "0.4"))
    cal = Calibration(letters, tuple(scale), tuple(shift), units, version)
    return _Ngff(array, prefix + datasets[full]["path"], cal, tuple(dropped),
                 _is_blosc(array), _omero_labels(group))


def _omero_labels(group: Any) -> tuple[str, ...]:
    """The ``omero`` channel labels of an OME-Zarr image group; () unless every channel
    has one."""
    attrs = group.attrs.asdict()
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    omero = ome.get("omero") or attrs.get("omero") or {}
    channels = omero.get("channels") if isinstance(omero, dict) else None
    labels = [c.get("label") for c in channels or [] if isinstance(c, dict)]
    return tuple(str(n) for n in labels) if labels and all(n is not None for n in labels) \
        else ()


class _AxesError(ValueError):
    pass


def _zarr_format(array: Any) -> int:
    return int(getattr(array.metadata, "zarr_format", 2))


def _chunk_name(ngff: _Ngff, coords: tuple[int, ...]) -> str:
    try:
        key = ngff.array.metadata.encode_chunk_key(coords)
    except Exception:  # noqa: BLE001 - zarr 2's metadata have no such method
        key = ".".join(str(c) for c in coords)
    return f"{ngff.dataset}/{key}"


def _chunk_error(path: Path, ngff: _Ngff, coords: tuple[int, ...], why: str) -> ValueError:
    chunks = ngff.array.chunks
    where = ", ".join(f"{c * n}:{min((c + 1) * n, s)}"
                      for c, n, s in zip(coords, chunks, ngff.array.shape))
    return ValueError(f"{path}: the chunk at [{where}] ({_chunk_name(ngff, coords)}) is "
                    f"unreadable ({why}); the file is corrupt or incomplete")


def _is_blosc(array: Any) -> bool:
    try:
        meta = array.metadata.to_dict()
    except Exception:  # noqa: BLE001
        return False
    codecs = meta.get("codecs") or []
    compressor = meta.get("compressor") or {}
    return compressor.get("id") == "blosc" or any(
        isinstance(c, dict) and c.get("name") == "blosc" for c in codecs)


def _blosc_check(path: Path, ngff: _Ngff, coords_list: Any) -> None:
    """Blosc decodes a chunk cut short without an error, reading past its end (garbage,
    or a crash); its header says the stored size (bytes 12-16), which must be the chunk
    file's size. Checked before decoding."""
    if not ngff.blosc:
        return
    for coords in coords_list:
        file = path / _chunk_name(ngff, tuple(coords))
        try:
            with open(file, "rb") as f:
                head = f.read(16)
            stored = file.stat().st_size
        except OSError:
            continue  # not stored: the fill value
        if len(head) < 16 or int.from_bytes(head[12:16], "little") != stored:
            said = int.from_bytes(head[12:16], "little") if len(head) >= 16 else "?"
            raise _chunk_error(path, ngff, tuple(coords),
                               f"blosc header says {said} bytes, the file has {stored}")


def _coords(ngff: _Ngff, index: tuple) -> list[tuple[int, ...]]:
    """The chunk coordinates a tuple of slices touches."""
    ranges = []
    for sl, n, size in zip(index, ngff.array.chunks, ngff.array.shape):
        start, stop, _ = sl.indices(size)
        ranges.append(range(start // n, max(start // n + 1, -(-stop // n))))
    return list(itertools.product(*ranges))


class _NamedChunks:
    """Dask's chunk getter, with the file and chunk named in any read error (a corrupt
    or missing chunk would otherwise surface as a bare codec message)."""

    def __init__(self, path: Path, ngff: _Ngff) -> None:
        self.path, self.ngff = path, ngff

    def __call__(self, array: Any, index: Any, asarray: bool = True, lock: Any = None) -> Any:
        from dask.array.core import getter

        coords = _coords(self.ngff, index) if isinstance(index, tuple) else []
        _blosc_check(self.path, self.ngff, coords)  # before blosc reads past its end
        try:  # no _quiet here: dask calls this from several threads at once
            return getter(array, index, asarray=asarray, lock=lock)
        except Exception as exc:  # noqa: BLE001 - any codec's error
            raise _chunk_error(self.path, self.ngff, coords[0] if coords else (0,) *
                               array.ndim, _clause(exc)) from None


def _read_all(path: Path, ngff: _Ngff) -> np.ndarray:
    """The whole array; on a decoding error, the first chunk that fails is named."""
    array = ngff.array
    _blosc_check(path, ngff, np.ndindex(*_grid(array)))  # before blosc reads past its end
    try:
        data = array[...]
    except Exception as first:  # noqa: BLE001 - find the chunk
        for coords in np.ndindex(*_grid(array)):
            sel = tuple(slice(c * n, (c + 1) * n) for c, n in zip(coords, array.chunks))
            try:
                array[sel]
            except Exception as exc:  # noqa: BLE001
                raise _chunk_error(path, ngff, coords, _clause(exc)) from None
        raise ValueError(f"{path}: unreadable ({_clause(first)})") from None
    return data


def _check_memory(path: Path, array: Any) -> None:
    nbytes = math.prod(int(n) for n in array.shape) * np.dtype(array.dtype).itemsize
    total = _total_memory()
    if total and nbytes > total:
        raise ValueError(f"{path}: shape {tuple(array.shape)} needs {_gib(nbytes)}, more "
                         f"than this machine's memory ({_gib(total)}); read it lazily "
                         "(lazy=True) or in blocks")


def _grid(array: Any) -> tuple[int, ...]:
    return tuple(-(-s // n) for s, n in zip(array.shape, array.chunks))


def _absent_chunks(path: Path, array: Any) -> None:
    """One warning when chunks are absent from the store: zarr reads them as the fill
    value. Legitimate (zarr leaves a chunk equal to the fill value unwritten), or a copy or
    a write that stopped part way: the reader cannot tell, the user can."""
    try:
        present, total = int(array.nchunks_initialized), int(array.nchunks)
    except Exception:  # noqa: BLE001 - a store that cannot be listed: nothing to say
        return
    if present < total:
        warn(f"{path}: {total - present} of {total} chunks are absent from the store and "
             f"read as the fill value ({array.fill_value}); zarr leaves a chunk equal to "
             "the fill value unwritten, but if a copy or a write stopped part way the "
             "image is incomplete: check the source")


def _read_zarr(path: Path, lazy: bool) -> tuple[Any, str, Calibration, tuple[str, ...]]:
    """The full-resolution array of an OME-Zarr image, its axes, calibration and channel
    labels."""
    _zarr()
    with _quiet():
        try:
            ngff = _open_ngff(path)
        except ImportError:
            raise
        except _AxesError as exc:
            raise ValueError(f"{path}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - JSON, key and codec errors of a store
            raise ValueError(f"{path}: not a readable OME-Zarr image ({_clause(exc)})") \
                from None
        if dict(ngff.array.attrs).get("rlcore_complete") is False:  # scheduler.COMPLETE
            raise ValueError(f"{path}: incomplete: a blocked rlcore run stopped before "
                           "writing every block; run it again")
        if lazy:
            import dask.array as da

            data = da.from_array(ngff.array, chunks=ngff.array.chunks,
                                 getitem=_NamedChunks(path, ngff), asarray=True,
                                 fancy=False)
        else:
            _check_memory(path, ngff.array)
            data = _read_all(path, ngff)
    _absent_chunks(path, ngff.array)
    if ngff.dropped:
        warn(f"{path}: its {', '.join(sorted(set(ngff.dropped)))} coordinate "
             "transformation cannot be kept (rlcore keeps scale and translation); the "
             "output will not have it")
    return data, ngff.calibration.axes, ngff.calibration, ngff.channels


# ---- vendor formats (bioio) ----------------------------------------------------------------

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


# ---- reading ----------------------------------------------------------------------------

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


# ---- writing ----------------------------------------------------------------------------

def _write_failure(path: Path, exc: BaseException) -> OSError | None:
    """A full disk or a file-size limit met while writing ``path``, as one OSError that
    names it; None for any other error."""
    code, e, seen = None, exc, 0
    while e is not None and seen < 10 and code is None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            code = e.errno
        elif isinstance(e, OSError) and "requested and" in str(e) and "written" in str(e):
            code = _short_write_cause(path)  # numpy's tofile: no errno
        e, seen = e.__cause__ or e.__context__, seen + 1
    if code is None:
        return None
    folder = path.parent
    if code == errno.EFBIG:
        limit = _file_size_limit()
        why = (f"file too large: the file-size limit (ulimit -f) is {_gib(limit)}"
               if limit else "file too large for the file system of "
               f"{folder} (FAT32 holds at most 4 GiB)")
    else:
        try:
            free = _gib(shutil.disk_usage(folder).free)
        except OSError:
            free = "?"
        quota = " (disk quota exceeded)" if code == errno.EDQUOT else ""
        why = f"disk full{quota}: {free} free in {folder}"
    out = OSError(f"{path}: not written, {why}; the partial output was removed and an "
                  "existing output is untouched")
    out.errno = code
    return out


def _file_size_limit() -> int | None:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _short_write_cause(path: Path) -> int:
    """A short write without errno: a full disk if under 1 MiB is free, else the
    file-size limit if one is set, else a full disk."""
    try:
        full = shutil.disk_usage(path.parent).free < 2**20
    except OSError:
        full = True
    return errno.EFBIG if not full and _file_size_limit() is not None else errno.ENOSPC


@contextlib.contextmanager
def _writing(path: Path):
    """Turn a full disk or a file-size limit met inside the block into one OSError
    naming ``path``."""
    try:
        yield
    except OSError as exc:
        failure = _write_failure(path, exc)
        if failure is None:
            raise
        raise failure from None


def _check_version(version: str | None) -> None:
    if version is not None and str(version) not in NGFF_VERSIONS:
        raise ValueError(f"ngff_version: {version!r}; rlcore writes OME-NGFF "
                         f"{' or '.join(NGFF_VERSIONS)}")


def _calibrated(axes: str, voxel_size: VoxelSize | None, calibration: Calibration | None
                ) -> Calibration:
    """The calibration to write: ``calibration`` or the one ``voxel_size`` carries, with
    the voxel size's z, y, x where it differs; else from the voxel size."""
    cal = calibration or (voxel_size.calibration if voxel_size is not None else None)
    if cal is None:
        return Calibration.from_voxel_size(voxel_size, axes)
    return cal.with_voxel_size(voxel_size) if voxel_size is not None else cal


def _restore_axes(image: Any, axes: str, cal: Calibration) -> tuple[Any, str]:
    """Singleton axes that the read removed, put back where the calibration has them
    (so the output has the input's axes)."""
    if set(axes) >= set(cal.axes) or not set(axes) <= set(cal.axes):
        return image, axes
    order = [a for a in cal.axes if a in axes]
    if "".join(order) != axes:
        return image, axes
    index = tuple(slice(None) if a in axes else None for a in cal.axes)
    return image[index], cal.axes


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


#: the private TIFF tag that holds an output's provenance (JSON), in the range TIFF
#: reserves for private use (65000-65535)
PROVENANCE_TAG = 65000
#: the OME-Zarr root attribute that holds it
PROVENANCE_KEY = "rlcore"


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


def _channel_names(names: tuple[str, ...], axes: str, shape: tuple[int, ...]
                   ) -> tuple[str, ...]:
    """The channel names to write: one per channel of the C axis (one for an image
    without one); () when they do not match."""
    count = shape[axes.index("c")] if "c" in axes else 1
    return tuple(names) if len(names) == count else ()


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


def _ngff_format(version: str):
    from ome_zarr.format import CurrentFormat, FormatV04, FormatV05

    if version == "0.4":
        return FormatV04()
    if version == "0.5":
        return FormatV05()
    return CurrentFormat()


def _ngff_metadata(folder: Path, cal: Calibration, channels: tuple[str, ...] = ()) -> None:
    """Axes (names, types, units) and the full-resolution scale and translation, written
    over what ome-zarr wrote (it keeps neither translations nor all units); the channel
    names as ``omero`` labels."""
    zarr = _zarr()
    root = zarr.open_group(str(folder), mode="r+")
    attrs = root.attrs.asdict()
    key = "ome" if "ome" in attrs else "multiscales"
    block = attrs[key]
    ms = (block["multiscales"] if key == "ome" else block)[0]
    ms["axes"] = [dict({"name": a, "type": _AXIS_TYPES[a]}, **({"unit": u} if u else {}))
                  for a, u in zip(cal.axes, cal.units)]
    ms["datasets"][0]["coordinateTransformations"] = [
        {"type": "scale", "scale": list(cal.scale)},
        {"type": "translation", "translation": list(cal.translation)}]
    ms.pop("coordinateTransformations", None)
    if channels:
        omero = {"channels": [{"label": n, "active": True} for n in channels]}
        if key == "ome":
            block["omero"] = omero
        else:
            root.attrs["omero"] = dict(omero, version=ms.get("version", "0.4"))
    root.attrs.update({key: block})


def _storage_options(version: str, chunks: tuple[int, ...] | None) -> dict:
    """zstd with a checksum (a flipped bit in a chunk is then an error, not silently
    different numbers), chunks as given."""
    if version == "0.4":
        import numcodecs

        options: dict = {"compressor": numcodecs.Zstd(level=0, checksum=True)}
    else:
        from zarr.codecs import ZstdCodec

        options = {"compressors": [ZstdCodec(level=0, checksum=True)]}
    if chunks is not None:
        options["chunks"] = tuple(int(c) for c in chunks)
    return options


def _ome_zarr_into(folder: Path, image: Any, cal: Calibration, version: str | None,
                   chunks: tuple[int, ...] | None = None,
                   channels: tuple[str, ...] = ()) -> None:
    """Write an OME-Zarr image (one resolution level) into an empty folder."""
    try:
        with _quiet():  # ome-zarr 0.18 warns on import (its write_image's Scaler default)
            from ome_zarr.writer import write_image as ome_write
    except ImportError as exc:
        raise ImportError("OME-Zarr needs ome-zarr: pip install 'rlcore[dask]'") from exc
    version = version or cal.version
    if version not in NGFF_VERSIONS:  # none, or an older one read: the current format
        version = None if version is None else "0.4"
    fmt = _ngff_format(version)
    scale = {a: s for a, s in zip(cal.axes, cal.scale)}
    with _quiet():
        ome_write(image, str(folder), scale_factors=[], fmt=fmt, axes=cal.axes,
                  scale=scale, storage_options=_storage_options(fmt.version, chunks))
        _ngff_metadata(folder, cal, channels)


def _write_zarr(path: Path, image: Any, cal: Calibration, version: str | None,
                overwrite: bool, provenance: dict | None = None,
                channels: tuple[str, ...] = ()) -> Path:
    with _writing(path):
        tmp = _atomic.temp_folder(path)
        try:
            _ome_zarr_into(tmp, image, cal, version, channels=channels)
            if provenance is not None:
                _zarr().open_group(str(tmp), mode="r+").attrs[PROVENANCE_KEY] = provenance
            return _atomic.publish(tmp, path, overwrite=overwrite)
        finally:
            _atomic.remove(tmp)  # published: gone already


@contextlib.contextmanager
def zarr_output(path: str | os.PathLike, shape: tuple[int, ...], axes: str,
                voxel_size: VoxelSize | None = None, *, overwrite: bool = False,
                chunks: tuple[int, ...] | None = None,
                calibration: Calibration | None = None,
                ngff_version: str | None = None, provenance: dict | None = None):
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
        Microns (one read from an OME-Zarr carries its :class:`Calibration`).
    overwrite : bool, default False
        Replace an existing ``path``.
    chunks : tuple of int, optional
        Zarr chunks (default: ome-zarr's choice).
    calibration : Calibration, optional
        Every axis's scale, translation and unit, as :func:`write_series` (only the
        letters of ``axes`` are written: the array has exactly ``shape``).
    ngff_version : {"0.4", "0.5"}, optional
        As :func:`write_series`.
    provenance : dict, optional
        As :func:`write_series`.

    Raises
    ------
    FileExistsError
        As :func:`write_series`.
    OSError
        The disk filled up or a file-size limit was met while writing: one line naming
        ``path``; nothing of the new output is left.
    ImportError
        ome-zarr is not installed.
    """
    import dask.array as da

    _check_version(ngff_version)
    zarr = _zarr()
    path = Path(path)
    axes = axes.lower()
    cal = _calibrated(axes, voxel_size, calibration).for_axes(axes)
    with _writing(path):
        tmp = _atomic.temp_folder(path)
        try:
            empty = da.zeros(shape, dtype=np.float32, chunks=chunks or "auto")
            names = voxel_size.channels if voxel_size is not None else ()
            _ome_zarr_into(tmp, empty, cal, ngff_version, chunks=chunks,
                           channels=_channel_names(names, axes, tuple(shape)))
            group = zarr.open_group(str(tmp), mode="r+")
            if provenance is not None:
                group.attrs[PROVENANCE_KEY] = provenance
            attrs = group.attrs.asdict()
            dataset = attrs.get("ome", attrs)["multiscales"][0]["datasets"][0]["path"]
            yield group[dataset]
            _atomic.publish(tmp, path, overwrite=overwrite)
        finally:
            _atomic.remove(tmp)  # published: gone already
