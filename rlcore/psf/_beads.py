"""A PSF distilled from an image of sub-resolution beads: detection, then the beads
aligned and averaged."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.ndimage as ndi

from rlcore._psfmath import (
    background_subtract,
)
from rlcore.psf._centring import centered, crop
from rlcore.psf._common import _shape, normalize

#: a bead's peak must stand this many noise standard deviations above the background
BEAD_SIGNIFICANCE = 5.0


def _noise_sigma(b: np.ndarray) -> float:
    """Robust noise standard deviation: 1.4826 x the median absolute deviation; for
    quantised, mostly flat data (MAD 0) the spread of the voxels at or below the median."""
    med = float(np.median(b))
    mad = 1.4826 * float(np.median(np.abs(b - med)))
    if mad > 0:
        return mad
    low = b[b <= med]
    return float(np.sqrt(np.mean((low - med) ** 2))) if low.size else 0.0


def bead_threshold(beads: np.ndarray) -> float:
    """The automatic bead threshold: halfway between the median and the maximum, and at
    least :data:`BEAD_SIGNIFICANCE` noise standard deviations above the median (so that
    an image of noise alone has no "beads")."""
    b = np.asarray(beads, dtype=np.float64)
    med = float(np.median(b))
    return max((med + float(b.max())) / 2, med + BEAD_SIGNIFICANCE * _noise_sigma(b))


def detect_beads(beads: np.ndarray, *, threshold: float | None = None,
                 min_voxels: int = 8, margin: Sequence[int] | int = 0) -> np.ndarray:
    """Centroids ``(n, ndim)`` of the beads: connected components above ``threshold``
    (default: :func:`bead_threshold`) with at least ``min_voxels`` voxels, whose
    centroid lies at least ``margin`` voxels from every edge."""
    b = np.asarray(beads, dtype=np.float64)
    if threshold is None:
        threshold = bead_threshold(b)
    labels, count = ndi.label(b > threshold)
    if count == 0:
        return np.zeros((0, b.ndim))
    index = np.arange(1, count + 1)
    sizes = ndi.sum_labels(np.ones_like(b), labels, index)
    centroids = np.array(ndi.center_of_mass(b, labels, index)).reshape(count, b.ndim)
    m = np.broadcast_to(np.asarray(margin), (b.ndim,))
    keep = (sizes >= min_voxels) & np.all(
        (centroids >= m) & (centroids <= np.array(b.shape) - 1 - m), axis=1)
    return centroids[keep]


def distill(
    beads: np.ndarray,
    shape: Sequence[int] | None = None,
    *,
    threshold: float | None = None,
    min_voxels: int = 8,
    iterations: int = 30,
    background: float | None = None,
    backend: str = "auto",
    return_beads: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Distil a PSF from an image of sub-resolution beads (reverse deconvolution).

    The bead image is ``beads = points * PSF`` with ``points`` one voxel per bead, so RL
    with the roles swapped (the bead image as the image, the points image as the "PSF")
    estimates the PSF, centred at voxel ``n // 2`` of the image (rlcore's convention).
    Steps: subtract the background (median, or ``background``), detect the beads
    (:func:`detect_beads`), build the points image, run RL from a flat first estimate,
    crop to ``shape`` around the centre, subtract the crop's own border background,
    normalise to sum 1. As in the
    "PSF distilling" notebook of the bio-image analysis community (R. Haase et al.).

    Parameters
    ----------
    beads : ndarray, shape (Z, Y, X)
        Image of isolated sub-resolution beads.
    shape : tuple of int, optional
        PSF shape in voxels (default: the image shape, cut to odd sizes).
    threshold : float, optional
        Bead detection threshold over the background, in image units. Default:
        :func:`bead_threshold` of the image (halfway to the maximum, and at least
        :data:`BEAD_SIGNIFICANCE` noise standard deviations).
    min_voxels : int, default 8
        Smallest bead, voxels above the threshold (:func:`detect_beads`).
    iterations : int, default 30
        RL iterations of the swapped deconvolution.
    background : float, optional
        Camera background of the bead image (default: its median).
    backend : str
        rlcore backend.
    return_beads : bool, default False
        Also return the centroids of the beads used, ``(n, ndim)`` voxels.

    Returns
    -------
    psf : ndarray, float32, ``shape``
        Non-negative, sum 1, its centre (:func:`center_of`: the windowed centroid)
        on voxel ``n // 2`` within 0.01 voxel (:func:`centered` with the background
        already removed, 0), so a deconvolution by it does not shift the result; the
        faces' own centring, with its border background estimate, moves it by less than
        0.1 voxel (0.063 on the confocal beads). (Its peak
        can lie voxels away on an asymmetric PSF: 2.2 in x for the confocal beads of
        ``bench/psf_centring.py``.)
    beads : ndarray, shape (n, ndim)
        Only with ``return_beads``.

    Raises
    ------
    ValueError
        No bead found (an image of noise has none: the message gives the threshold used
        and the noise level), or bad ``shape``.
    """
    from rlcore.api import deconvolve

    raw = np.asarray(beads, dtype=np.float32)
    bg = float(np.median(raw)) if background is None else float(background)
    b = np.clip(raw - np.float32(bg), 0, None)
    if threshold is None:
        threshold = bead_threshold(raw) - float(np.median(raw))
    centroids = detect_beads(b, threshold=threshold, min_voxels=min_voxels)
    if len(centroids) == 0:
        raise ValueError(
            f"beads: no bead found above threshold {threshold:g} over the background "
            f"(noise standard deviation {_noise_sigma(raw):.3g}); is it an image of beads? "
            "Pass a lower threshold or min_voxels")
    points = np.zeros(b.shape, np.float32)
    for c in np.round(centroids).astype(int):
        points[tuple(c)] += 1.0
    # a flat first estimate: RL is multiplicative, so the PSF can only grow where the
    # first estimate is non-zero, and the background-subtracted bead image is 0 at the
    # centre, where the PSF is estimated
    with warnings.catch_warnings():
        # the points image plays the PSF: its voxel n // 2 is the origin the estimate is
        # placed at, whatever its centroid, so the API's off-centre warning does not apply
        warnings.filterwarnings("ignore", message=r"psf: its centroid is", category=UserWarning)
        estimate = deconvolve(b, points, iterations, backend=backend, init="flat",
                              boundary="periodic")
    if shape is None:
        shape = tuple(n - (1 - n % 2) for n in b.shape)
    out = crop(estimate, _shape(shape))
    psf = normalize(centered(background_subtract(out), background=0.0)[0])
    return (psf, centroids) if return_beads else psf
