"""Depth-variant PSFs: the checks of ``psf`` and ``psf_depths`` (K PSFs, each at its
depth in voxels along z) and each PSF's weight on a grid's planes.

The model is :class:`rlcore.iteration.StrataConvolution` (each plane's light spread by the
PSFs of the depths around it, weighed linearly; docs/depth-variant.md);
:class:`rlcore.deconvolver.Deconvolver` plans it from these.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from rlcore.iteration import strata_weights
from rlcore.validate import as_psf, to_numpy

__all__ = ["strata_ndim", "check_depths", "as_strata", "grid_weights"]


def strata_ndim(psf: Any) -> int:
    """Axes of one PSF of a strata stack (a sequence of K PSFs, or a ``(K, Z, Y, X)``
    array): 3, the only count a depth-variant PSF takes.

    Raises
    ------
    ValueError
        Any other count.
    """
    if isinstance(psf, (list, tuple)):
        ndim = int(np.ndim(to_numpy(psf[0], "psf"))) if psf else -1
        shape = f"a sequence of {len(psf)} PSFs of {ndim} axes"
    else:
        array = to_numpy(psf, "psf")
        ndim, shape = int(np.ndim(array)) - 1, f"an array of shape {tuple(np.shape(array))}"
    if ndim != 3:
        raise ValueError(f"psf: with psf_depths, a sequence of K PSFs of 3 axes (Z, Y, X) or "
                         f"a (K, Z, Y, X) array, got {shape}")
    return ndim


def check_depths(psf_depths: Any) -> tuple[float, ...]:
    """``psf_depths`` as a tuple of K >= 2 finite, strictly increasing floats.

    Raises
    ------
    TypeError, ValueError
        Not a 1-D sequence of real numbers; fewer than 2; not finite; not increasing.
    """
    if isinstance(psf_depths, (str, bytes)) or not hasattr(psf_depths, "__len__"):
        raise TypeError(f"psf_depths: must be a sequence of depths (voxels along z), one "
                        f"per PSF, got {psf_depths!r}")
    d = np.asarray(to_numpy(psf_depths, "psf_depths") if hasattr(psf_depths, "shape")
                   else list(psf_depths))
    if d.ndim != 1 or d.dtype.kind not in "iuf":
        raise TypeError(f"psf_depths: must be a 1-D sequence of real numbers (voxels along "
                        f"z), got {psf_depths!r}")
    if len(d) < 2:
        raise ValueError(f"psf_depths: needs at least 2 depths (one PSF each), got {len(d)}; "
                         "for one PSF pass it alone, without psf_depths")
    d = d.astype(np.float64)
    if not np.all(np.isfinite(d)):
        raise ValueError(f"psf_depths: must be finite, got {d.tolist()}")
    if not np.all(np.diff(d) > 0):
        raise ValueError(f"psf_depths: must be strictly increasing, got {d.tolist()}; sort "
                         "the depths (and their PSFs with them), without repeats")
    return tuple(float(v) for v in d)


def as_strata(psf: Any, psf_depths: Any, shape: tuple[int, ...]) -> tuple[np.ndarray,
                                                                          tuple[float, ...]]:
    """The checked PSFs of a depth-variant run: a ``(K, *psf_shape)`` stack, each PSF as
    :func:`rlcore.validate.as_psf` makes it (normalised, cropped to ``shape``; its centring
    not warned of: voxel ``n // 2`` is the source's depth, and light off it, such as a deep
    PSF's focal shift, is part of the model), and the checked depths (:func:`check_depths`).

    Raises
    ------
    TypeError, ValueError
        Bad depths; ``psf`` not K PSFs of one shape with ``len(shape)`` axes each.
    """
    depths = check_depths(psf_depths)
    if len(shape) != 3:
        raise ValueError(f"image: psf_depths takes 3-D images (Z, Y, X), depth along z; got "
                         f"shape {tuple(shape)}")
    if isinstance(psf, (list, tuple)):
        parts = list(psf)
    elif hasattr(psf, "shape") or isinstance(psf, np.ndarray):
        stack = to_numpy(psf, "psf")
        if stack.ndim != len(shape) + 1:
            raise ValueError(
                "psf: with psf_depths, a sequence of K PSFs or a (K, Z, Y, X) array, got an "
                f"array of shape {tuple(stack.shape)}")
        parts = list(stack)
    else:
        raise TypeError("psf: with psf_depths, a sequence of K PSFs or a (K, Z, Y, X) array, "
                        f"got {type(psf).__name__}")
    if len(parts) != len(depths):
        raise ValueError(f"psf: {len(parts)} PSFs for {len(depths)} psf_depths; pass one PSF "
                         "per depth, in the depths' order")
    shapes = {tuple(np.shape(p)) for p in parts}
    if len(shapes) > 1:
        raise ValueError(f"psf: the PSFs at the depths differ in shape ({sorted(shapes)}); "
                         "give them one shape (pad, or rlcore.psf.crop)")
    if len(next(iter(shapes))) != len(shape):
        raise ValueError(f"psf: each PSF of psf_depths needs 3 axes (Z, Y, X), got shape "
                         f"{next(iter(shapes))}")
    with warnings.catch_warnings():  # off-centre light (a focal shift) is in the model
        warnings.filterwarnings("ignore", message=r"psf\[\d+\]: its centroid is")
        return np.stack([as_psf(p, shape, name=f"psf[{k}]") for k, p in enumerate(parts)]), \
            depths


def grid_weights(depths: tuple[float, ...], grid: Any) -> np.ndarray:
    """``w_k`` on the grid's planes (axis 0), ``(K, grid.shape[0])``: each plane weighed at
    its image plane's depth; a padding plane (beyond the image on a padded grid) at the
    depth of the image's edge plane nearest to it around the periodic grid, so light
    entering the first plane from the padding is modelled with the first plane's PSF
    and the last's with the last's, whatever the grid's length (a whole volume and a
    block of it then model their common first plane alike)."""
    size, n, o = grid.shape[0], grid.image_shape[0], grid.offset[0]
    planes = np.arange(size) - o
    after = planes >= n  # padding past the last plane: nearer the last, or (around) the first
    before = planes < 0
    to_last = np.where(after, planes - (n - 1), size + planes - (n - 1))
    to_first = np.where(after, size - planes, -planes)
    pad = after | before
    planes = np.where(pad, np.where(to_first < to_last, 0, n - 1), planes)
    return strata_weights(depths, planes)
