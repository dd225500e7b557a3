"""Argument checking shared by the public functions.

Every check raises with a message that names the argument, the value seen and the fix.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import array_api_compat
import numpy as np

from rlcore._system import usable_cpus
from rlcore._warn import warn

__all__ = ["as_image", "as_psf", "check_iterations", "check_kind", "to_numpy"]


def to_numpy(array: Any, name: str) -> np.ndarray:
    """Host copy (or view) of any supported array, for small arrays such as the PSF."""
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "get") and type(array).__module__.startswith("cupy"):
        return array.get()
    try:
        return np.from_dlpack(array)
    except (TypeError, AttributeError, RuntimeError, BufferError):
        pass
    try:
        return np.asarray(array)
    except Exception as exc:
        raise TypeError(f"{name}: cannot read {type(array).__name__} as an array ({exc})") from exc


def _check_dtype(xp: Any, array: Any, name: str) -> None:
    dtype = array.dtype
    if isinstance(array, np.ndarray) and dtype.kind not in "iuf":
        raise TypeError(
            f"{name}: dtype {dtype} is not supported; pass real numbers "
            f"(integer or float), e.g. {name}.astype(numpy.float32)"
        )
    if not isinstance(array, np.ndarray) and not xp.isdtype(dtype, ("integral", "real floating")):
        raise TypeError(f"{name}: dtype {dtype} is not supported; pass integer or real float data")


#: host arrays from this many voxels are reduced by several threads
_THREADED_MIN = 1 << 22


def in_row_slabs(y: np.ndarray, fn: Any) -> list:
    """``[fn(lo, hi), ...]`` over slabs of rows (axis 0) of a host array: one slab below
    :data:`_THREADED_MIN` voxels, else one per core (at most 16) on threads (NumPy
    releases the GIL in its loops). ``y`` has at least one axis."""
    rows = y.shape[0]
    parts = min(rows, usable_cpus(), 16) if y.size >= _THREADED_MIN else 1
    if parts <= 1:
        return [fn(0, rows)]
    from concurrent.futures import ThreadPoolExecutor

    bounds = [rows * i // parts for i in range(parts + 1)]
    with ThreadPoolExecutor(parts) as pool:
        return list(pool.map(lambda b: fn(*b), zip(bounds, bounds[1:])))


def _min_max(xp: Any, y: Any) -> tuple[float, float]:
    """``(min, max)`` of ``y``; a large NumPy array is split over threads along axis 0
    (:func:`in_row_slabs`): 64 M voxels took ~30 ms on one core, which was a third of a
    10-iteration GPU run."""
    if not isinstance(y, np.ndarray) or y.ndim == 0 or y.size < _THREADED_MIN:
        return float(xp.min(y)), float(xp.max(y))
    lows, highs = zip(*in_row_slabs(y, lambda lo, hi: (y[lo:hi].min(), y[lo:hi].max())))
    return float(np.min(lows)), float(np.max(highs))


def _check_shape(array: Any, name: str) -> None:
    if array.ndim < 1:
        raise ValueError(f"{name}: must have at least 1 dimension, got a 0-d array")
    if any(n == 0 for n in array.shape):
        raise ValueError(f"{name}: is empty (shape {tuple(array.shape)}); pass a non-empty array")


def check_kind(array: Any, name: str) -> None:
    """Dtype and shape checks only (no pass over the data).

    Raises
    ------
    TypeError
        Complex, boolean, object or string dtypes.
    ValueError
        Empty or 0-d.
    """
    _check_dtype(array_api_compat.array_namespace(array), array, name)
    _check_shape(array, name)


def as_image(
    image: Any, name: str = "image", *, clip_negative: bool = True
) -> tuple[Any, Any, float]:
    """Checked float32 image in its own namespace, that namespace, and its maximum (after
    clipping; the check computes it anyway, callers need not pass over the data again).

    Never modifies ``image``; returns it unchanged (no copy) when it is already float32,
    finite and non-negative.

    Raises
    ------
    TypeError
        Complex, boolean, object or string dtypes.
    ValueError
        Empty, 0-d, or containing NaN / infinity.
    """
    if not array_api_compat.is_array_api_obj(image):
        if isinstance(image, (str, bytes, os.PathLike)):
            raise TypeError(f"{name}: got {type(image).__name__} {str(image)!r}; pass an "
                            "array of numbers (read a file with rlcore.io.read_image)")
        image = np.asarray(image)
    xp = array_api_compat.array_namespace(image)
    _check_dtype(xp, image, name)
    _check_shape(image, name)
    y = xp.astype(image, xp.float32, copy=False)
    # two reductions, no temporaries: NaN propagates through min/max, +-inf shows in them
    low, high = _min_max(xp, y)
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int(xp.sum(xp.astype(~xp.isfinite(y), xp.int64)))
        raise ValueError(
            f"{name}: contains {bad} NaN or infinite values (after conversion to float32); "
            "replace them, e.g. numpy.nan_to_num"
        )
    if max(abs(low), abs(high)) * max(int(math.prod(y.shape)), 1) >= 1e38:
        raise ValueError(
            f"{name}: values up to {max(abs(low), abs(high)):.3g} over "
            f"{math.prod(y.shape)} voxels overflow float32 sums in the FFTs; scale the "
            "image down (results scale with it)")
    if clip_negative and low < 0:
        warn(
            f"{name}: {int(xp.sum(xp.astype(y < 0, xp.int64)))} negative values clipped to 0 "
            "(Richardson-Lucy assumes non-negative data; subtract less background)",
        )
        y = xp.where(y < 0, xp.zeros_like(y), y)
        high = max(high, 0.0)
    return y, xp, high


def as_psf(psf: Any, image_shape: tuple[int, ...], name: str = "psf") -> np.ndarray:
    """Checked PSF on the host: float64, non-negative, centre-cropped to the image, sum 1.

    Raises
    ------
    TypeError
        Unsupported dtype.
    ValueError
        Empty, NaN/inf, ndim different from the image's, or sum <= 0.
    """
    if isinstance(psf, (str, bytes, os.PathLike)):
        raise TypeError(f"{name}: got {type(psf).__name__}; pass an array of numbers")
    host = to_numpy(psf, name)
    xp = array_api_compat.array_namespace(host)
    _check_dtype(xp, host, name)
    _check_shape(host, name)
    if host.ndim != len(image_shape):
        raise ValueError(
            f"{name}: has {host.ndim} dimensions but the image has {len(image_shape)}; "
            "pass a PSF with one axis per image axis (Z, Y, X)"
        )
    h = host.astype(np.float64)
    if not np.isfinite(h).all():
        raise ValueError(f"{name}: contains NaN or infinite values; pass a finite PSF")
    total = float(h.sum())
    if total <= 0:
        raise ValueError(
            f"{name}: sum must be positive, got {total:g}; pass a non-negative PSF "
            "(subtract less background)"
        )
    if (h < 0).any():
        warn(
            f"{name}: {int((h < 0).sum())} negative values clipped to 0 "
            "(a PSF is an intensity; subtract less background)",
        )
        h = np.maximum(h, 0)
    _warn_off_centre(h, name)
    if any(p > n for p, n in zip(h.shape, image_shape)):
        keep = tuple(min(p, n) for p, n in zip(h.shape, image_shape))
        warn(
            f"{name}: shape {h.shape} is larger than the image {tuple(image_shape)}; "
            f"centre-cropped to {keep} (the centre voxel n // 2 is kept)",
        )
        h = h[tuple(slice(p // 2 - k // 2, p // 2 - k // 2 + k) for p, k in zip(h.shape, keep))]
    total = float(h.sum())
    if total <= 0:
        raise ValueError(f"{name}: sum is {total:g} after cropping to the image; pass a PSF whose "
                         "energy lies near its centre voxel n // 2")
    return h / total


#: centre offsets of the last PSFs measured, by content (a series, a batch and repeated
#: calls pass the same PSF: the measurement costs ms, the digest microseconds)
_OFFSETS: dict = {}
_OFFSETS_KEEP = 8


def _centre_offset(h: np.ndarray) -> tuple[float, ...]:
    """:func:`rlcore.psf.centroid_offset` of ``h``, remembered for the last few PSFs."""
    import hashlib

    from rlcore._psfmath import centroid_offset

    c = np.ascontiguousarray(h)
    key = (c.shape, c.dtype.str, hashlib.blake2b(c.view(np.uint8).reshape(-1),
                                                 digest_size=16).digest())
    offset = _OFFSETS.get(key)
    if offset is None:
        offset = centroid_offset(c)
        if len(_OFFSETS) >= _OFFSETS_KEEP:
            _OFFSETS.pop(next(iter(_OFFSETS)))
        _OFFSETS[key] = offset
    return offset


def _warn_off_centre(h: np.ndarray, name: str) -> None:
    """rlcore's convention is the PSF's centre at voxel ``n // 2``; a PSF whose centre
    (:func:`rlcore.psf.center_of`, the one :func:`rlcore.psf.centered` moves there, so a
    PSF it returned never warns) lies elsewhere shifts the result by as much, so say so."""
    from rlcore._psfmath import CENTER_WARNING

    offset = _centre_offset(h)
    if max(abs(o) for o in offset) > CENTER_WARNING:
        centre = tuple(n // 2 for n in h.shape)
        warn(
            f"{name}: its centroid is {tuple(round(o, 2) for o in offset)} voxels from the "
            f"centre voxel n // 2 = {centre} (the centroid of its light above the background "
            "within two widths at half maximum of its peak, rlcore.psf.center_of), so the "
            "result is shifted by as much; centre it with rlcore.psf.centered(psf) (the "
            "CLI, napari and the RedLionfish compat do by default)")


def check_iterations(iterations: Any, name: str = "iterations") -> int:
    """A non-negative int (bools refused)."""
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral):
        raise TypeError(f"{name}: must be an int, got {type(iterations).__name__} {iterations!r}")
    if iterations < 0:
        raise ValueError(f"{name}: must be >= 0, got {iterations}")
    return int(iterations)
