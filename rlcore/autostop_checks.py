"""The held-out split's assumptions, checked on the data before ``iterations="auto"``
trusts it (issue 31): constant padding (a deskew's wedge, a stitched or masked region,
which carries no noise: :func:`pad_mask`) and the noise of neighbouring voxels
independent (:func:`noise_correlation`: interpolated, deskewed, binned or denoised data
share noise between voxels). :func:`check` reads both and says why the split is not
trusted; :mod:`rlcore.autostop` then falls back to :data:`FALLBACK_ITERATIONS` plain
updates. Computed on the device where the backend's array namespace is CuPy's, else on
the host's cores (the same masks and, within float32 rounding, the same figures).
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import numpy as np
import scipy.fft
from scipy import ndimage as ndi

from rlcore._system import usable_cpus

__all__ = ["Check", "check", "noise_correlation", "pad_mask", "pad_mask_on",
           "FALLBACK_ITERATIONS", "CORRELATION_LIMIT", "PAD_FALLBACK_FRACTION"]


#: the count of the conservative fallback (plain RL, the matched back projector, no
#: acceleration): the library's and the CLI's fixed default, and the count of
#: pycudadecon's / cudaDecon's reference result of the LLS stack
FALLBACK_ITERATIONS = 10
#: the lag-1 correlation of neighbouring voxels' noise, along any axis, above which the
#: split is not trusted (white noise reads ``|rho| <= 0.07`` on the nine phantom sets of
#: bench/iterations.py; linear interpolation by a random fraction gives 0.25, the LLS
#: stack's deskew 0.27 along x; bench/results/realdata.md)
CORRELATION_LIMIT = 0.15
#: the noise's spectrum is read where ``|OTF|^2 < OUT_OF_BAND_LEVEL * max |OTF|^2``
#: (there the data hold noise only) ...
OUT_OF_BAND_LEVEL = 1e-5
#: ... when at least this fraction of the half spectrum is there (else the correlation
#: is not measured: the EPFL bars keep 4% of it, a widefield PSF at 130 x 300 nm 29%,
#: the measured LLS PSF 78%)
OUT_OF_BAND_MIN_FRACTION = 0.2
#: runs of one exact value at least this long along an axis are padding candidates (a
#: deskew's wedge, a stitched or masked region), which carry no noise, when the value's
#: runs are a solid region (:func:`pad_mask`). Quantised dim data (8-bit, a few counts)
#: have long runs too, of their commonest values, which are not: they carry noise, and
#: the confocal grid's runs of 2 (19% of its voxels) and the beads' runs of 1 and 2 (46%)
#: read as padding and made ``iterations="auto"`` fall back
PAD_RUN = 16
#: solid, 1: at least this fraction of the value's run voxels are in runs along two axes
#: or more (a region, not lines). Measured: the LLS stack's wedge (98) 0.998,
#: RedLionfish's synthetic zeros 0.99; the confocal grid's runs of 2 0.19 and of 3
#: 0.004, the beads' runs of 2 0.019 (of 1: 0.75, which the next rule tells)
PAD_SOLID = 0.5
#: solid, 2: fewer voxels than this fraction of the value's run voxels lie between two of
#: them along two axes or more without being in a run themselves (the other values
#: scattered among a quantised image's commonest; padding holds none but at its edge,
#: where data voxels of the pad value join its runs). Measured: the LLS wedge 3.4e-5,
#: RedLionfish's zeros 6.2e-4; the confocal beads' runs of 1 4.6e-2, the grid's of 2
#: 3.5e-2 (cudaDecon's output clipped to 0, im_decon.tif, 4.9e-3). A region this pure
#: (99.7% one value) reads as padding whatever made it
PAD_ENCLOSED = 3e-3
#: the least fraction of the voxels in such runs for the image to count as padded
PAD_MIN_FRACTION = 0.01
#: padding above this fraction of the voxels falls back (:func:`check`). The
#: deconvolution reads padding as measured zeros, so near a pad wedge the estimate has
#: the artefacts of any light it cannot explain, which the held-out loss, taken on the
#: same model, cannot see: with a third of the voxels a deskew wedge of the constant
#: offset (independent Poisson noise otherwise, bench/realdata.py's "LLS Poisson,
#: padded"), auto stopped at 8 Wiener-Butterworth updates + 1, 18% above plain RL's best
#: and 15% above 10 plain updates (periodic), and 1.1% above 10 plain updates on the half
#: extension; 10 plain updates are 2.9% and 0.1% above the best there
PAD_FALLBACK_FRACTION = 0.05
#: voxels the noise's correlation is read on (a central crop of larger images)
_CORRELATION_VOXELS = 1 << 22


def _along(ndim: int, axis: int, index: slice) -> tuple[slice, ...]:
    """The index that takes ``index`` along ``axis`` (of ``ndim``) and all of the others."""
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


def _windows(flags: np.ndarray, axis: int, length: int, op) -> np.ndarray:
    """``op`` (``logical_and`` or ``logical_or`` of the array's module) over every window
    of ``length`` consecutive entries of ``flags`` along ``axis``: entry ``j`` of the result reduces
    ``flags[j:j + length]``. By doubling (a window of ``2m`` is two of ``m``): a few
    passes over views of the array, no copy of it moved to the last axis, no run ids."""
    w, m = flags, 1
    while 2 * m <= length:
        w = op(w[_along(w.ndim, axis, slice(None, -m))], w[_along(w.ndim, axis, slice(m, None))])
        m *= 2
    if m < length:  # the rest, r < m: two windows of m overlapping
        r = length - m
        w = op(w[_along(w.ndim, axis, slice(None, -r))], w[_along(w.ndim, axis, slice(r, None))])
    return w


def _long_runs(y: np.ndarray, axis: int) -> np.ndarray:
    """The voxels of ``y`` in runs of at least :data:`PAD_RUN` equal values along ``axis``."""
    xp = _array_module(y)
    n = y.shape[axis]
    equal = y[_along(y.ndim, axis, slice(1, None))] == y[_along(y.ndim, axis, slice(None, -1))]
    # starts[j]: y[j .. j + PAD_RUN - 1] all equal (n - PAD_RUN + 1 of them)
    starts = _windows(equal, axis, PAD_RUN - 1, xp.logical_and)
    shape = list(y.shape)
    shape[axis] = n + PAD_RUN - 1
    framed = xp.zeros(shape, bool)  # starts with PAD_RUN - 1 False either side
    framed[_along(y.ndim, axis, slice(PAD_RUN - 1, n))] = starts
    return _windows(framed, axis, PAD_RUN, xp.logical_or)  # a start within PAD_RUN back


def _enclosed(y: np.ndarray, runs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each of ``values`` (sorted), how many voxels outside ``runs`` lie between two
    run voxels of that value along at least two axes (along the one axis of 1-D data)."""
    xp = _array_module(y)
    count = xp.zeros(y.shape, np.uint8)
    value = xp.zeros_like(y) if len(values) > 1 else None  # whose runs they lie between
    for axis in range(y.ndim):
        if y.shape[axis] < 3:
            continue
        lo, mid, hi = (_along(y.ndim, axis, s)
                       for s in (slice(None, -2), slice(1, -1), slice(2, None)))
        between = runs[lo] & runs[hi] & (y[lo] == y[hi]) & ~runs[mid]
        count[mid] += between
        if value is not None:
            xp.copyto(value[mid], y[lo], where=between)
    inside = count >= min(2, y.ndim)
    if value is None:
        return xp.asarray([int(xp.count_nonzero(inside))])
    return xp.bincount(xp.searchsorted(values, value[inside]), minlength=len(values))


def pad_mask(image: np.ndarray) -> np.ndarray | None:
    """The voxels of ``image`` that are constant padding, which carries no noise.

    Padding (a deskew's wedge, a stitched or masked region) is one value over a solid
    region: runs of at least :data:`PAD_RUN` equal values along some axis, of a value
    whose runs are mostly along two axes or more (:data:`PAD_SOLID`) and hold almost no
    other voxel (:data:`PAD_ENCLOSED`). Quantised dim data (8-bit confocal stacks of a
    few counts) have long runs too, of their commonest values, but as lines, or with the
    other values scattered among them: no padding.

    Parameters
    ----------
    image : ndarray
        The image, any dimension: a NumPy array, or a CuPy array (computed on its device,
        the same mask: :func:`pad_mask_on`).

    Returns
    -------
    ndarray of bool or None
        The padding's voxels (in the image's array module); None when they are fewer
        than :data:`PAD_MIN_FRACTION` of the voxels, or all of them (a constant image).
        Photon counts' runs of zeros count only where zeros are rare elsewhere (they
        split into zeros anyway).
    """
    xp = _array_module(image)
    y = image if xp is not np else np.asarray(image)
    if y.ndim == 0 or y.size < 2 * PAD_RUN:
        return None
    axes = xp.zeros(y.shape, np.uint8)  # along how many axes a voxel is in a long run
    for axis in range(y.ndim):
        if y.shape[axis] >= PAD_RUN:
            axes += _long_runs(y, axis)
    runs = axes > 0
    if not bool(runs.any()):
        return None
    several = axes >= min(2, y.ndim)
    held = y[runs]
    if bool(xp.all(held == held[0])):  # the usual pad: one value
        values = held[:1]
        total = xp.asarray([held.size])
        multi = xp.asarray([int(xp.count_nonzero(several))])
    else:
        values, which = xp.unique(held, return_inverse=True)
        which = which.reshape(-1)
        total = xp.bincount(which, minlength=len(values))
        multi = xp.bincount(which, weights=several[runs].astype(np.float64),
                            minlength=len(values))
    solid = ((multi >= PAD_SOLID * total)
             & (_enclosed(y, runs, values) < PAD_ENCLOSED * total))
    mask = runs if bool(solid.all()) else runs & xp.isin(y, values[solid])
    zeros = (y == 0) & ~mask
    if float(zeros.mean()) > PAD_MIN_FRACTION:  # photon counts: zeros everywhere
        mask &= y != 0
    if bool(mask.all()):  # a constant image: nothing but padding, nothing to deconvolve
        return None
    return mask if float(mask.mean()) >= PAD_MIN_FRACTION else None


def pad_mask_on(backend: Any, image: np.ndarray) -> np.ndarray | None:
    """:func:`pad_mask` of a host image, computed on the backend's device where its array
    namespace is CuPy's (boolean passes over the image: on an H200 host 143 ms at
    (128, 384, 384) on the host's cores), else on the host; the mask on the host. Where
    the device has no room for the passes (about 8 bytes a voxel), on the host."""
    from rlcore.errors import DeviceOutOfMemoryError

    xp = device_namespace(backend)
    y = np.asarray(image)
    if xp is None or not hasattr(xp, "get_array_module") or y.dtype != np.float32:
        return pad_mask(y)
    try:
        mask = pad_mask(backend.to_device(y).reshape(y.shape))
    except (MemoryError, DeviceOutOfMemoryError):  # CuPy's OutOfMemoryError is one
        return pad_mask(y)
    return None if mask is None else xp.asnumpy(mask)


def _array_module(a: Any) -> Any:
    """NumPy, or CuPy for a CuPy array (only where CuPy is imported already)."""
    cp = sys.modules.get("cupy")
    return np if cp is None or isinstance(a, np.ndarray) else cp.get_array_module(a)


def _otf_power(psf: np.ndarray, shape: tuple[int, ...], xp: Any = np) -> Any:
    """``|OTF|^2`` of a PSF (centre voxel ``n // 2``) on a periodic grid, half spectrum; of
    a depth-variant PSF's ``(K, *psf_shape)`` stack the largest of its strata's at each
    frequency, so that beyond the band means beyond every stratum's band. ``xp``: NumPy
    (the host's cores) or CuPy (on its device)."""
    from rlcore.boundary import place_psf

    p = np.asarray(psf, np.float32)
    if p.ndim == len(shape) + 1:
        return xp.max(xp.stack([_otf_power(one, shape, xp) for one in p]), axis=0)
    p = p[tuple(slice(max(n // 2 - s // 2, 0), max(n // 2 - s // 2, 0) + min(n, s))
                for n, s in zip(p.shape, shape))]
    p = p / p.sum()
    if xp is np:
        otf = scipy.fft.rfftn(place_psf(p, shape), workers=usable_cpus())
    else:
        otf = xp.fft.rfftn(place_psf(xp.asarray(p), shape, out=xp.empty(shape, np.float32)))
    return otf.real * otf.real + otf.imag * otf.imag


def noise_correlation(image: np.ndarray, psf: np.ndarray, offset: float = 0.0,
                      pad: np.ndarray | None = None, backend: Any = None
                      ) -> tuple[np.ndarray | None, float]:
    """The lag-1 correlation of the noise of neighbouring voxels along each axis, read
    from the data's spectrum beyond the OTF's band, where the data hold noise only: the
    power there is fitted as ``c0 + sum_a c_a cos(w_a)`` (the spectrum of noise
    correlated with its next neighbour along each axis, the autocorrelation's
    Wiener-Khinchin transform), ``rho_a = c_a / (2 c0)`` (the image less its mean,
    Hann-windowed on each axis, pad voxels zero and tapered into; a central crop of
    large images). An interpolated, deskewed, binned or filtered image reads rho > 0.
    ``psf``: one PSF, or a depth-variant PSF's ``(K, *psf_shape)`` stack (beyond the band
    of every stratum). ``backend``: computed on its device where its array namespace is
    CuPy's (the same figures within float32 rounding), else on the host's cores.

    Returns
    -------
    rho : ndarray or None
        One value per axis, or None where fewer than :data:`OUT_OF_BAND_MIN_FRACTION` of
        the frequencies lie beyond the band (the correlation cannot be read there).
    fraction : float
        The fraction of the half spectrum beyond the band.
    """
    y = np.asarray(image, np.float32)
    if y.ndim == 0 or min(y.shape) < 4:
        return None, 0.0
    if y.size > _CORRELATION_VOXELS:
        side = max(int(round(_CORRELATION_VOXELS ** (1 / y.ndim))), 8)
        side = [max(side, min(n, s)) for n, s in zip(y.shape, np.shape(psf)[-y.ndim:])]
        crop = tuple(slice(max(n // 2 - k // 2, 0), max(n // 2 - k // 2, 0) + k)
                     for n, k in zip(y.shape, side))
        y = y[crop]
        pad = pad[crop] if pad is not None else None
    xp = _cupy_namespace(backend)
    if xp is not np:
        y = backend.to_device(np.ascontiguousarray(y)).reshape(y.shape)
        pad = None if pad is None else xp.asarray(pad)
    y = y - np.float32(offset)
    if pad is not None and bool(pad.any()) and bool((~pad).any()):
        # the pad's edges tapered to zero over a few voxels: a step there would leak
        # power beyond the band at low frequencies across it (read as correlation)
        valid = ~pad
        y = (y - y[valid].mean()) * (_ndimage(xp).gaussian_filter(
            valid.astype(np.float32), 2.0) * valid)
    y = y - y.mean(dtype=np.float32)
    for axis, n in enumerate(y.shape):
        window = xp.asarray(np.hanning(n + 2)[1:-1].astype(np.float32))
        y = y * window.reshape([-1 if i == axis else 1 for i in range(y.ndim)])
    power = _otf_power(psf, y.shape, xp)
    beyond = power < OUT_OF_BAND_LEVEL * power.max()
    fraction = float(beyond.mean())
    if fraction < OUT_OF_BAND_MIN_FRACTION or int(beyond.sum()) < 1000:
        return None, fraction
    spectrum = (scipy.fft.rfftn(y, workers=usable_cpus()) if xp is np
                else xp.fft.rfftn(y))
    s = xp.where(beyond, spectrum.real * spectrum.real + spectrum.imag * spectrum.imag,
                 np.float32(0))
    coef = _cosine_fit(beyond, s, y.shape)
    if coef[0] <= 0:
        return None, fraction
    return coef[1:] / (2 * coef[0]), fraction


def _cupy_namespace(backend: Any) -> Any:
    """CuPy's namespace where ``backend`` computes with it (:func:`_device_namespace` is
    CuPy), else NumPy: the host's cores."""
    xp = device_namespace(backend) if backend is not None else None
    return xp if xp is not None and hasattr(xp, "get_array_module") else np


def _ndimage(xp: Any) -> Any:
    if xp is np:
        return ndi
    import cupyx.scipy.ndimage

    return cupyx.scipy.ndimage


def _cosine_fit(beyond: Any, s: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The least-squares ``c`` of ``s ~ c0 + sum_a c_a cos(w_a)`` over the frequencies
    ``beyond`` (the mask of the half spectrum of a real array of ``shape``; ``s`` zero
    elsewhere; NumPy or CuPy arrays), by its normal equations.

    Each column but the constant depends on one axis only, so the Gram matrix and the
    right-hand side are sums of the mask's and of ``s``'s marginals (over all axes but
    one or two) against the cosines: a few reductions, no gathered million-row matrix
    (whose SVD by ``lstsq`` was half of :func:`check`'s time). ``lstsq`` on the small
    system where it is singular."""
    ndim = s.ndim
    cos = []
    for axis, n in enumerate(shape):
        f = np.fft.rfftfreq(n) if axis == ndim - 1 else np.fft.fftfreq(n)
        cos.append(np.cos(2 * np.pi * f))

    def marginal(a: Any, keep: tuple[int, ...]) -> np.ndarray:
        total = a.sum(axis=tuple(i for i in range(ndim) if i not in keep), dtype=np.float64)
        return total if isinstance(total, np.ndarray) else total.get()

    gram = np.empty((ndim + 1, ndim + 1))
    rhs = np.empty(ndim + 1)
    gram[0, 0], rhs[0] = int(beyond.sum()), float(s.sum(dtype=np.float64))
    for a in range(ndim):
        gram[0, a + 1] = gram[a + 1, 0] = cos[a] @ marginal(beyond, (a,))
        rhs[a + 1] = cos[a] @ marginal(s, (a,))
        gram[a + 1, a + 1] = (cos[a] ** 2) @ marginal(beyond, (a,))
        for b in range(a + 1, ndim):
            gram[a + 1, b + 1] = gram[b + 1, a + 1] = (
                cos[a] @ marginal(beyond, (a, b)) @ cos[b])
    if np.linalg.cond(gram) < 1e8:
        return np.linalg.solve(gram, rhs)
    return np.linalg.lstsq(gram, rhs, rcond=None)[0]


class Check(NamedTuple):
    """What :func:`check` found: ``fallback`` is the reason the split is not trusted
    (empty when it is); ``rho`` the noise's correlation per axis (None: not measured);
    ``pad`` the padded voxels (None: none), ``out_of_band`` the spectrum's fraction the
    correlation was read on."""

    fallback: str
    rho: np.ndarray | None
    pad: np.ndarray | None
    out_of_band: float

    def note(self) -> str:
        """What the stop rule says of the data (empty when nothing)."""
        words = []
        if self.pad is not None:
            words.append(f"pad ({self.pad.mean():.0%} of the voxels) left out of the split")
        return "; ".join(words)


_AXES = {1: "x", 2: "yx", 3: "zyx"}


def check(image: np.ndarray, psf: np.ndarray, offset: float = 0.0,
          pad: np.ndarray | None = None, backend: Any = None) -> Check:
    """Whether the held-out split's assumptions hold: no more constant padding than
    :data:`PAD_FALLBACK_FRACTION` of the voxels (see there), and the noise of
    neighbouring voxels independent (:func:`noise_correlation` below
    :data:`CORRELATION_LIMIT` along every axis). Interpolated data (deskewed, resampled,
    registered), binned or denoised data break the second: the split's two parts then
    share noise, the held-out loss rewards fitting it, and the stop comes late with
    speckle and stripes (issue 31's LLS stack). ``backend``: where the correlation is
    read (:func:`noise_correlation`)."""
    rho, fraction = noise_correlation(image, psf, offset, pad, backend)
    reasons = []
    if rho is not None and np.max(rho) > CORRELATION_LIMIT:
        axis = int(np.argmax(rho))
        name = _AXES.get(len(rho), "".join(map(str, range(len(rho)))))[axis]
        reasons.append(f"neighbouring voxels' noise correlated ({rho[axis]:.2f} along "
                       f"{name}, limit {CORRELATION_LIMIT:g}: interpolated or filtered data)")
    if pad is not None and pad.mean() > PAD_FALLBACK_FRACTION:
        value = np.unique(np.asarray(image)[pad][:1000])
        reasons.append(f"{pad.mean():.0%} of the voxels constant padding (runs of "
                       f"{', '.join(f'{v:g}' for v in value[:3])}: a deskew's wedge?), "
                       "read by the deconvolution as measured zeros")
    reason = "; ".join(reasons)
    return Check(reason, rho, pad, fraction)


def device_namespace(backend: Any) -> Any:
    """The array namespace the auto route computes in on the backend's device (CuPy's, an
    array-API one: :class:`rlcore.autostop.HeldOut`, :class:`rlcore.autostop.AutoStop`,
    and here the checks where it is CuPy's), or None: on the host (NumPy, whose results
    stay those of bench/results/iterations.md; OpenCL, whose arrays have none)."""
    xp = getattr(backend, "xp", None)
    return None if xp is None or xp is np else xp
