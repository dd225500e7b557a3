"""Centring and cropping a PSF: its centre moved onto voxel ``n // 2`` (whole voxels,
or sub-voxel by a quintic B-spline shift), a measured PSF's background, pedestal and
centre handled in one pass (:func:`centered`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from rlcore._psfmath import (
    _real,
    border_background,
    center_of,
    foreground,
    support,
)
from rlcore.psf._common import _shape, normalize


def _bspline5(x: np.ndarray) -> np.ndarray:
    """The quintic B-spline at ``x``."""
    a = np.abs(x)
    out = np.where(a < 3, (3 - np.minimum(a, 3)) ** 5, 0.0)
    out -= np.where(a < 2, 6 * (2 - np.minimum(a, 2)) ** 5, 0.0)
    out += np.where(a < 1, 15 * (1 - np.minimum(a, 1)) ** 5, 0.0)
    return out / 120


def _spline_shift(a: np.ndarray, fraction: Sequence[float]) -> np.ndarray:
    """``a`` moved by ``fraction`` (|f| <= 0.5) voxels per axis by quintic-spline
    interpolation, one axis at a time (separable, so 3 x 6 taps a voxel rather than 6^3
    as ``scipy.ndimage.shift``), the faces' values extended outwards."""
    out = a
    taps = np.arange(-3, 4, dtype=np.float64)
    for axis, f in enumerate(fraction):
        if f:
            coefficients = ndi.spline_filter1d(out, order=5, axis=axis, mode="nearest")
            out = ndi.correlate1d(coefficients, _bspline5(-f - taps), axis=axis,
                                  mode="nearest")
    return out


def _shift(p: np.ndarray, shift: Sequence[float], fill: float = 0.0) -> np.ndarray:
    """``p`` (float64, >= 0) moved by ``shift`` voxels per axis without wrapping anything
    around the array: the whole-voxel part by copying (what leaves the array is dropped,
    what enters is ``fill``: the background left, 0 once removed), the remaining fraction
    (at most half a voxel) by quintic-spline interpolation (:func:`_spline_shift`, the
    faces' values extended), negative ringing clipped to 0; the whole-voxel-shifted
    array's sum kept. A spline is local, where a Fourier shift of the zero-padded array
    rings across it from wherever light reaches a face: the centre (:func:`center_of`)
    follows a sub-voxel shift to 0.010 voxel on the LLS bead (0.017 with a Fourier
    shift) and to 0.043 on a PSF distilled over the whole confocal bead image (0.086)."""
    whole = [int(np.floor(s + 0.5)) for s in shift]
    out = np.full_like(p, fill)
    src = tuple(slice(max(0, -k), min(n, n - k)) for k, n in zip(whole, p.shape))
    dst = tuple(slice(max(0, k), min(n, n + k)) for k, n in zip(whole, p.shape))
    if all(s.start < s.stop for s in src):
        out[dst] = p[src]
    fraction = [float(s - k) for s, k in zip(shift, whole)]
    total = out.sum()
    if not any(fraction) or total <= 0:
        return out
    moved = np.clip(_spline_shift(out, fraction), 0, None)
    return moved * (total / moved.sum()) if moved.sum() > 0 else out


#: :func:`centered` refines its shift until the centre it leaves is this close to
#: ``n // 2`` (what a second pass measures), voxels
REFINE_TOLERANCE = 0.01


def _to_centre(clean: np.ndarray, subvoxel: bool, measure: Callable[[np.ndarray], Any],
               first: Sequence[float] | None = None, fill: float = 0.0
               ) -> tuple[np.ndarray, tuple[float, ...], int]:
    """``clean`` moved (:func:`_shift`, entering voxels ``fill``) so that ``measure`` of
    the result is at ``n // 2``: one shift to the centre measured on ``clean`` (``first``
    when given), then (``subvoxel``) up to 4 corrections by what the result still
    measures. Returns the result, the total shift and the number of shifts made."""
    target = np.array([n // 2 for n in clean.shape], dtype=np.float64)
    shift = target - np.array(measure(clean) if first is None else first)
    if not subvoxel:
        shift = np.floor(shift + 0.5)
        return _shift(clean, shift, fill), tuple(float(s) for s in shift), 1
    out = _shift(clean, shift, fill)
    best = (np.inf, out, shift)
    for passes in range(1, 6):
        residual = target - np.array(measure(out))
        if np.abs(residual).max() < best[0]:
            best = (np.abs(residual).max(), out, shift)
        if best[0] <= REFINE_TOLERANCE or passes == 5:
            break
        shift = shift + residual
        out = _shift(clean, shift, fill)
    return best[1], tuple(float(s) for s in best[2]), passes


def center(psf: np.ndarray, subvoxel: bool = False) -> np.ndarray:
    """Move the PSF's centre onto voxel ``n // 2`` of each axis.

    Parameters
    ----------
    psf : ndarray, shape ``(Z, Y, X)`` (any number of axes)
        The PSF; background-subtracted when ``subvoxel`` (for a raw bead stack use
        :func:`centered`, which removes the background first). Not modified.
    subvoxel : bool, default False
        False: roll (periodically) by whole voxels so that the peak (found on a copy
        smoothed by a 1-voxel Gaussian, so that noise does not decide it) sits at
        ``n // 2``; no interpolation, the values and dtype are kept exactly. Meant for
        theoretical PSFs whose light is negligible at the array's faces: a roll wraps
        what leaves one face in at the other. True: instead, move the centre of the array
        as given (:func:`center_of` with ``background=0``: the centroid within a window
        around the peak, iterated to a fixed point) onto ``n // 2`` as :func:`centered`
        does (whole voxels by copying into zeros, so that nothing wraps around the array;
        the fraction by quintic-spline interpolation; refined until the result's centre
        is within :data:`REFINE_TOLERANCE` of ``n // 2``), negative ringing clipped to 0,
        the sum kept; float32 out. Use it for PSFs resampled or averaged off the voxel
        grid: the EPFL bars kernel (``flowdec_epfl/bars-25pct``, resized to 25%) has its
        centroid at (15.49, 31.63, 31.63) for the centre (16, 32, 32); centring it
        (with the whole-array centroid and a Fourier shift used before) lowered plain
        RL's NRMSE to the truth after 200 iterations from 0.672 to 0.548, and the
        residual of the forward model fitted to that data set from 1411 to 979
        (bench/results/variants.md).

    Returns
    -------
    ndarray, the PSF's shape
        The centred PSF (a new array).

    Raises
    ------
    TypeError
        ``subvoxel`` with a PSF that is not a real numeric array.
    ValueError
        ``subvoxel`` with NaN/inf values, negative values or a sum <= 0 (no centre).
    """
    p = np.asarray(psf)
    if subvoxel:
        q = normalize(_real(p)).astype(np.float64)  # checks numeric, finite, >= 0, sum > 0
        moved, _, _ = _to_centre(q, True, lambda a: center_of(a, background=0.0))
        return (moved * (float(np.sum(p, dtype=np.float64)) / moved.sum())).astype(np.float32)
    smooth = ndi.gaussian_filter(p.astype(np.float64), 1.0, mode="constant")
    peak = np.unravel_index(np.argmax(smooth), p.shape)
    shift = [n // 2 - int(c) for n, c in zip(p.shape, peak)]
    return np.roll(p, shift, axis=tuple(range(p.ndim)))


#: :func:`centered` moves a PSF whose centre (:func:`center_of`) is further than this
#: from voxel ``n // 2``, in voxels
CENTER_TOLERANCE = 0.05


def centered(
    psf: np.ndarray,
    *,
    background: float | None = None,
    subvoxel: bool = True,
    energy: float | None = None,
) -> tuple[np.ndarray, tuple[float, ...]]:
    """A user's PSF, a raw bead stack or a clean one, made ready for rlcore's ``n // 2``
    convention, as the CLI, napari and the RedLionfish compat do by default.

    Steps:

    1. Remove the background (:func:`foreground`): by default the border estimate of
       :func:`border_background` (the median of the array's face with the lowest
       median) plus 3 noise standard deviations; or the constant ``background``; then
       clip at 0.
    2. Find the centre (:func:`center_of`): the centroid of that light within a window
       of two full widths at half maximum around the peak, iterated to a fixed point, so
       that neither a pedestal, the noise nor a neighbouring bead pulls it.
    3. Move it onto ``n // 2`` without wrapping anything around the array: whole voxels
       by copying (what leaves the array is dropped, what enters is 0, or with
       ``background`` the level it leaves at the border), the
       remaining fraction by quintic-spline interpolation; negative ringing clipped to
       0, the sum kept. The shift is refined (up to 4 times) until the result's own
       centre, measured as a second pass would, is within :data:`REFINE_TOLERANCE` of
       ``n // 2``.
    4. Optionally crop to the support (``energy``): the box around ``n // 2`` holding
       that fraction of the light connected to the centre voxel (so that a bright camera
       row or plane, or noise, far from the bead does not widen it).

    One pass leaves the centre within 0.01 voxel of ``n // 2`` on every axis; without
    ``subvoxel``, within half a voxel (on the nearest voxel). A second pass finds it
    within :data:`CENTER_TOLERANCE` and returns its input unchanged, so the function is
    idempotent; on the four real PSFs of ``bench/psf_centring.py`` one pass leaves at
    most 0.009 voxel and the second moves 0. A PSF whose centre is already within
    :data:`CENTER_TOLERANCE` of ``n // 2`` is returned as given (its background kept)
    unless ``background`` or ``energy`` is passed. A bead deconvolved by the result
    comes back where the data have it (within 0.25 voxel: ``tests/test_centering.py``,
    ``tests/test_psf_real.py``).

    Parameters
    ----------
    psf : ndarray
        The PSF, any number of axes: a raw bead stack with its camera background, or a
        clean one. Not modified.
    background : float, optional
        The constant to remove first, in the PSF's units (e.g. a camera offset you
        know); nothing else is removed. Default: the border estimate (step 1).
    subvoxel : bool, default True
        Move the centre exactly onto ``n // 2``; False: by whole voxels only (onto the
        nearest voxel), so that the values are shifted, never interpolated.
    energy : float, optional
        Crop the result to the box around ``n // 2`` that holds this fraction of its
        light (:func:`support`: odd sizes, the centre voxel kept at the new ``n // 2``;
        e.g. :data:`SUPPORT_ENERGY`, 0.999). Default: no crop.

    Returns
    -------
    psf : ndarray
        The centred PSF: float32, >= 0, the input's shape unless cropped, its sum that
        of the light above the background; or the input itself, when already centred
        and neither ``background`` nor ``energy`` is passed.
    moved_by : tuple of float
        The shift applied, voxels per axis (zeros when none).

    Raises
    ------
    TypeError
        ``psf`` not a real numeric array, or ``background`` not a number.
    ValueError
        ``psf`` empty, with NaN/inf values or a sum <= 0; ``background`` not finite or
        at or above every voxel (pass a lower value); ``energy`` not a fraction in
        (0, 1].
    """
    p = np.asarray(psf)
    if energy is not None and (isinstance(energy, bool) or not isinstance(
            energy, (int, float, np.integer, np.floating)) or not 0 < energy <= 1):
        raise ValueError(f"energy: a fraction in (0, 1] of the PSF's light to crop to, or "
                         f"None for no crop, got {energy!r}")
    clean = foreground(p, background)
    first = center_of(clean)
    offset = np.array(first) - [n // 2 for n in p.shape]
    as_given = background is None and energy is None
    if np.abs(offset).max() <= CENTER_TOLERANCE:
        if as_given:
            return psf, (0.0,) * p.ndim
        out, moved = clean, (0.0,) * p.ndim
    else:
        # a given background may leave a pedestal: what enters the array is that, so that
        # the result's border, and its centre, still read it as background
        fill = 0.0 if background is None else border_background(clean).level
        out, moved, _ = _to_centre(clean, subvoxel, center_of, first, fill)
        if as_given and not any(moved):  # subvoxel=False, already on the nearest voxel
            return psf, moved
    if energy is not None:
        bead = _shift(_bead_mask(clean, first).astype(np.float64),
                      [np.floor(m + 0.5) for m in moved])
        bead = ndi.binary_dilation(bead > 0, iterations=1)  # and the fraction moved
        out = out[support(np.where(bead, out, 0.0), float(energy), background=0.0)]
    return out.astype(np.float32), moved


def _bead_mask(clean: np.ndarray, centre: Sequence[float]) -> np.ndarray:
    """The voxels of ``clean`` (light above the noise threshold, not yet interpolated)
    connected to the voxel nearest ``centre``, grown by one voxel so that a lobe one
    voxel off still counts: the bead, whose support :func:`centered` crops to. On the
    raw LLS bead, 10% of the light above the noise threshold lies away from the bead (a
    brighter first plane, hot columns, noise spikes), so that the box holding 99.9% of
    all of it is the whole array."""
    grown = ndi.binary_dilation(clean > 0, iterations=1)
    labels, _ = ndi.label(grown, structure=np.ones((3,) * clean.ndim, bool))
    at = tuple(min(n - 1, max(0, int(round(c)))) for c, n in zip(centre, clean.shape))
    return labels == labels[at] if labels[at] else grown


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
