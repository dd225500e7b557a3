"""Checks shared by the PSF tools: a shape argument, a PSF normalised to sum 1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _shape(shape: Sequence[int], name: str = "shape") -> tuple[int, ...]:
    shape = tuple(int(n) for n in np.atleast_1d(shape))
    if not shape or any(n < 1 for n in shape):
        raise ValueError(f"{name}: must be positive integers, got {shape}")
    return shape


def normalize(psf: np.ndarray) -> np.ndarray:
    """The PSF divided by its sum, float32.

    Raises
    ------
    ValueError
        Negative values, NaN/inf, or a sum <= 0.
    """
    p = np.asarray(psf, dtype=np.float64)
    if not np.isfinite(p).all():
        raise ValueError("psf: contains NaN or infinite values")
    if (p < 0).any():
        raise ValueError("psf: has negative values; use background_subtract(..., clip) first")
    total = p.sum()
    if total <= 0:
        raise ValueError(f"psf: sum must be positive, got {total:g}")
    return (p / total).astype(np.float32)
