"""PSF tools: generate (Gaussian, widefield, confocal), tidy (centre, crop, normalise,
background), measure (FWHM), and distil a PSF from an image of sub-resolution beads.

Conventions: arrays are ``(Z, Y, X)``; the PSF centre is voxel ``n // 2`` on each axis;
voxel sizes and wavelengths are in microns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from rlcore._psfmath import (  # noqa: F401 (public here)
    CENTER_WARNING,
    SUPPORT_ENERGY,
    background_subtract,
    centroid_offset,
    foreground,
    fwhm,
    support,
)

__all__ = [
    "gaussian", "widefield", "confocal", "center", "crop", "normalize",
    "background_subtract", "fwhm", "detect_beads", "bead_threshold", "distill",
    "centroid_offset", "centered", "foreground", "support",
]


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


def gaussian(shape: Sequence[int], sigma: float | Sequence[float]) -> np.ndarray:
    """A sampled Gaussian PSF, centre voxel ``n // 2``, sum 1.

    Parameters
    ----------
    shape : tuple of int
        Output shape in voxels, e.g. ``(Z, Y, X)``.
    sigma : float or tuple of float
        Standard deviation per axis, in voxels (> 0).

    Returns
    -------
    ndarray, float32, ``shape``

    Raises
    ------
    ValueError
        Non-positive shape or sigma, or a sigma count other than 1 or one per axis.
    """
    shape = _shape(shape)
    given = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    if given.ndim != 1 or given.size not in (1, len(shape)):
        raise ValueError(f"sigma: give one value or one per axis ({len(shape)}), got "
                         f"{given.size}: {given.tolist()}")
    sig = np.broadcast_to(given, (len(shape),))
    if not (np.isfinite(sig).all() and (sig > 0).all()):
        raise ValueError(f"sigma: must be positive, got {sigma}")
    g = np.ones((), np.float64)
    for axis, (n, s) in enumerate(zip(shape, sig)):
        profile = np.exp(-0.5 * ((np.arange(n) - n // 2) / s) ** 2)
        g = np.multiply.outer(g, profile) if axis else profile
    return normalize(g)


def _optics(na: float, wavelength: float, ni: float, voxel_size: Sequence[float]) -> None:
    if not 0 < na < ni:
        raise ValueError(f"na: must be in (0, ni={ni}), got {na}")
    if not 0.1 < wavelength < 2:
        raise ValueError(f"wavelength: in microns, expected 0.1..2, got {wavelength}")
    if len(voxel_size) != 3 or min(voxel_size) <= 0:
        raise ValueError(f"voxel_size: (z, y, x) in microns, positive, got {voxel_size}")


def widefield(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    *,
    na: float,
    wavelength: float,
    ni: float = 1.515,
    ns: float | None = None,
    model: str = "vectorial",
) -> np.ndarray:
    """Theoretical widefield PSF (Gibson-Lanni / vectorial model, through ``psfmodels``).

    Parameters
    ----------
    shape : (Z, Y, X)
        Output shape in voxels; Y and X must be equal and odd-sized shapes are preferred.
    voxel_size : (z, y, x)
        Voxel size in microns (y must equal x).
    na : float
        Numerical aperture.
    wavelength : float
        Emission wavelength in microns.
    ni : float, default 1.515
        Refractive index of the immersion medium.
    ns : float, optional
        Refractive index of the sample (default: ``ni``, no spherical aberration).
    model : {"vectorial", "scalar", "gaussian"}
        psfmodels' model (Aguet et al. 2009 vectorial; Gibson & Lanni scalar).

    Returns
    -------
    ndarray, float32, ``shape``: centre voxel ``n // 2``, sum 1.

    Raises
    ------
    ImportError
        psfmodels is not installed (``pip install 'rlcore[psf]'``).
    ValueError
        Inconsistent shape, voxel size or optics.
    """
    psfmodels = _psfmodels()
    shape = _shape(shape)
    _optics(na, wavelength, ni, voxel_size)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"shape: (Z, Y, X) with Y == X expected, got {shape}")
    if abs(voxel_size[1] - voxel_size[2]) > 1e-9:
        raise ValueError(f"voxel_size: y and x must be equal, got {voxel_size}")
    psf = psfmodels.make_psf(shape[0], shape[1], dxy=voxel_size[2], dz=voxel_size[0],
                             NA=na, wvl=wavelength, ni=ni, ni0=ni, ns=ns or ni, model=model)
    return center(normalize(psf))


def confocal(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    *,
    na: float,
    excitation: float,
    emission: float,
    ni: float = 1.515,
    ns: float | None = None,
    pinhole_au: float = 1.0,
) -> np.ndarray:
    """Theoretical confocal PSF (excitation x pinhole-filtered emission, ``psfmodels``).

    Parameters are those of :func:`widefield`, with excitation and emission wavelengths in
    microns and the pinhole diameter in Airy units.

    Returns
    -------
    ndarray, float32, ``shape``: centre voxel ``n // 2``, sum 1.

    Raises
    ------
    ImportError, ValueError
        As :func:`widefield`.
    """
    psfmodels = _psfmodels()
    shape = _shape(shape)
    _optics(na, emission, ni, voxel_size)
    psf = psfmodels.confocal_psf(shape[0], shape[1], dxy=voxel_size[2], dz=voxel_size[0],
                                 NA=na, ex_wvl=excitation, em_wvl=emission, ni=ni, ni0=ni,
                                 ns=ns or ni, pinhole_au=pinhole_au)
    return center(normalize(psf))


def center(psf: np.ndarray, subvoxel: bool = False) -> np.ndarray:
    """Move the PSF's centre onto voxel ``n // 2`` of each axis.

    Parameters
    ----------
    psf : ndarray, shape ``(Z, Y, X)`` (any number of axes)
        The PSF; background-subtracted when ``subvoxel`` (a pedestal pulls the centroid
        towards the middle of the array).
    subvoxel : bool, default False
        False: roll by whole voxels so that the peak (found on a copy smoothed by a 1-voxel
        Gaussian, so that noise does not decide it) sits at ``n // 2``; no interpolation,
        the values and dtype are kept exactly. True: instead, move the centroid (centre of
        mass of the array as given) onto ``n // 2`` by one Fourier shift
        (``scipy.ndimage.fourier_shift``; exact for a band-limited PSF sampled at or above
        Nyquist, periodic over the array), negative ringing clipped to 0 and the sum kept;
        float32 out. Convolution by a centroid-centred PSF does not move an object's
        centre of mass. For a PSF whose tails reach the faces of its array, the centroid
        depends on the crop, and after clipping it lands within a few tenths of a voxel
        of ``n // 2`` (0.45 in z for the kernel below). Use it for PSFs
        resampled or averaged off the voxel grid: the EPFL bars kernel
        (``flowdec_epfl/bars-25pct``, resized to 25%) has its centroid at
        (15.49, 31.63, 31.63) for the centre (16, 32, 32); centring it lowers plain RL's
        NRMSE to the truth after 200 iterations from 0.672 to 0.548, and the residual of
        the forward model fitted to that data set from 1411 to 979
        (bench/results/variants.md).

    Returns
    -------
    ndarray, the PSF's shape
        The centred PSF (a new array).

    Raises
    ------
    ValueError
        ``subvoxel`` with NaN/inf values, negative values or a sum <= 0 (no centroid).
    """
    p = np.asarray(psf)
    if subvoxel:
        q = normalize(p).astype(np.float64)  # checks finite, >= 0, sum > 0
        offset = [n // 2 - c for n, c in zip(p.shape, ndi.center_of_mass(q))]
        moved = np.fft.ifftn(ndi.fourier_shift(np.fft.fftn(q), offset)).real
        moved = np.clip(moved, 0, None)
        return (moved * (float(np.sum(p, dtype=np.float64)) / moved.sum())).astype(np.float32)
    smooth = ndi.gaussian_filter(p.astype(np.float64), 1.0, mode="constant")
    peak = np.unravel_index(np.argmax(smooth), p.shape)
    shift = [n // 2 - int(c) for n, c in zip(p.shape, peak)]
    return np.roll(p, shift, axis=tuple(range(p.ndim)))


#: the faces (CLI, napari, RedLionfish compat) move a PSF whose centroid is further than
#: this from voxel ``n // 2``, in voxels
CENTER_TOLERANCE = 0.05


def centered(psf: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    """A user's PSF made ready for rlcore's ``n // 2`` convention, as the CLI, napari and
    the RedLionfish compat do by default: when its centroid (:func:`centroid_offset`) is
    more than :data:`CENTER_TOLERANCE` voxel from ``n // 2``, its background is removed
    (:func:`foreground`) and it is moved there by a sub-voxel
    Fourier shift (:func:`center` with ``subvoxel=True``); otherwise it is returned as
    given. Deconvolution by a centroid-centred PSF does not move objects: a bead comes
    back where it was imaged (within 0.25 voxel, ``tests/test_centering.py``), whether the
    PSF array peaks at ``n // 2``, at ``(n - 1) // 2`` or voxels away.

    Returns
    -------
    psf : ndarray
        The centred PSF (float32), or the input itself when already centred.
    moved_by : tuple of float
        The shift applied, voxels per axis (zeros when none).

    Raises
    ------
    ValueError
        As :func:`centroid_offset`.
    """
    offset = centroid_offset(psf)
    if max(abs(o) for o in offset) <= CENTER_TOLERANCE:
        return psf, (0.0,) * len(offset)
    moved = center(foreground(psf), subvoxel=True)
    return moved, tuple(-o for o in offset)


def crop(psf: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Centre-crop to ``shape`` keeping voxel ``n // 2`` at the new ``n // 2``.

    Raises
    ------
    ValueError
        ``shape`` larger than the PSF on some axis.
    """
    shape = _shape(shape)
    p = np.asarray(psf)
    if len(shape) != p.ndim or any(k > n for k, n in zip(shape, p.shape)):
        raise ValueError(f"shape: {shape} must not exceed the PSF's {p.shape}")
    return p[tuple(slice(n // 2 - k // 2, n // 2 - k // 2 + k) for n, k in zip(p.shape, shape))]


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
        Non-negative, sum 1, centroid at voxel ``n // 2``.
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
    estimate = deconvolve(b, points, iterations, backend=backend, init="flat",
                          boundary="periodic")
    if shape is None:
        shape = tuple(n - (1 - n % 2) for n in b.shape)
    out = crop(estimate, _shape(shape))
    psf = normalize(center(background_subtract(out)))
    return (psf, centroids) if return_beads else psf


def _psfmodels() -> Any:
    try:
        import psfmodels
    except ImportError as exc:
        raise ImportError("theoretical PSFs need psfmodels: pip install 'rlcore[psf]'") from exc
    return psfmodels
