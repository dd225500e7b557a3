"""``iterations="auto"``: when to stop, chosen from the data by a held-out split.

The rule (measured in ``bench/iterations.py``, results in bench/results/iterations.md):

1. **Split** the image into a training part (a fraction ``p = 0.9`` of the signal) and an
   independent test part, both scaled to be unbiased for the same mean (data fission,
   Leiner et al., JASA 2023). Photon counts are split by binomial thinning
   (``train ~ Binomial(counts, p)``, test the rest), which is exact for Poisson data.
   Other data (camera data of unknown gain and offset, read noise, negative values) are
   split by Gaussian fission, ``train = y + tau z``, ``test = y - z / tau`` with
   ``tau^2 = (1 - p) / p`` and ``z`` drawn with the variance of the data's noise, modelled
   as ``var = gain * max(y - offset, 0) + read^2`` and fitted from the image itself
   (:func:`noise_model`: robust variance of a high-pass residual against the local mean,
   as in Foi et al., IEEE TIP 2008) unless ``gain`` is given.
2. **Run** the deconvolution on the training part and, after every update, compare the
   estimate with the test part in object space, inside the band the data carries: with
   the Wiener-type filter ``P = |OTF|^2 / (|OTF|^2 + a)`` and the test part deconvolved
   once, ``Z = conj(OTF) T / (|OTF|^2 + a)``,

   ``L(x) = sum_f |P X - Z|^2``  (+ ``g sum_f (1 - P)^2 |X|^2`` for the matched back
   projector, whose noise grows beyond the band; ``g`` = 1 on the periodic grid and
   :data:`PADDED_OUT_OF_BAND` on padded grids, see there),

   an unbiased estimate (up to a constant) of the squared error within the band, since
   ``Z`` is independent of the training data. ``a = 1e-4`` (relative to ``max |OTF|^2``).
3. **Stop** when ``L`` has not improved for ``patience`` updates (1 in
   ``iterations="auto"``, whose phases are :data:`AUTO_PHASES`; or at
   ``max_iterations``) at the training estimate with the smallest ``L``; then run the
   chosen counts again on the whole image (all of its photons), as cross-validation
   refits on all the data once the parameter is chosen: on each of bench/realdata.py's
   and bench/iterations.py's sets (both boundaries) the whole image's estimate was
   0.1-2.5% nearer the truth than the training estimate of the same count
   (bench/results/realdata.md), for the chosen count's updates once more.

4. **Check the split's assumptions first** (:mod:`rlcore.autostop_checks`, issue 31):
   the noise of neighbouring voxels independent, read from the data's spectrum beyond
   the OTF's band (a deskewed, interpolated, binned or denoised image reads a lag-1
   correlation above the limit), and no more than a small fraction of the voxels
   constant padding (runs of one value filling a solid region, not the runs of quantised
   dim data; the deconvolution reads it as measured zeros; smaller pads are left out of
   the split and the noise fit). When one fails, ``iterations="auto"`` falls back to a
   fixed count of plain updates and says why in ``RunInfo.stop_rule``.
5. **Correct the test part for the periodic model's mismatch at the image's faces**
   (:func:`boundary_mismatch`): an object cut by the faces makes the test part's
   expectation differ from the periodic blur of the object there, so the loss's target
   carries the periodic inversion's own edge artefacts and prefers estimates that have
   them (on objects that fill the volume the loss fell for 20-40 updates where the
   error rose after 5-8). The mismatch is estimated from a short half-extension run on
   the training part and subtracted from the test part. On padded grids (the default
   "non-circulant-half"), whose loss is taken on the image's own periodic grid, every
   phase's loss is corrected so: on bench/realdata.py's semi-synthetic sets auto came
   within 0.1-3.6% of the oracle (5.9-8.2% without), on bench/iterations.py's nine sets
   within +0.45% of the uncorrected loss (three measured-PSF sets 0.2-4.4% better), at
   about twice auto's time on those (48, 128, 128) sets. The periodic phases keep the loss
   measured on bench/iterations.py's sets; on the periodic grid a rival, the last phase
   alone from the first estimate, stopped by the corrected loss, replaces the chain when
   that loss puts it nearer by :data:`RIVAL_MARGIN` (:meth:`AutoStop.margin`). Measured
   in bench/results/realdata.md and realdata-notes.md.

Nothing here needs the ground truth. The split is drawn on the device where the backend
has the protocol's optional ``random`` (CuPy), else on the host's cores; the band is made
on the device where the backend has an array namespace other than NumPy's. Per update,
``L`` reads the forward projection's spectrum (no extra transform) where the update
starts from the estimate itself; an accelerated phase, whose forward projection is of the
extrapolated point, and padded grids, whose loss is on the image region, transform the
estimate once more. On the device a run holds two half spectra and two buffers of the
grid more (the band filter, the test spectrum and the best estimate).

A depth-variant PSF (``psf_depths``) has no one OTF: its loss is that of the strata
forward model, :mod:`rlcore.autostop_strata`.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.fft
from scipy import ndimage as ndi

from rlcore import backprojector
from rlcore._system import usable_cpus
from rlcore.autostop_checks import (  # noqa: F401 (read by their old names too)
    CORRELATION_LIMIT,
    FALLBACK_ITERATIONS,
    OUT_OF_BAND_LEVEL,
    OUT_OF_BAND_MIN_FRACTION,
    PAD_ENCLOSED,
    PAD_FALLBACK_FRACTION,
    PAD_MIN_FRACTION,
    PAD_RUN,
    PAD_SOLID,
    Check,
    check,
    noise_correlation,
    pad_mask,
    pad_mask_on,
)
from rlcore.autostop_checks import device_namespace as _device_namespace
from rlcore.protocol import GridPlacement, spectrum_shape

__all__ = ["AutoStop", "HeldOut", "fit_noise", "noise_model", "split", "phases",
           "AUTO_PHASES", "AUTO_PADDED_PHASES", "AUTO_STRATA_PHASES", "DEFAULT_FRACTION",
           "CV_ALPHA", "PADDED_OUT_OF_BAND"]

logger = logging.getLogger(__name__)

#: the training fraction of the split
DEFAULT_FRACTION = 0.9
#: voxels the noise model is fitted on (a central crop of larger images)
_NOISE_VOXELS = 1 << 17
#: values each random generator of the split draws (one chunk, one thread at a time)
_CHUNK = 1 << 16
#: weight of the band filter P = |OTF|^2 / (|OTF|^2 + CV_ALPHA)
CV_ALPHA = 1e-4
#: the out-of-band term's weight on padded grids (every boundary but periodic). The term
#: counts all of the estimate's energy beyond the band as error, as if the object had
#: none there; edge-cut sparse objects (the bench's filaments and shells) have much, and
#: on the half extension RL recovers it for 35-60 updates at 100-1000 photons. Measured
#: on the bench's nine sets (same splits, bench/results/iterations.md): weight 1 stopped
#: 28%, 65% and 13% above the run's own best (measured PSF at 100 and 1000 photons,
#: widefield at 1000); 0.1 stopped within 2.6% of it on eight sets, 53% above on the
#: measured PSF at 1000 photons; 0 (no term) ran on to 150 updates, 47-51% above, on
#: both measured-PSF sets.
PADDED_OUT_OF_BAND = 0.1


def noise_model(image: np.ndarray, offset: float = 0.0) -> tuple[float, float]:
    """Fit ``var(y) = gain * max(y - offset, 0) + read_var`` to the image's own noise.

    The noise is read from the residual of each voxel against the mean of its 2 * ndim
    neighbours (a blurred image is smooth at that scale), its variance by the median
    absolute deviation in 24 bins of the local mean, and a straight line fitted through
    the bins (Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for
    single-image raw-data", IEEE TIP 17 (2008) 1737). Large images are read on a central
    crop of about 2^17 voxels; the faces (no full neighbourhood) are left out.

    Parameters
    ----------
    image : ndarray, ``(Z, Y, X)`` or ``(Y, X)``
        Data in its own units (ADU for a camera).
    offset : float, default 0
        The data's zero level (camera offset), in the image's units.

    Returns
    -------
    gain : float
        Image units per photon (>= 0).
    read_var : float
        Variance of the signal-independent noise, image units squared (>= 0).
    """
    fit = _noise_fit(image, offset)
    return fit.gain, fit.read_var


class _Fit(NamedTuple):
    """:func:`noise_model`'s line, the bins' centroid (mean level, offset removed, and
    mean variance: where the least-squares line is best determined) and the range of the
    bins' levels; zeros where unknown."""

    gain: float
    read_var: float
    level: float = 0.0
    variance: float = 0.0
    spread: float = 0.0


def _noise_fit(image: np.ndarray, offset: float, pad: np.ndarray | None = None) -> _Fit:
    """:func:`noise_model` with the centroid and spread of its bins (:class:`_Fit`);
    ``pad``: voxels left out (:func:`~rlcore.autostop_checks.pad_mask`: they carry no noise)."""
    y = np.asarray(image)
    if y.size > _NOISE_VOXELS:  # a central crop is enough (and bounds the cost)
        side = max(int(round(_NOISE_VOXELS ** (1 / y.ndim))), 8)
        crop = tuple(slice(max(n // 2 - side // 2, 0), max(n // 2 - side // 2, 0) + side)
                     for n in y.shape)
        y = y[crop]
        pad = pad[crop] if pad is not None else None
    y = np.asarray(y, dtype=np.float32)
    if min(y.shape) < 3 or y.size < 2000:
        return _Fit(1.0, 0.0)
    inner = (slice(1, -1),) * y.ndim
    centre = y[inner]
    neighbours = np.zeros_like(centre)
    for axis in range(y.ndim):
        for lo in (0, 2):
            index = list(inner)
            index[axis] = slice(lo, y.shape[axis] - 2 + lo)
            neighbours += y[tuple(index)]
    residual = (centre - neighbours / np.float32(2 * y.ndim)).ravel()
    # local mean over the 3^ndim box (the centre voxel and its neighbours)
    local = (ndi.uniform_filter(y, 3, mode="reflect")[inner] - np.float32(offset)).ravel()
    if pad is not None:  # no pad voxel in the 3^ndim box
        keep = ~ndi.binary_dilation(pad, np.ones((3,) * y.ndim, bool))[inner].ravel()
        if keep.sum() < 2000:
            return _Fit(1.0, 0.0)
        residual, local = residual[keep], local[keep]
    scale = 1.0 + 1.0 / (2 * y.ndim)  # variance of the residual of white noise
    edges = np.quantile(local[:: max(local.size // 20000, 1)],
                        np.linspace(0.02, 0.98, 25)).astype(np.float32)
    # bin of each voxel (-1 and 24: outside the edges), as int8 so that the stable sort
    # is a radix sort
    bins = (np.searchsorted(edges, local, side="right") - 1).astype(np.int8)
    order = np.argsort(bins, kind="stable")
    starts = np.searchsorted(bins[order], np.arange(25))
    means, variances = [], []
    for b in range(24):
        sel = order[starts[b]:starts[b + 1]]
        if sel.size < 200:
            continue
        sel = sel[:: max(sel.size // 2000, 1)]  # 2000 residuals give the MAD to ~3%
        r = residual[sel]
        mad = np.median(np.abs(r - np.median(r)))
        means.append(float(local[sel].mean(dtype=np.float64)))
        variances.append(float((1.4826 * mad) ** 2 / scale))
    if len(means) < 2 or np.ptp(means) <= 0:
        return _Fit(1.0, float(np.median(variances)) if variances else 0.0)
    gain, read_var = np.polyfit(means, variances, 1)
    return _Fit(max(float(gain), 0.0), max(float(read_var), 0.0), float(np.mean(means)),
                float(np.mean(variances)), float(np.ptp(means)))


def fit_noise(image: np.ndarray, gain: float | None, offset: float,
              pad: np.ndarray | None = None) -> _Fit | None:
    """The noise model :func:`split` needs (None when ``gain`` is given), for a caller
    that makes it beside other work (host only, no device calls: thread-safe); ``pad``
    (:func:`~rlcore.autostop_checks.pad_mask`) left out."""
    return None if gain is not None else _noise_fit(np.asarray(image), offset, pad)


def _count_like(fit: _Fit, offset: float) -> bool:
    """Noise of photon counts: the variance grows with the mean at a slope near 1 (0.6-1.6:
    the fit reads some of the signal's curvature as noise), or, where the image is too
    flat for a slope (bin means spread over less than half their level; a Poisson(30)
    volume fitted slopes of 0.24-1.8), the variance equals the recorded mean (``offset``
    may be a background of photons, which are counted too)."""
    raw = fit.level + offset
    if raw > 0 and fit.variance > 0 and fit.spread < 0.5 * raw:
        return 0.6 <= fit.variance / raw <= 1.6
    return 0.6 <= fit.gain <= 1.6


def _integer_valued(y: np.ndarray) -> bool:
    """Non-negative integers small enough to count (binomial thinning takes int64); read
    in pieces of :data:`_CHUNK` values (no image-sized temporaries)."""
    if not (y.min() >= 0 and y.max() < 2.0**52):
        return False
    flat = np.ascontiguousarray(y).reshape(-1)
    for start in range(0, flat.size, _CHUNK):
        piece = flat[start:start + _CHUNK]
        if not np.all(np.abs(piece - np.round(piece)) < 1e-3):
            return False
    return True


def _draw_in_chunks(seed: int, size: int, draw) -> None:
    """Call ``draw(rng, start, stop)`` for each chunk of :data:`_CHUNK` values of
    ``range(size)``, on the host's cores; each chunk has its own generator spawned from
    ``seed``, so the numbers do not depend on the number of threads."""
    starts = range(0, size, _CHUNK)
    seeds = np.random.SeedSequence(seed).spawn(len(starts))

    def one(i: int) -> None:
        draw(np.random.default_rng(seeds[i]), starts[i], min(starts[i] + _CHUNK, size))

    workers = min(usable_cpus(), len(starts))
    if workers <= 1:
        for i in range(len(starts)):
            one(i)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="rlcore-split") as pool:
        list(pool.map(one, range(len(starts))))


def split(image: np.ndarray, *, fraction: float = DEFAULT_FRACTION, gain: float | None = None,
          offset: float = 0.0, seed: int = 0, backend: Any = None, fit: Any = None,
          pad: np.ndarray | None = None) -> tuple[Any, Any, str]:
    """Split the image into independent training and test parts (see module docstring).

    Parameters
    ----------
    image : ndarray, ``(Z, Y, X)`` or ``(Y, X)``
        The data (host).
    fraction, gain, offset, seed
        As in the module docstring; ``seed`` makes the split reproducible.
    backend : Backend, optional
        Where the random numbers are drawn: on its device when it has the protocol's
        optional ``random`` (CuPy; the parts are then device arrays, and the numbers those
        of the device's generator, so the split differs from the host's for the same
        seed), else on the host's cores (NumPy arrays).
    fit : optional
        The noise model of this image and offset, made already (:func:`fit_noise`; a
        caller may make it while the device plans); ignored when ``gain`` is given.
    pad : bool ndarray, optional
        Voxels that carry no noise (:func:`~rlcore.autostop_checks.pad_mask`): both
        parts hold ``image - offset`` there (nothing to split), and the noise model is
        fitted without them.

    Returns
    -------
    train, test : array, float32, the image's shape
        Both unbiased for ``image - offset`` (train clipped at 0; test may be negative).
    method : str
        ``"binomial"`` (photon counts) or ``"gaussian"`` (fission with the noise model).
    """
    y = np.asarray(image)
    # float32 holds every count below 2^24 exactly; larger data keep float64
    y = y.astype(np.float32 if y.dtype.itemsize <= 4 and y.dtype.kind in "uif" else np.float64,
                 copy=False)
    # photon counts are thinned as recorded (background photons are Poisson too); the
    # offset is removed from both parts afterwards
    counts = y / y.dtype.type(gain) if gain else y
    if gain is None:
        fit = fit if fit is not None else _noise_fit(y, offset, pad)
        estimated_gain, read_var = fit.gain, fit.read_var
        count_like = _count_like(fit, offset)
    else:
        estimated_gain, read_var, count_like = gain, 0.0, True
    device = (backend is not None and getattr(backend, "random", None) is not None
              and counts.dtype == np.float32 and DEVICE_SPLIT)
    draw = _Draw(fraction, gain, estimated_gain, read_var, offset, seed)
    if device:
        train, test, method = _split_on_device(backend, counts, count_like, draw)
    else:
        train, test, method = _split_on_host(counts, count_like and _integer_valued(counts),
                                             draw)
    if pad is not None:  # nothing to split where there is no noise
        train, test = _unsplit(backend if device else None, train, test, y, pad, offset)
    logger.info("iterations='auto': %s split, gain %.3g, read variance %.3g%s", method,
                estimated_gain, read_var, " (on the device)" if device else "")
    return train, test, method


def _unsplit(backend, train, test, y, pad, offset):
    """``test`` equal to ``y - offset`` and ``train`` to ``max(y - offset, 0)`` on the
    ``pad`` voxels."""
    value = y[pad].astype(np.float32) - np.float32(offset)
    clipped = np.maximum(value, np.float32(0))
    if backend is None:
        train[pad] = clipped
        test[pad] = value
        return train, test
    where = backend.to_device(np.flatnonzero(pad).astype(np.int64))
    train.reshape(-1)[where] = backend.to_device(clipped)
    test.reshape(-1)[where] = backend.to_device(value)
    return train, test


#: draw the split on the device where the backend can (``random``); False: always on the
#: host (the tests compare a device's run with NumPy's on the same split)
DEVICE_SPLIT = True


class _Draw(NamedTuple):
    """What a split draws with: the training fraction, the gain given (or None), the
    noise model's gain and read variance, the offset and the seed."""

    fraction: float
    gain: float | None
    estimated_gain: float
    read_var: float
    offset: float
    seed: int


def _split_on_host(counts, is_counts, draw: _Draw):
    fraction, gain, estimated_gain, read_var, offset, seed = draw
    flat = np.ascontiguousarray(counts).reshape(-1)
    if is_counts:
        g = gain or 1.0
        train = np.empty(flat.size, np.float32)
        test = np.empty(flat.size, np.float32)

        def thin(rng, start, stop):  # chunk by chunk: the int64 temporaries stay in cache
            k = np.rint(flat[start:stop]).astype(np.int64)
            held = rng.binomial(k, 1 - fraction)  # the test part's counts
            train[start:stop] = (k - held) * (g / fraction) - offset
            test[start:stop] = held * (g / (1 - fraction)) - offset

        _draw_in_chunks(seed, flat.size, thin)
        method = "binomial"
    else:
        var = estimated_gain * np.clip(flat - flat.dtype.type(offset), 0, None) + read_var
        z = np.empty(flat.size, np.float32)

        def normal(rng, start, stop):
            z[start:stop] = rng.standard_normal(stop - start, dtype=np.float32)

        _draw_in_chunks(seed, flat.size, normal)
        z *= np.sqrt(np.maximum(var, 1e-12)).astype(np.float32)
        tau = np.float32(np.sqrt((1 - fraction) / fraction))
        shifted = (flat - flat.dtype.type(offset)).astype(np.float32)
        train, test, method = shifted + tau * z, shifted - z / tau, "gaussian"
    np.maximum(train, np.float32(0), out=train)
    return train.reshape(counts.shape), test.reshape(counts.shape), method


def _split_on_device(backend, counts, count_like, draw: _Draw):
    """:func:`split`'s draws on the device (float32 counts, so below 2^24 exactly), in
    pieces of :data:`_DEVICE_CHUNK` voxels: beyond the image and the two parts, the device
    holds only one piece's temporaries (int64 counts and draws)."""
    fraction, gain, estimated_gain, read_var, offset, seed = draw
    xp, rng = backend.xp, backend.random(seed)
    d = backend.to_device(counts).reshape(-1)
    pieces = [slice(a, min(a + _DEVICE_CHUNK, d.size)) for a in range(0, d.size, _DEVICE_CHUNK)]
    is_counts = count_like and all(
        bool(xp.all((d[i] >= 0) & (xp.abs(d[i] - xp.rint(d[i])) < 1e-3))) for i in pieces)
    f32 = np.float32
    train, test = xp.empty_like(d), xp.empty_like(d)
    tau = f32(np.sqrt((1 - fraction) / fraction))
    for i in pieces:
        if is_counts:
            g = gain or 1.0
            k = xp.rint(d[i])
            held = rng.binomial(k.astype(xp.int64), 1 - fraction).astype(f32)
            train[i] = (k - held) * f32(g / fraction) - f32(offset)
            test[i] = held * f32(g / (1 - fraction)) - f32(offset)
        else:
            shifted = d[i] - f32(offset)
            var = f32(estimated_gain) * xp.maximum(shifted, f32(0)) + f32(read_var)
            z = rng.standard_normal(shifted.shape, dtype=f32) * xp.sqrt(
                xp.maximum(var, f32(1e-12)))
            train[i], test[i] = shifted + tau * z, shifted - z / tau
    del d
    train = xp.maximum(train, f32(0), out=train)
    shape = tuple(counts.shape)
    return (train.reshape(shape), test.reshape(shape),
            "binomial" if is_counts else "gaussian")


#: voxels of one piece of the device split (its int64 temporaries: 256 MiB)
_DEVICE_CHUNK = 1 << 24


# ------------------------------------------------------------------ the boundary's mismatch

#: how much nearer (:meth:`AutoStop.margin`) the last phase alone, from the first
#: estimate, must be than the phases' chain to replace it (``iterations="auto"``'s rival,
#: judged in the band by the boundary-corrected test part). On bench/iterations.py's nine
#: sets the chain is nearer (-1.9 .. -0.5) except the widefield camera set, 0.26 (where
#: the chain's error is 6% lower: the in-band loss does not see what the
#: Wiener-Butterworth phase recovers beyond the band, in the missing cone), the blocks
#: 0.60 and the bars 6.9 (the rival 0.5% lower); on bench/realdata.py's semi-synthetic
#: sets the rival is nearer by 0.51-0.99 (its error 12-15% lower)
RIVAL_MARGIN = 0.4

#: updates (with momentum) of the half-extension run that estimates the periodic model's
#: mismatch at the image's faces (:func:`boundary_mismatch`). On the LLS Poisson set of
#: bench/realdata.py, against the exact mismatch: 10 plain updates 48% off, 30 plain
#: 33%, 10 with momentum 35%, 30 with momentum 30%
MISMATCH_UPDATES = 10


def boundary_mismatch(deconvolver: Any, train: Any, updates: int = MISMATCH_UPDATES,
                      periodic: Any = None) -> Any:
    """``m = crop(H x) - H_image crop(x)``: what a periodic model of the image's grid
    misses of the data, for an object ``x`` that lives beyond the image too, estimated
    by ``updates`` updates with momentum of the half extension ("non-circulant-half",
    Bertero & Boccacci 2005) on the training part: float32, the image's shape, on the
    device where the backend has an array namespace other than NumPy's (CuPy, array
    API), else on the host. Both convolutions are the plans' own operators on the
    backend (the half extension's, and ``periodic``: a convolution on the image's grid,
    default the plan's own operator when its grid is the image's, else a new one).

    The held-out loss compares an estimate with the test part deconvolved on the
    image's periodic grid; an object cut by the image's faces makes the test part's
    expectation ``crop(H x_true) != H_image x_true`` near them, so the loss's target
    carries the periodic inversion's own edge artefacts and prefers estimates that have
    them: on objects that fill the volume (a cell, nuclei) the held-out loss then falls
    for 20-40 updates where the error rises after 5-8 (bench/results/realdata.md).
    Subtracting ``m`` from the test part removes that bias. A depth-variant plan
    (``psf_depths``) runs the half extension with the same strata (its periodic form
    on the image's grid given as ``periodic``: :mod:`rlcore.autostop_strata`)."""
    from rlcore.deconvolver import Deconvolver, RunSettings
    from rlcore.iteration import Convolution

    be = deconvolver.backend
    shape = tuple(deconvolver.grid.image_shape)
    with warnings.catch_warnings():  # the PSF was checked (and warned of) by the plan
        warnings.simplefilter("ignore", UserWarning)
        half = Deconvolver(deconvolver.psf, shape, updates, backend=be,
                           boundary="non-circulant-half", accelerate="momentum",
                           psf_depths=getattr(deconvolver, "psf_depths", None))
    last = _Last(be, half.grid.shape)
    with be.activate():
        half.execute(train, RunSettings(monitor=last))
        if periodic is None:
            periodic = (deconvolver.operator if not deconvolver.grid.padded
                        else Convolution(be, deconvolver.psf, shape))
        linear = _image_region(be, half.grid, half.operator.forward(last.best))
        cut = periodic.forward(_image_region(be, half.grid, last.best))
        del last.best
        half.close()
        if _device_namespace(be) is not None:
            return linear - cut
        return (np.asarray(be.to_host(linear), np.float32)
                - np.asarray(be.to_host(cut), np.float32))


class _Last:
    """A monitor that keeps the last grid estimate."""

    def __init__(self, backend: Any, shape: tuple[int, ...]) -> None:
        self.backend, self.shape, self.best = backend, shape, None

    def __call__(self, k: int, point: Any, spectrum: Any = None) -> bool:
        be = self.backend
        self.best = be.copy_into(point, be.empty(self.shape) if self.best is None
                                 else self.best)
        return False


@dataclass(frozen=True)
class HeldOut:
    """The test part in the band (float32 half spectra, on the device or the host as
    :func:`_device_namespace` says): the band filter ``P``,
    ``C = w P Z`` and the weights ``w`` of the mirrored columns, on the plan's grid, or,
    for a padded grid, on the image's own (periodic) grid with ``operator`` the
    convolution there and ``grid`` the plan's grid whose image region is compared: on a
    padded grid the test part says nothing about the estimate beyond the image, and a
    loss over the whole grid stopped early (bench/results/iterations.md)."""

    p: np.ndarray
    c: np.ndarray
    w: np.ndarray
    operator: Any = None
    grid: Any = None

    @classmethod
    def of(cls, deconvolver: Any, test: np.ndarray, train: Any = None) -> HeldOut:
        """From the test part (image shape) and a plan's OTF and grid: on the device
        where the backend has an array namespace other than NumPy's (CuPy, array API;
        on a GPU the host's transforms and uploads cost more than the whole run), else
        on the host's cores. ``train``: the training part, whose half-extension estimate
        corrects the test part for the periodic model's mismatch at the image's faces
        (:func:`boundary_mismatch`); None: no correction."""
        from rlcore.iteration import Convolution

        be, grid = deconvolver.backend, deconvolver.grid
        operator = None
        if grid.padded:
            operator = Convolution(be, deconvolver.psf, tuple(grid.image_shape))
        if train is not None:
            m = boundary_mismatch(deconvolver, train, periodic=operator)
            if isinstance(test, np.ndarray):
                test = test - np.asarray(be.to_host(m), np.float32)
            else:  # drawn on the device (split)
                test = test - (be.to_device(m) if isinstance(m, np.ndarray) else m
                               ).reshape(test.shape)
        shape = grid.image_shape if grid.padded else grid.shape
        otf = (operator or deconvolver.operator).otf
        n = float(np.prod(shape))
        # columns 1 .. n/2-1 of the last axis stand for two (conjugate) frequencies
        w = np.full(spectrum_shape(tuple(shape))[-1], 2.0 / n, np.float32)
        w[0] = 1.0 / n
        if shape[-1] % 2 == 0:
            w[-1] = 1.0 / n
        xp = _device_namespace(be)
        if xp is not None:
            w = be.to_device(w)
            re, im = xp.real(otf), xp.imag(otf)
            power = re * re + im * im
            denominator = power + CV_ALPHA * xp.max(power)
            if isinstance(test, np.ndarray):  # else drawn there (split)
                test = be.to_device(test)
            p = power / denominator
            c = xp.conj(otf) * be.rfftn(test) * (p * w / denominator)
            return cls(p, c, w, operator, grid if grid.padded else None)
        # float32 on the host's cores: the weights go to the device in float32 anyway
        otf = np.asarray(be.to_host(otf)).astype(np.complex64, copy=False)
        power = otf.real * otf.real + otf.imag * otf.imag
        denominator = power + np.float32(CV_ALPHA * power.max())
        p = power / denominator
        t = scipy.fft.rfftn(np.asarray(test, np.float32), workers=usable_cpus())
        c = np.conj(otf) * t
        c *= p * w / denominator
        return cls(p, np.ascontiguousarray(c, dtype=np.complex64), w, operator,
                   grid if grid.padded else None)


def _image_region(backend: Any, grid: Any, x: Any) -> Any:
    """The image region of a grid array, as a new contiguous array on the backend."""
    if isinstance(backend, GridPlacement):
        return backend.crop(x, grid)
    region = x[grid.region]
    xp = backend.xp
    return xp.ascontiguousarray(region) if hasattr(xp, "ascontiguousarray") else region


@dataclass
class AutoStop:
    """The held-out loss of step 2, with the best estimate kept.

    Built by :meth:`build`; :meth:`__call__` is the iteration's ``monitor``.
    """

    backend: Any
    operator: Any  # the convolution whose grid the loss is taken on
    weight: Any  # A = w (|P - 1|^2 + P^2 ...) as a real half spectrum (see build)
    target: Any  # C = w P Z, complex half spectrum
    patience: int
    shape: tuple[int, ...] = ()  # the estimate's (the plan's grid)
    region: Any = None  # the plan's grid when the loss is taken on its image region
    best: Any = None
    #: the first update that may be chosen: a later phase of ``iterations="auto"`` keeps
    #: at least its first update (see :meth:`build`)
    first: int = 0
    best_loss: float = float("inf")
    best_k: int = 0
    since: int = 0
    last_k: int = -1

    @classmethod
    def build(cls, deconvolver: Any, test: np.ndarray | HeldOut, *, out_of_band: float,
              patience: int = 2, first: int = 0) -> AutoStop:
        """Precompute ``A`` and ``C`` so that ``L(x) = sum A |X|^2 - 2 Re(conj(X) C)``
        (+ a constant) on the half spectrum ``X = rfftn(x)`` (``A`` holds the weights
        of the half spectrum's mirrored columns). ``test``: the test part, or its
        :class:`HeldOut` band made once for several plans of the same PSF and grid.
        ``out_of_band``: the weight ``g`` of the term ``g sum (1 - P)^2 |X|^2`` (0: none;
        1: all of the estimate's energy beyond the band counted as error, as if the
        object had none there). ``first``: the first update that may be chosen (1 for a
        phase that starts from another back projector's estimate: the loss compares an
        estimate with the test part's in-band Wiener deconvolution, which the
        Wiener-Butterworth estimates resemble more than any matched one, so the loss
        of the phase's start is not comparable with its updates'; measured in
        bench/results/iterations.md)."""
        if not isinstance(test, HeldOut):
            test = HeldOut.of(deconvolver, test)
        be = deconvolver.backend
        a = test.p * test.p
        if out_of_band:
            a = a + out_of_band * ((1 - test.p) * (1 - test.p))
        a = a * test.w
        if _device_namespace(be) is not None:  # made there (HeldOut.of)
            weight, target = a, test.c
        else:
            weight = be.to_device(np.ascontiguousarray(a, dtype=np.float32))
            target = be.to_device_spectrum(test.c)
        return cls(be, test.operator or deconvolver.operator, weight, target, patience,
                   tuple(deconvolver.operator.shape), test.grid, first=first)

    def loss(self, point: Any, spectrum: Any = None) -> float:
        """``L`` of a grid estimate; ``spectrum``: its ``rfftn`` when already made (not
        used on a padded grid, where the loss is taken on the image region)."""
        if self.region is not None:
            point, spectrum = _image_region(self.backend, self.region, point), None
        if spectrum is None:
            spectrum = self.backend.rfftn(point, out=self.operator._spectrum)
        return self.backend.spectral_loss(spectrum, self.weight, self.target)

    def margin(self, chain: Any, rival: Any) -> float:
        """How much nearer ``rival`` is to the truth than ``chain`` by this loss, in
        units of their distance: ``(L(chain) - L(rival)) / |A (chain - rival)|^2``
        (the loss is the quadratic ``|A x|^2 - 2 <x, c>``; its expectation's difference
        over the squared distance is ``(|e_c|^2 - |e_r|^2) / |e_c - e_r|^2`` for the two
        errors, 1 where the rival is exact, -1 where the chain is, 0 when equally near).
        The distance comes from the midpoint: ``|A d|^2 = 2 (L(a) + L(b) - 2 L(mid))``."""
        be = self.backend
        xp = getattr(be, "xp", None)
        if xp is not None:
            mid = (chain + rival) * 0.5
        else:  # no array arithmetic on the device (OpenCL): on the host
            mid = be.to_device(((np.asarray(be.to_host(chain), np.float64)
                                 + np.asarray(be.to_host(rival), np.float64)) * 0.5
                                ).astype(np.float32))
        a, b = self.loss(chain), self.loss(rival)
        distance = 2.0 * (a + b - 2.0 * self.loss(mid))
        return (a - b) / distance if distance > 0 else 0.0

    def __call__(self, k: int, point: Any, spectrum: Any = None) -> bool:
        if k == self.last_k:  # evaluated already (the final estimate)
            return False
        self.last_k = k
        if k < self.first:
            return False
        value = self.loss(point, spectrum)
        if value < self.best_loss:
            self.best_loss, self.best_k, self.since = value, k, 0
            if self.best is None:
                self.best = self.backend.empty(self.shape)
            self.best = self.backend.copy_into(point, self.best)
            return False
        self.since += 1
        return self.since >= self.patience


def check_auto(max_iterations: Any, gain: Any, offset: Any) -> tuple[int, float | None, float]:
    """Check the arguments of ``iterations="auto"``.

    Raises
    ------
    TypeError, ValueError
        Naming the argument.
    """
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, numbers.Integral):
        raise TypeError(f"max_iterations: must be an int, got {max_iterations!r}")
    if max_iterations < 1:
        raise ValueError(f"max_iterations: must be >= 1, got {max_iterations}")
    if gain is not None:
        if isinstance(gain, bool) or not isinstance(gain, numbers.Real):
            raise TypeError(f"gain: must be a number or None, got {gain!r}")
        if not (gain > 0 and np.isfinite(gain)):
            raise ValueError(f"gain: must be > 0 (image units per photon), got {gain}")
    return int(max_iterations), (float(gain) if gain is not None else None), check_offset(offset)


def check_offset(offset: Any) -> float:
    """The camera offset as a float.

    Raises
    ------
    TypeError
        Not a finite number.
    """
    if isinstance(offset, bool) or not isinstance(offset, numbers.Real) or not np.isfinite(offset):
        raise TypeError(f"offset: must be a finite number, got {offset!r}")
    return float(offset)


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == "auto"


#: the phases of ``iterations="auto"`` on the periodic grid, ``(accelerate, back
#: projector)``, the second from the first's best estimate: the Wiener-Butterworth back
#: projector (alpha 0.05) until the held-out loss stops improving, then the matched one
#: with momentum, which keeps its first update and goes on while the loss still falls
AUTO_PHASES = ((False, backprojector.check("wiener-butterworth", alpha=0.05)),
               ("momentum", backprojector.check("matched")))
#: the phase of ``iterations="auto"`` on padded grids (every boundary but periodic)
AUTO_PADDED_PHASES = (("momentum", backprojector.check("matched")),)
#: the phase of ``iterations="auto"`` with a depth-variant PSF (``psf_depths``), on every
#: boundary: the Wiener-Butterworth back projector of :data:`AUTO_PHASES` is built from
#: one OTF, and the strata model has none (:mod:`rlcore.autostop_strata`)
AUTO_STRATA_PHASES = AUTO_PADDED_PHASES


def phases(accelerate: Any, back_projector: Any, boundary: str = "periodic",
           strata: bool = False) -> tuple[tuple[Any, Any], ...]:
    """The phases of ``iterations="auto"``: :data:`AUTO_PHASES` (periodic),
    :data:`AUTO_PADDED_PHASES` (padded grids) or, with ``strata`` (a depth-variant PSF),
    :data:`AUTO_STRATA_PHASES` when both are "auto"; else one phase with what was given
    (a matched back projector defaults to momentum, an unmatched one to no acceleration;
    acceleration alone to the matched one)."""
    if (_is_auto(accelerate) or accelerate is None) and _is_auto(back_projector):
        if strata:
            return AUTO_STRATA_PHASES
        return AUTO_PHASES if boundary == "periodic" else AUTO_PADDED_PHASES
    bp = backprojector.check("matched" if _is_auto(back_projector) else back_projector)
    if _is_auto(accelerate) or accelerate is None:
        accelerate = "momentum" if bp.matched else False
    return ((accelerate, bp),)
