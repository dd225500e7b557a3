"""PSF measurements that lower modules need (the back projectors, the PSF checks)
without importing :mod:`rlcore.psf`, which sits above the API (it distills PSFs by
deconvolving)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.ndimage as ndi

__all__ = ["fwhm", "Background", "border_background", "background_subtract", "foreground",
           "center_of", "centroid_offset", "support", "CENTER_WARNING", "FOREGROUND_NOISE",
           "SUPPORT_ENERGY", "WINDOW_FWHM", "WINDOW_MIN"]


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


class Background(NamedTuple):
    """A PSF stack's background, in the PSF's units (camera counts for a raw bead stack).

    Attributes
    ----------
    level : float
        The flat light around the bead (camera offset plus any diffuse light).
    noise : float
        The robust standard deviation of that light, >= 0.
    """

    level: float
    noise: float


def _real(psf: np.ndarray, name: str = "psf") -> np.ndarray:
    """A float64 copy of a real, finite, non-empty array; else a clear exception."""
    p = np.asarray(psf)
    if p.dtype.kind not in "biuf":
        raise TypeError(f"{name}: must be a real numeric array (a PSF's intensities), got "
                        f"dtype {p.dtype}")
    if p.ndim == 0 or p.size == 0:
        raise ValueError(f"{name}: must be an array with at least one axis and one voxel, "
                         f"got shape {p.shape}")
    p = p.astype(np.float64)
    if not np.isfinite(p).all():
        raise ValueError(f"{name}: contains NaN or infinite values; pass a finite PSF")
    return p


def border_background(psf: np.ndarray, border: int = 2) -> Background:
    """The background of a PSF stack measured on its border, not on the whole array.

    The array's outer shell is cut into its ``2 * ndim`` faces (slabs ``border`` voxels
    thick) and the face with the lowest median is taken, so that a face that the bead's
    tails, a neighbouring bead or a hot camera row or column reaches cannot raise the
    level: its median is the level. The noise is the larger of two robust standard
    deviations: the face's own, on the side of the level that holds no bead light (the
    level minus the face's 15.87th percentile; when 5% or more of the face sits at its
    minimum, as in a stack background-subtracted and clipped at 0 or 8-bit data clipped at
    0, whose lower side is cut, the 84.13th percentile minus the level), and the spread of
    the whole border about the level (1.4826 x the median absolute difference), which also
    holds how much the background varies from face to face. A face that is mostly 0 (a
    PSF already cleaned) gives ``(0, 0)``. This is rlcore's own rule, not a published
    estimator.

    On the raw LLS bead of ``../shared/data`` (camera offset about 100, median 142) the face
    medians are 140-162 counts (the x faces hold hot columns, the first z plane is
    brighter) and the planes away from the bead 140-143: the level is 140 and the noise
    11.9 (the face's own 10.0), where the whole shell's median, used before, was 147. On
    ``PSF_RFI_8bit.tif``, whose light reaches every face, 6 and 7.4 (the face's own 4.0).

    Parameters
    ----------
    psf : ndarray
        A measured PSF (bead) stack, any number of axes, in camera counts or any units.
    border : int, default 2
        Thickness of the faces in voxels (>= 1; a face is at most the whole axis).

    Returns
    -------
    Background
        ``(level, noise)`` in the PSF's units.

    Raises
    ------
    TypeError
        ``psf`` not a real numeric array, or ``border`` not an int.
    ValueError
        ``psf`` empty or with NaN/inf values, or ``border`` < 1.
    """
    p = _real(psf)
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)):
        raise TypeError(f"border: must be an int (voxels), got {border!r}")
    if border < 1:
        raise ValueError(f"border: must be >= 1 voxel, got {border}")
    faces = []
    for axis, n in enumerate(p.shape):
        b = min(int(border), n)
        for part in (slice(0, b), slice(n - b, n)):
            index = [slice(None)] * p.ndim
            index[axis] = part
            faces.append(p[tuple(index)].ravel())
    values = min(faces, key=lambda f: (float(np.median(f)), -f.size))
    low, level, high = (float(q) for q in np.percentile(values, (15.87, 50.0, 84.13)))
    censored = np.count_nonzero(values == values.min()) >= 0.05 * values.size
    noise = (high - level) if censored else (level - low)
    spread = 1.4826 * float(np.median(np.abs(np.concatenate(faces) - level)))
    return Background(level, max(noise, spread))


def background_subtract(psf: np.ndarray, background: float | None = None,
                        border: int = 2, noise: float = 0.0) -> np.ndarray:
    """Subtract a constant background and clip at 0; float32.

    Parameters
    ----------
    psf : ndarray
        A measured PSF (bead) stack.
    background : float, optional
        The value to subtract, in the PSF's units. Default: :func:`border_background`'s
        level plus ``noise`` times its noise.
    border : int, default 2
        Thickness in voxels of the faces the background is estimated from.
    noise : float, default 0
        How many noise standard deviations to remove above the level. With 0, the noise
        of a raw bead stack stays as a positive pedestal after clipping, which can hold
        most of the PSF's sum (84% for the LLS bead in ``../shared/data``); 3 removes it.

    Returns
    -------
    ndarray, float32, the PSF's shape
        A new array, >= 0.

    Raises
    ------
    TypeError, ValueError
        As :func:`border_background`; ``background`` or ``noise`` not finite.
    """
    p = _real(psf)
    if background is None:
        if not np.isfinite(noise):
            raise ValueError(f"noise: must be a finite number of standard deviations, "
                             f"got {noise!r}")
        bg = border_background(p, border)
        background = bg.level + noise * bg.noise
    elif not np.isfinite(background):
        raise ValueError(f"background: must be a finite number, got {background!r}")
    return np.clip(p - float(background), 0, None).astype(np.float32)


#: the Python API warns when a PSF's centre (:func:`center_of`) is further than this from
#: ``n // 2``, voxels
CENTER_WARNING = 0.5

#: :func:`foreground` removes the border background plus this many noise standard
#: deviations
FOREGROUND_NOISE = 3.0


def _check_background(background: object) -> float | None:
    if background is None:
        return None
    if isinstance(background, bool) or not isinstance(background, (int, float, np.integer,
                                                                   np.floating)):
        raise TypeError(f"background: a number in the PSF's units, or None for the border "
                        f"estimate, got {background!r}")
    if not np.isfinite(background):
        raise ValueError(f"background: must be finite, got {background!r}")
    return float(background)


def foreground(psf: np.ndarray, background: float | None = None) -> np.ndarray:
    """The PSF's light above its background, clipped at 0; float64, a new array.

    Parameters
    ----------
    psf : ndarray
        The PSF, any number of axes.
    background : float, optional
        The constant to remove, in the PSF's units (a camera offset you know). Default:
        :func:`border_background`'s level plus :data:`FOREGROUND_NOISE` noise standard
        deviations, so that neither the pedestal nor its noise stays; when nothing
        stands above that, the array clipped at 0.

    Raises
    ------
    TypeError
        ``psf`` not a real numeric array, or ``background`` not a number.
    ValueError
        NaN/inf values; a sum <= 0 (pass a non-negative PSF); ``background`` at or above
        every voxel (pass a lower value).
    """
    p = _real(psf)
    given = _check_background(background)
    if given is None:
        bg = border_background(p)
        clean = np.clip(p - (bg.level + FOREGROUND_NOISE * bg.noise), 0, None)
        if clean.sum() <= 0:  # all at the background level: the array as given
            clean = np.clip(p, 0, None)
    else:
        clean = np.clip(p - given, 0, None)
        if clean.sum() <= 0 and p.max() > 0:
            raise ValueError(f"background: {given:g} is at or above every voxel of the PSF "
                             f"(maximum {p.max():g}); pass a lower value")
    if clean.sum() <= 0:
        raise ValueError("psf: sum must be positive; pass a non-negative PSF")
    return clean


#: the half-width of :func:`center_of`'s window on each axis, in full widths at half
#: maximum of the PSF's profile on that axis (:func:`_widths`), and at least
#: :data:`WINDOW_MIN` voxels. Two widths hold all of a compact bead's light (4.7 standard
#: deviations of a Gaussian), so the centre is the bead's centroid. One width (the core's)
#: left a bead deconvolved with ``PSF_RFI_8bit.tif`` (whose z profile has a long tail)
#: 0.67 voxel, and one deconvolved with the distilled confocal PSF 0.43 voxel, from the
#: data's centroid within two widths (``bench/psf_centring.py``); three let the faint halo
#: of a PSF distilled over the whole confocal bead image move its centre by 8 voxels.
WINDOW_FWHM = 2.0
WINDOW_MIN = 3.0


def _ramp(t: np.ndarray) -> np.ndarray:
    """The integral of the unit-area triangle on [-1, 1] from -inf to ``t``."""
    t = np.clip(t, -1.0, 1.0)
    return np.where(t < 0, 0.5 * (1 + t) ** 2, 1 - 0.5 * (1 - t) ** 2)


def _window(d: np.ndarray, r: float) -> np.ndarray:
    """A box of half-width ``r`` convolved with the unit triangle of half-width 1, at
    distances ``d``: 1 within ``r - 1``, 0 beyond ``r + 1``, smooth between. Its Fourier
    transform has double zeros at the non-zero integers, so its samples at ``k - c`` sum
    to ``2 r`` and their first moment about ``c`` is 0 for every sub-voxel ``c``: a
    constant pedestal under the window neither biases the centroid nor makes it jump."""
    return _ramp(r - d) - _ramp(-r - d)


def _widths(light: np.ndarray) -> list[float]:
    """Full widths at half maximum of the light's profiles along each axis (its sums over
    the other axes), in voxels. Unlike a line through the peak voxel (:func:`fwhm`), a
    profile changes continuously when the PSF moves by a fraction of a voxel, and does not
    depend on which side lobe or shoulder a line happens to cross."""
    return [fwhm(light.sum(axis=tuple(a for a in range(light.ndim) if a != axis)))[0]
            for axis in range(light.ndim)]


def _windowed_centre(clean: np.ndarray) -> tuple[float, ...]:
    """:func:`center_of` of light already clean (float64, >= 0, sum > 0)."""
    smooth = ndi.gaussian_filter(clean, 1.0, mode="constant")
    peak = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    half = [max(WINDOW_MIN, WINDOW_FWHM * w) for w in _widths(smooth)]
    c = np.array(peak, dtype=np.float64)
    for _ in range(200):
        box, weights, coords = [], [], []
        for axis, n in enumerate(clean.shape):
            r = max(0.5, min(half[axis], c[axis], n - 1 - c[axis]))  # symmetric, inside
            lo = max(0, int(np.floor(c[axis] - r - 1)))
            hi = min(n, int(np.ceil(c[axis] + r + 1)) + 1)
            x = np.arange(lo, hi, dtype=np.float64)
            box.append(slice(lo, hi))
            coords.append(x)
            weights.append(_window(x - c[axis], r))
        local = clean[tuple(box)].copy()
        for axis, w in enumerate(weights):
            shape = [1] * local.ndim
            shape[axis] = w.size
            local *= w.reshape(shape)
        mass = float(local.sum())
        if mass <= 0:  # nothing under the window: the smoothed peak
            return tuple(float(v) for v in peak)
        new = np.array([
            float(np.dot(local.sum(axis=tuple(b for b in range(local.ndim) if b != a)), x))
            for a, x in enumerate(coords)]) / mass
        step = float(np.abs(new - c).max())
        c = new
        if step < 1e-7:
            break
    return tuple(float(v) for v in c)


def center_of(psf: np.ndarray, background: float | None = None) -> tuple[float, ...]:
    """The PSF's centre, in voxels per axis (index coordinates, sub-voxel): the centroid
    of its :func:`foreground` within a window around its peak, iterated to a fixed point.

    The window starts at the peak of the foreground smoothed by a 1-voxel Gaussian (so
    that noise does not decide it) and is moved to the centroid of the light it holds
    until it stops moving (to 1e-7 voxel). Its half-width on each axis is
    :data:`WINDOW_FWHM` full widths at half maximum of the PSF's profile on that axis, at
    least :data:`WINDOW_MIN` voxels, and it is kept symmetric about the centre (narrowed
    where the centre nears a face of the array). Its edges are smooth (:func:`_window`),
    so the centre moves continuously with the PSF: moved by a fraction of a voxel, the
    four real PSFs of ``bench/psf_centring.py`` have their centre follow within 0.03
    voxel. A constant pedestal left under the window does not pull the centre to the
    window's middle, and the light beyond it (noise, a neighbouring bead) does not count.
    This is the centre that :func:`rlcore.psf.centered` moves to ``n // 2`` and that the
    Python API's off-centre warning measures.

    Parameters
    ----------
    psf : ndarray
        The PSF, any number of axes; raw (with its camera background) or not.
    background : float, optional
        As :func:`foreground`: the constant to remove first (default: the border
        estimate plus 3 noise standard deviations).

    Returns
    -------
    tuple of float
        The centre, one value per axis, in voxels from index 0.

    Raises
    ------
    TypeError, ValueError
        As :func:`foreground`.
    """
    return _windowed_centre(foreground(psf, background))


def centroid_offset(psf: np.ndarray, background: float | None = None) -> tuple[float, ...]:
    """Where the PSF's centre (:func:`center_of`: the centroid of its foreground in a
    window around its peak) lies relative to voxel ``n // 2``, in voxels per axis
    (positive: towards higher indices).

    Raises
    ------
    TypeError, ValueError
        As :func:`foreground`.
    """
    p = np.asarray(psf)
    return tuple(c - n // 2 for c, n in zip(center_of(p, background), p.shape))


#: the default fraction of a PSF's light (after background removal) its support holds.
#: Not applied automatically: cropping a PSF to it (``psf[support(psf)]``) shrank the
#: non-circulant grids of the edge-cut phantoms by up to 20% but raised the NRMSE after 50
#: iterations by up to 4.4% (bench/results/boundaries-half.md), so it is the caller's call
SUPPORT_ENERGY = 0.999


def support(psf: np.ndarray, energy: float = SUPPORT_ENERGY,
            background: float | None = None) -> tuple[slice, ...]:
    """The centred box, around voxel ``n // 2`` on each axis, that holds ``energy`` of the
    PSF's :func:`foreground`: per axis, the smallest half-width ``r`` whose slab
    ``[n // 2 - r, n // 2 + r]`` holds ``1 - (1 - energy) / ndim`` of the light (so the
    box holds at least ``energy``). An axis whose light reaches past the array on the
    short side of ``n // 2`` is kept whole. The box's centre voxel is the PSF's.
    ``background`` is :func:`foreground`'s (default: the border estimate).

    Raises
    ------
    TypeError, ValueError
        ``energy`` outside (0, 1], or as :func:`foreground`.
    """
    if not 0 < energy <= 1:
        raise ValueError(f"energy: a fraction in (0, 1], got {energy!r}")
    light = foreground(psf, background)
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
