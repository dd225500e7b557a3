"""OME-Zarr (OME-NGFF 0.4 and 0.5, zarr 2 and 3 stores): the full-resolution array, its
calibration and channel labels read, every chunk's decoding error named, and images
written whole or block by block (:func:`zarr_output`)."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlcore import _atomic
from rlcore._warn import warn
from rlcore.io._calibration import (
    _AXIS_TYPES,
    NGFF_VERSIONS,
    SERIES_AXES,
    Calibration,
    VoxelSize,
    _calibrated,
    _channel_names,
    _check_version,
)
from rlcore.io._failures import _check_memory, _clause, _quiet, _writing


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or path.name.lower().endswith(".ome.zarr")


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


PROVENANCE_KEY = "rlcore"


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
