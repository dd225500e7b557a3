"""PSF measurements that lower modules need (the back projectors) without importing
:mod:`rlcore.psf`, which sits above the API (it distills PSFs by deconvolving)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["fwhm"]


def fwhm(psf: np.ndarray, voxel_size: Sequence[float] | None = None) -> tuple[float, ...]:
    """Full width at half maximum along each axis through the peak, linearly interpolated;
    in microns when ``voxel_size`` is given, else in voxels."""
    p = np.asarray(psf, dtype=np.float64)
    peak = np.unravel_index(np.argmax(p), p.shape)
    half = p[peak] / 2
    out = []
    for axis in range(p.ndim):
        index = list(peak)
        index[axis] = slice(None)
        line = p[tuple(index)]
        i = peak[axis]
        left = i
        while left > 0 and line[left - 1] > half:
            left -= 1
        right = i
        while right < len(line) - 1 and line[right + 1] > half:
            right += 1
        lo = left - 1 + (half - line[left - 1]) / (line[left] - line[left - 1]) if left > 0 else 0.0
        hi = (right + (line[right] - half) / (line[right] - line[right + 1])
              if right < len(line) - 1 else float(len(line) - 1))
        width = hi - lo
        out.append(width * (voxel_size[axis] if voxel_size is not None else 1.0))
    return tuple(float(w) for w in out)
