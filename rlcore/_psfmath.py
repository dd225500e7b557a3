"""PSF measurements that lower modules need (the back projectors, the PSF checks)
without importing :mod:`rlcore.psf`, which sits above the API (it distills PSFs by
deconvolving)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.ndimage as ndi

__all__ = ["fwhm", "background_subtract", "foreground", "centroid_offset", "support",
           "CENTER_WARNING", "SUPPORT_ENERGY"]


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


def background_subtract(psf: np.ndarray, background: float | None = None,
                        border: int = 2, noise: float = 0.0) -> np.ndarray:
    """Subtract a constant background and clip at 0; float32.

    Parameters
    ----------
    psf : ndarray
        A measured PSF (bead) stack.
    background : float, optional
        The value to subtract. Default: the median of the outer ``border`` voxels of every
        face, plus ``noise`` robust standard deviations of them (1.4826 x their median
        absolute deviation).
    border : int, default 2
        Thickness in voxels of the shell the background is estimated from.
    noise : float, default 0
        How many noise standard deviations to remove above the median. With 0, the noise
        of a raw bead stack stays as a positive pedestal after clipping, which can hold
        most of the PSF's sum (84% for the LLS bead in ``../shared/data``); 3 removes it.
    """
    p = np.asarray(psf, dtype=np.float32)
    if background is None:
        shell = np.ones(p.shape, bool)
        shell[tuple(slice(border, n - border) for n in p.shape)] = False
        values = p[shell] if shell.any() else np.zeros(1, np.float32)
        median = float(np.median(values))
        sigma = 1.4826 * float(np.median(np.abs(values - median)))
        background = median + noise * sigma
    return np.clip(p - np.float32(background), 0, None)


#: the Python API warns when a PSF's centroid is further than this from ``n // 2``, voxels
CENTER_WARNING = 0.5


def foreground(psf: np.ndarray) -> np.ndarray:
    """The PSF's light above its background (:func:`background_subtract` with
    ``noise=3``), float64; the array clipped at 0 when nothing stands above it.

    Raises
    ------
    ValueError
        NaN/inf values or a sum <= 0.
    """
    p = np.asarray(psf, dtype=np.float64)
    if not np.isfinite(p).all():
        raise ValueError("psf: contains NaN or infinite values; pass a finite PSF")
    clean = background_subtract(p, noise=3.0).astype(np.float64)
    if clean.sum() <= 0:  # all at the background level: the array as given
        clean = np.clip(p, 0, None)
    if clean.sum() <= 0:
        raise ValueError("psf: sum must be positive; pass a non-negative PSF")
    return clean


def centroid_offset(psf: np.ndarray) -> tuple[float, ...]:
    """Where the PSF's centroid lies relative to voxel ``n // 2``, in voxels per axis
    (positive: towards higher indices), measured on its :func:`foreground` (so that a
    raw bead stack's pedestal does not pull the centroid to the middle of the array).

    Raises
    ------
    ValueError
        As :func:`foreground`.
    """
    clean = foreground(psf)
    return tuple(float(c) - n // 2 for c, n in zip(ndi.center_of_mass(clean), clean.shape))


#: the default fraction of a PSF's light (after background removal) its support holds.
#: Not applied automatically: cropping a PSF to it (``psf[support(psf)]``) shrank the
#: non-circulant grids of the edge-cut phantoms by up to 20% but raised the NRMSE after 50
#: iterations by up to 4.4% (bench/results/boundaries-half.md), so it is the caller's call
SUPPORT_ENERGY = 0.999


def support(psf: np.ndarray, energy: float = SUPPORT_ENERGY) -> tuple[slice, ...]:
    """The centred box, around voxel ``n // 2`` on each axis, that holds ``energy`` of the
    PSF's :func:`foreground`: per axis, the smallest half-width ``r`` whose slab
    ``[n // 2 - r, n // 2 + r]`` holds ``1 - (1 - energy) / ndim`` of the light (so the
    box holds at least ``energy``). An axis whose light reaches past the array on the
    short side of ``n // 2`` is kept whole. The box's centre voxel is the PSF's.

    Raises
    ------
    ValueError
        ``energy`` outside (0, 1], or as :func:`foreground`.
    """
    if not 0 < energy <= 1:
        raise ValueError(f"energy: a fraction in (0, 1], got {energy!r}")
    light = foreground(psf)
    total = light.sum()
    keep = 1 - (1 - energy) / light.ndim
    box = []
    for axis, n in enumerate(light.shape):
        profile = light.sum(axis=tuple(a for a in range(light.ndim) if a != axis)) / total
        c = n // 2
        reach = min(c, n - 1 - c)
        r = next((r for r in range(reach + 1) if profile[c - r:c + r + 1].sum() >= keep),
                 None)
        box.append(slice(0, n) if r is None or (n % 2 == 0 and r == reach and c > reach)
                   else slice(c - r, c + r + 1))
    return tuple(box)
