"""Vendor image formats (CZI, ND2, LIF, ...) read through bioio and its per-format plugins.

Installed with ``pip install 'rlcore[formats]'`` (bioio, bioio-czi, bioio-nd2, bioio-lif,
bioio-ome-tiff, bioio-ome-zarr). :func:`rlcore.io.read_series` sends a file here when its
suffix is one of :data:`PLUGINS` (or one an installed bioio plugin claims); TIFF, OME-TIFF
and OME-Zarr keep rlcore's own readers. bioio is imported only when such a file is read,
so ``import rlcore`` never needs it.

What is read: the first scene (a warning names the others), its ``T``, ``C``, ``Z``, ``Y``,
``X`` dimensions in the file's order, bioio's ``physical_pixel_sizes`` (microns) and
channel names. Every failure is one line: a missing bioio or plugin is an ``ImportError``
naming the pip package; a file the plugin cannot read (truncated, corrupt, not of its
format) is a ``ValueError`` naming the file and the plugin's reason, when the file is
opened or, read lazily, when a volume is computed.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlcore._warn import warn

__all__ = ["PLUGINS", "LOGGERS", "VendorImage", "is_vendor", "open_image"]

#: the suffixes read through bioio, each with its format's name and its plugin's pip package
PLUGINS = {
    ".czi": ("CZI (Zeiss)", "bioio-czi"),
    ".nd2": ("ND2 (Nikon)", "bioio-nd2"),
    ".lif": ("LIF (Leica)", "bioio-lif"),
    ".dv": ("DeltaVision", "bioio-dv"),
    ".r3d": ("DeltaVision", "bioio-dv"),
    ".sldy": ("SlideBook", "bioio-sldy"),
}
#: the suffixes rlcore's own readers keep (rlcore.io), whatever bioio plugins are installed
_OWN = (".tif", ".tiff", ".zarr")
#: what bioio and its plugins log while a file is read (held back by rlcore.io and the CLI)
LOGGERS = ("bioio", "bioio_base", "bioio_czi", "bioio_nd2", "bioio_lif", "bioio_ome_tiff",
           "bioio_ome_zarr", "nd2", "liffile", "pylibCZIrw", "aicspylibczi", "xmlschema")
_AXES = "TCZYX"
_INSTALL = "pip install 'rlcore[formats]'"


def _bioio_plugins_installed() -> bool:
    return bool(importlib.metadata.entry_points(group="bioio.readers"))


def _claimed(suffixes: list[str]) -> bool:
    """Whether an installed bioio plugin reads one of ``suffixes`` (bioio imported)."""
    try:
        from bioio.plugins import get_plugins
    except ImportError:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        claimed = get_plugins(use_cache=True)
    return any(s in claimed for s in suffixes)


def _suffixes(path: Path) -> list[str]:
    """``".ome.tif"`` and ``".tif"`` for ``a.ome.tif``: each trailing run of suffixes."""
    parts = [s.lower() for s in path.suffixes]
    return ["".join(parts[i:]) for i in range(len(parts))]


def is_vendor(path: str | Path) -> bool:
    """Whether :func:`rlcore.io.read_series` reads ``path`` through bioio.

    True for a suffix of :data:`PLUGINS` (``.czi``, ``.nd2``, ``.lif``, ...), and for any
    other suffix that an installed bioio plugin claims, except TIFF and (OME-)Zarr, which
    rlcore reads itself. bioio is imported only for a suffix outside both lists, and only
    when a bioio plugin is installed.
    """
    suffixes = _suffixes(Path(path))
    if not suffixes or any(s.endswith(_OWN) for s in suffixes):
        return False
    if suffixes[-1] in PLUGINS:
        return True
    return _bioio_plugins_installed() and _claimed(suffixes)


def _format(path: Path) -> tuple[str, str | None]:
    """The format's name and its plugin's pip package (None: not one rlcore lists)."""
    name, package = PLUGINS.get(path.suffix.lower(), (None, None))
    return name or f"{path.suffix or 'suffix-less'} files", package


def _reader_class(path: Path) -> type:
    """The reader class of the installed bioio plugin for ``path``'s suffix."""
    what, package = _format(path)
    pip = f"pip install {package}" if package else "install the bioio plugin for it"
    try:
        from bioio.plugins import get_plugins
    except ImportError:
        raise ImportError(f"{path}: reading {what} needs bioio and "
                          f"{package or 'its plugin'}: {_INSTALL}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        claimed = get_plugins(use_cache=True)
    for suffix in _suffixes(path):
        for entry in claimed.get(suffix, []):
            if package is None or entry.entrypoint.name == package:
                return entry.metadata.get_reader()
    raise ImportError(f"{path}: reading {what} needs the bioio plugin {package or '?'} "
                      f"({pip}, or {_INSTALL})")


def _reason(exc: BaseException, path: Path) -> str:
    """The plugin's reason in one clause, without bioio's boilerplate and the path."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.replace(f"'{path.resolve()}'", "").replace(f"'{path}'", "")
    text = re.sub(r"[\w\[\] -]*does not support the image: ?\.?\s*", "", text).strip(" .:")
    text = text or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass(frozen=True)
class _Layout:
    """How the plugin's dimensions map onto rlcore's axes."""

    dims: str        # the reader's dimensions, e.g. "TCZYX" or "MTCZYX"
    axes: str        # rlcore's axes, lower case: the reader's T, C, Z, Y, X in its order
    shape: tuple[int, ...]


def _layout(path: Path, dims: str, shape: tuple[int, ...]) -> _Layout:
    extra = {d: n for d, n in zip(dims, shape) if d not in _AXES}
    if extra.get("S", 1) > 1:
        raise ValueError(f"{path}: has {extra['S']} colour samples per pixel (RGB); rlcore "
                         "deconvolves one intensity per voxel: split the colours first")
    big = {d: n for d, n in extra.items() if n > 1}
    if big:
        said = ", ".join(f"{d} of {n}" for d, n in big.items())
        raise ValueError(f"{path}: has dimension(s) {said} beyond T, C, Z, Y, X ({dims}); "
                         "rlcore reads T, C, Z, Y, X only: export one tile/position per "
                         "file")
    axes = "".join(d.lower() for d in dims if d in _AXES)
    kept = tuple(n for d, n in zip(dims, shape) if d in _AXES)
    return _Layout(dims, axes, kept)


def _size(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


class _Volumes:
    """The scene's pixels as an array-like (``shape``, ``dtype``, ``__getitem__``) that
    reads what it is asked for through the plugin, one read at a time, and turns any
    failure into one ValueError naming the file."""

    def __init__(self, path: Path, reader: Any, layout: _Layout, dtype: np.dtype) -> None:
        self.path, self._reader, self._layout = path, reader, layout
        self.shape, self.dtype, self.ndim = layout.shape, np.dtype(dtype), len(layout.shape)
        self._lock = threading.Lock()

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        index = index + (slice(None),) * (self.ndim - len(index))
        at = iter(index)
        full = tuple(next(at) if d in _AXES else 0 for d in self._layout.dims)
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                data = self._reader.dask_data[full].compute(scheduler="synchronous")
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - any plugin's or codec's error
                raise ValueError(f"{self.path}: corrupt or truncated {_format(self.path)[0]}"
                                 f" file ({_reason(exc, self.path)})") from None
        return np.asarray(data, dtype=self.dtype)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[()]
        return data if dtype is None else data.astype(dtype)

    def lazy(self) -> Any:
        """A ``dask.array`` with one chunk per (T, C) volume (whole Z, Y, X)."""
        import dask.array as da

        chunks = tuple(1 if a in "tc" else n for a, n in zip(self._layout.axes, self.shape))
        return da.from_array(self, chunks=chunks, asarray=True, fancy=False,
                             name=f"rlcore-bioio-{id(self):x}")


@dataclass(frozen=True)
class VendorImage:
    """A vendor file opened through bioio (pixels not read).

    Attributes
    ----------
    path : Path
    data : array-like
        ``shape``, ``dtype`` and ``__getitem__`` (numpy slicing reads through the plugin);
        ``data.lazy()``: a ``dask.array`` with one chunk per (T, C) volume.
    axes : str
        One lower-case letter per axis of ``data``, from ``"tczyx"``, in the file's order;
        singleton axes kept.
    voxel_size : tuple of (float or None)
        ``(z, y, x)`` in microns (bioio's ``physical_pixel_sizes``); None where unknown.
    channel_names : tuple of str
        One per channel (empty when the plugin states none).
    plugin : str
        The bioio plugin (reader) that read the file.
    """

    path: Path
    data: _Volumes
    axes: str
    voxel_size: tuple[float | None, float | None, float | None]
    channel_names: tuple[str, ...]
    plugin: str


def _open_reader(path: Path) -> Any:
    reader_class = _reader_class(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = reader_class(str(path))
            reader.dims, reader.dtype  # noqa: B018 - metadata problems surface here
        except (ImportError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - any plugin's error
            raise ValueError(f"{path}: not a readable {_format(path)[0]} file "
                             f"({_reason(exc, path)})") from None
    scenes = tuple(reader.scenes)
    if len(scenes) > 1:
        warn(f"{path}: has {len(scenes)} scenes; rlcore reads the first ({scenes[0]!r}): "
             "export each scene to its own file to deconvolve the others")
    return reader


def open_image(path: str | Path) -> VendorImage:
    """Open a vendor file through bioio: its axes, voxel size and channel names.

    Parameters
    ----------
    path : str or path
        A file whose suffix :func:`is_vendor` accepts (``.czi``, ``.nd2``, ``.lif``, ...).

    Returns
    -------
    VendorImage
        The first scene, pixels not read.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ImportError
        bioio or the format's plugin is not installed: one line naming the pip package.
    ValueError
        The plugin cannot read the file (truncated, corrupt, not of its format), colour
        (RGB) samples, or a dimension other than T, C, Z, Y, X larger than 1 (mosaic
        tiles): one line naming the file.

    Examples
    --------
    >>> from rlcore.formats import is_vendor
    >>> is_vendor("cells.czi"), is_vendor("cells.ome.tif")
    (True, False)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    reader = _open_reader(path)
    layout = _layout(path, str(reader.dims.order), tuple(int(n) for n in reader.shape))
    sizes = reader.physical_pixel_sizes
    try:
        names = tuple(str(c) for c in (reader.channel_names or ()))
    except Exception:  # noqa: BLE001 - channel names are a courtesy; pixels still read
        names = ()
    plugin = f"{type(reader).__module__.split('.')[0]}.{type(reader).__name__}"
    return VendorImage(path, _Volumes(path, reader, layout, reader.dtype), layout.axes,
                       (_size(sizes.Z), _size(sizes.Y), _size(sizes.X)), names, plugin)
