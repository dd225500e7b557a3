"""The image's background level (camera offset plus any constant pedestal), estimated from
the data: ``offset="auto"`` in :func:`rlcore.deconvolve`, ``--background auto`` on the
command line (pycudadecon offers the same option).

The estimate is the *mode* of the darker half of the voxel values, by the half-sample mode
of Bickel & Frühwirth (2006): the densest half of the sorted values, halved again until
two or three remain. Where a constant region is present (the pad wedges of deskewed
light-sheet data, a camera's masked rows) it is that value; otherwise it is the peak of
the dark voxels' distribution (the camera offset plus the sample's dimmest background),
which the noise spreads symmetrically around. The mean or a low percentile would be
pulled up by the signal or down by the read noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcore import _arrays

__all__ = ["estimate", "half_sample_mode"]

#: values the estimate reads at most (a regular subsample of larger images)
SAMPLE = 1 << 21


def half_sample_mode(values: np.ndarray) -> float:
    """The half-sample mode of ``values`` (1-D, finite): Bickel & Frühwirth, "On a fast,
    robust estimator of the mode", Comput. Stat. Data Anal. 50 (2006) 3500-3530.

    Raises
    ------
    ValueError
        ``values`` is empty.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        raise ValueError("values: empty; the mode needs at least one value")
    while x.size > 3:
        half = (x.size + 1) // 2
        widths = x[half - 1:] - x[:x.size - half + 1]
        start = int(np.argmin(widths))
        x = x[start:start + half]
    if x.size == 3:  # the closer pair's mean, or the middle value when equidistant
        low, high = x[1] - x[0], x[2] - x[1]
        return float(x[1] if low == high else (x[:2].mean() if low < high else x[1:].mean()))
    return float(x.mean())


def _sample(image: Any) -> np.ndarray:
    """At most :data:`SAMPLE` values of ``image`` as float64 on the host, on a regular
    grid of voxels (every ``s``-th along each axis)."""
    shape = tuple(int(n) for n in image.shape)
    size = int(np.prod(shape)) if shape else 1
    step = max(1, int(np.ceil((size / SAMPLE) ** (1.0 / max(1, len(shape))))))
    part = image[tuple(slice(None, None, step) for _ in shape)] if shape else image
    kind = _arrays.kind(part)
    if kind == "dask":
        part = part.compute()
    elif kind == "cupy":
        part = part.get()
    elif kind == "array_api":
        part = np.asarray(part)
    return np.asarray(part, dtype=np.float64).ravel()


def estimate(image: Any) -> float:
    """The background level of ``image``, in its units (see the module docstring).

    Parameters
    ----------
    image : array, any shape
        NumPy, CuPy, array-API or Dask (a regular subsample of at most :data:`SAMPLE`
        voxels is read).

    Returns
    -------
    float
        The half-sample mode of the values at or below the median (finite values only).

    Raises
    ------
    ValueError
        The image is empty or has no finite value.

    Examples
    --------
    >>> import numpy as np
    >>> from rlcore.background import estimate
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(100, 3, (8, 64, 64)); image[:, 20:40, 20:40] += 500
    >>> round(estimate(image))
    100
    """
    values = _sample(image)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("image: no finite value to estimate a background from")
    dark = values[values <= np.median(values)]
    return half_sample_mode(dark)
