"""PSF resampling to another voxel size (:func:`rlcore.psf.resample`): the glue around
scipy.ndimage's cubic-spline interpolation, one axis at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.ndimage as ndi

__all__ = ["resample", "check_voxel_size", "resampled_shape", "SPLINE_ORDER"]

#: the order of the interpolating spline (scipy.ndimage.map_coordinates)
SPLINE_ORDER = 5

#: sub-samples per input voxel of an averaged axis (the midpoint rule over its box)
_SUBSAMPLES = 8


def check_voxel_size(value: Any, ndim: int, name: str) -> tuple[float, ...]:
    """``value`` as ``ndim`` positive finite floats (microns per axis).

    Raises
    ------
    ValueError
        Not a sequence of ``ndim`` positive, finite numbers.
    """
    axes = "(z, y, x)" if ndim == 3 else "(y, x)" if ndim == 2 else f"{ndim} axes"
    fix = f"pass one voxel size per axis, {axes}, in microns"
    try:
        sizes = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not a sequence of numbers, got {value!r}; {fix}") from None
    if sizes.ndim != 1 or sizes.size != ndim:
        raise ValueError(f"{name}: {sizes.size} value(s) {np.ravel(sizes).tolist()} for a "
                         f"{ndim}-D PSF; {fix}")
    if not (np.isfinite(sizes).all() and (sizes > 0).all()):
        raise ValueError(f"{name}: must be positive and finite, got {sizes.tolist()}; {fix}")
    return tuple(float(s) for s in sizes)


def resampled_shape(shape: Sequence[int], from_voxel_size: Sequence[float],
                    to_voxel_size: Sequence[float]) -> tuple[int, ...]:
    """The default output shape of :func:`resample`: per axis, the odd length ``m`` with
    ``(m - 1) * to`` nearest ``(n - 1) * from`` (the same physical extent, the centre on
    voxel ``m // 2``; an integer ratio there and back gives the shape back); an axis
    whose voxel size does not change keeps its length."""
    out = []
    for n, a, b in zip(shape, from_voxel_size, to_voxel_size):
        out.append(int(n) if a == b else
                   2 * int(math.floor((n - 1) / 2 * a / b + 0.5)) + 1)
    return tuple(out)


def _operator(n: int, m: int, ratio: float, average: bool) -> np.ndarray:
    """The ``(m, n)`` matrix of one axis: input voxel ``n // 2`` onto output voxel
    ``m // 2``, output voxel ``j`` at input position ``n // 2 + (j - m // 2) * ratio``,
    where the spline through the input (scipy.ndimage.map_coordinates, order
    :data:`SPLINE_ORDER`, prefiltered, edges extended) is sampled; with ``average`` and
    ``ratio > 1``, averaged over a box of ``sqrt(ratio**2 - 1)`` input voxels (a pixel
    integral over the new width from one over the old: box widths add in quadrature,
    their variances ``w**2 / 12`` add)."""
    if ratio == 1 and m == n:
        return np.eye(n)
    x = n // 2 + (np.arange(m) - m // 2) * ratio
    k = 1
    if average and ratio > 1:
        width = math.sqrt(ratio * ratio - 1)
        k = max(1, math.ceil(width * _SUBSAMPLES))
        sub = ((np.arange(k) + 0.5) / k - 0.5) * width
        x = (x[:, None] + sub[None, :]).ravel()
    columns = []
    for i in range(n):
        unit = np.zeros(n)
        unit[i] = 1.0
        columns.append(ndi.map_coordinates(unit, x[None, :], order=SPLINE_ORDER,
                                           mode="nearest", prefilter=True))
    return np.stack(columns, axis=1).reshape(m, k, n).mean(axis=1)


def _average_axes(average: Any, ndim: int) -> set[int]:
    """The axes to average when coarsened (default: the lateral ones, Y and X)."""
    if average is None:
        return {ndim - 2, ndim - 1}
    try:
        axes = {int(a) for a in np.atleast_1d(np.asarray(average, dtype=np.int64))}
    except (TypeError, ValueError):
        raise ValueError(f"average: axes (ints) expected, got {average!r}") from None
    if any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"average: axes of a {ndim}-D PSF expected, got {average!r}")
    return {a % ndim for a in axes}


def _checked_psf(psf: Any) -> np.ndarray:
    """The PSF as a float64 NumPy array, checked: 2-D or 3-D, real, finite, sum > 0."""
    p = np.asarray(psf)
    if p.dtype.kind not in "biuf" or p.dtype.kind == "b":
        raise TypeError(f"psf: a real numeric array expected, got dtype {p.dtype}")
    if p.ndim not in (2, 3):
        raise ValueError(f"psf: a 2-D (Y, X) or 3-D (Z, Y, X) PSF expected, got {p.ndim}-D "
                         f"shape {p.shape}; resample each PSF of a stack on its own")
    if p.size == 0:
        raise ValueError(f"psf: empty, shape {p.shape}")
    p = p.astype(np.float64)
    if not np.isfinite(p).all():
        raise ValueError("psf: contains NaN or infinite values; pass a finite PSF")
    total = float(p.sum())
    if total <= 0:
        raise ValueError(f"psf: sum must be positive, got {total:g}; pass a non-negative "
                         "PSF (rlcore.psf.background_subtract)")
    return p


def resample(psf: Any, from_voxel_size: Sequence[float], to_voxel_size: Sequence[float],
             *, shape: Sequence[int] | None = None, average: Any = None) -> np.ndarray:
    """The implementation of :func:`rlcore.psf.resample` (its docstring)."""
    p = _checked_psf(psf)
    a = check_voxel_size(from_voxel_size, p.ndim, "from_voxel_size")
    b = check_voxel_size(to_voxel_size, p.ndim, "to_voxel_size")
    averaged = _average_axes(average, p.ndim)
    if shape is None:
        out_shape = resampled_shape(p.shape, a, b)
    else:
        out_shape = tuple(int(k) for k in np.atleast_1d(shape))
        if len(out_shape) != p.ndim or any(k < 1 for k in out_shape):
            raise ValueError(f"shape: {p.ndim} positive lengths expected, got {shape!r}; "
                             "pass None for the same physical extent")
    out = p
    for axis, (n, m, fa, fb) in enumerate(zip(p.shape, out_shape, a, b)):
        w = _operator(n, m, fb / fa, axis in averaged)
        out = np.moveaxis(np.tensordot(w, out, axes=([1], [axis])), 0, axis)
    np.clip(out, 0, None, out=out)  # the spline's ringing below 0
    kept = float(out.sum())
    if kept > 0:
        out *= float(p.sum()) / kept
    return np.ascontiguousarray(out, dtype=np.float32)
