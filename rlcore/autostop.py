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

   ``L(x) = sum_f |P X - Z|^2``  (+ ``sum_f (1 - P)^2 |X|^2`` for the matched back
   projector, whose noise grows beyond the band),

   an unbiased estimate (up to a constant) of the squared error within the band, since
   ``Z`` is independent of the training data. ``a = 1e-4`` (relative to ``max |OTF|^2``).
3. **Stop** when ``L`` has not improved for ``patience`` (2) updates (or at
   ``max_iterations``) and return the training estimate with the smallest ``L``, scaled to
   the whole image's units.

Nothing here needs the ground truth; each run costs one more real FFT per update and, on
the device, one half spectrum and two buffers of the grid (the test spectrum and the best
estimate).
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from rlcore.protocol import spectrum_shape

__all__ = ["AutoStop", "noise_model", "split", "DEFAULT_FRACTION", "CV_ALPHA"]

logger = logging.getLogger(__name__)

#: the training fraction of the split
DEFAULT_FRACTION = 0.9
#: voxels the noise model is fitted on (a central crop of larger images)
_NOISE_VOXELS = 1 << 17
#: weight of the band filter P = |OTF|^2 / (|OTF|^2 + CV_ALPHA)
CV_ALPHA = 1e-4


def noise_model(image: np.ndarray, offset: float = 0.0) -> tuple[float, float]:
    """Fit ``var(y) = gain * max(y - offset, 0) + read_var`` to the image's own noise.

    The noise is read from the residual of each voxel against the mean of its 2 * ndim
    neighbours (a blurred image is smooth at that scale), its variance by the median
    absolute deviation in 24 bins of the local mean, and a straight line fitted through
    the bins (Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for
    single-image raw-data", IEEE TIP 17 (2008) 1737).

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
    y = np.asarray(image)
    if y.size > _NOISE_VOXELS:  # a central crop is enough (and bounds the cost)
        side = max(int(round(_NOISE_VOXELS ** (1 / y.ndim))), 8)
        y = y[tuple(slice(max(n // 2 - side // 2, 0), max(n // 2 - side // 2, 0) + side)
                    for n in y.shape)]
    y = np.asarray(y, dtype=np.float64)
    if y.size < 2000:
        return 1.0, 0.0
    kernel = np.zeros((3,) * y.ndim)
    centre = (1,) * y.ndim
    for axis in range(y.ndim):
        for side in (0, 2):
            index = list(centre)
            index[axis] = side
            kernel[tuple(index)] = -1.0 / (2 * y.ndim)
    kernel[centre] = 1.0
    residual = ndi.convolve(y, kernel, mode="reflect")
    local = ndi.uniform_filter(y, 3, mode="reflect") - offset
    scale = 1.0 + 1.0 / (2 * y.ndim)  # variance of the residual of white noise
    edges = np.quantile(local, np.linspace(0.02, 0.98, 25))
    means, variances = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        sel = (local >= low) & (local < high)
        if sel.sum() < 200:
            continue
        r = residual[sel]
        mad = np.median(np.abs(r - np.median(r)))
        means.append(float(local[sel].mean()))
        variances.append(float((1.4826 * mad) ** 2 / scale))
    if len(means) < 2 or np.ptp(means) <= 0:
        return 1.0, float(np.median(variances)) if variances else 0.0
    gain, read_var = np.polyfit(means, variances, 1)
    return max(float(gain), 0.0), max(float(read_var), 0.0)


def _integer_valued(y: np.ndarray) -> bool:
    """Non-negative integers small enough to count (binomial thinning takes int64)."""
    return bool(y.min() >= 0 and y.max() < 2.0**52
                and np.all(np.abs(y - np.round(y)) < 1e-3))


def split(image: np.ndarray, *, fraction: float = DEFAULT_FRACTION, gain: float | None = None,
          offset: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Split the image into independent training and test parts (see module docstring).

    Returns
    -------
    train, test : ndarray, float32, the image's shape
        Both unbiased for ``image - offset`` (train clipped at 0; test may be negative).
    method : str
        ``"binomial"`` (photon counts) or ``"gaussian"`` (fission with the noise model).
    """
    y = np.asarray(image, dtype=np.float64)
    rng = np.random.default_rng(seed)
    # photon counts are thinned as recorded (background photons are Poisson too); the
    # offset is removed from both parts afterwards
    counts = y / gain if gain else y
    if gain is None:
        estimated_gain, read_var = noise_model(y, offset)
        # integer data whose noise grows like photon counts' (gain near 1: the fit reads
        # some of the signal's curvature as noise, so the band is generous)
        is_counts = _integer_valued(counts) and 0.6 <= estimated_gain <= 1.6
    else:
        estimated_gain, read_var = gain, 0.0
        is_counts = _integer_valued(counts)
    if is_counts:
        k = np.round(counts).astype(np.int64)
        a = rng.binomial(k, fraction).astype(np.float64)
        g = gain or 1.0
        train = g * a / fraction - offset
        test = g * (k - a) / (1 - fraction) - offset
        method = "binomial"
    else:
        var = estimated_gain * np.clip(y - offset, 0, None) + read_var
        tau = np.sqrt((1 - fraction) / fraction)
        z = rng.normal(size=y.shape) * np.sqrt(np.maximum(var, 1e-12))
        train, test, method = y - offset + tau * z, y - offset - z / tau, "gaussian"
    logger.info("iterations='auto': %s split, gain %.3g, read variance %.3g", method,
                estimated_gain, read_var)
    return (np.clip(train, 0, None).astype(np.float32), test.astype(np.float32), method)


@dataclass
class AutoStop:
    """The held-out loss of step 2 on a grid, with the best estimate kept.

    Built by :meth:`build`; :meth:`__call__` is the iteration's ``monitor``.
    """

    backend: Any
    operator: Any
    weight: Any  # A = w (|P - 1|^2 + P^2 ...) as a real half spectrum (see build)
    target: Any  # C = w P Z, complex half spectrum
    patience: int
    best: Any = None
    best_loss: float = float("inf")
    best_k: int = 0
    since: int = 0
    last_k: int = -1

    @classmethod
    def build(cls, deconvolver: Any, test: np.ndarray, *, out_of_band: bool,
              patience: int = 2) -> AutoStop:
        """Precompute ``A`` and ``C`` so that ``L(x) = sum A |X|^2 - 2 Re(conj(X) C)``
        (+ a constant) on the half spectrum ``X = rfftn(x)`` (``A`` holds the weights
        of the half spectrum's mirrored columns)."""
        be, grid, op = deconvolver.backend, deconvolver.grid, deconvolver.operator
        otf = np.asarray(be.to_host(op.otf)).astype(np.complex128)
        n = float(np.prod(grid.shape))
        power = np.abs(otf) ** 2
        p = power / (power + CV_ALPHA * power.max())
        embedded = grid.embed(np.asarray(test, np.float32)) if grid.padded else test
        t = np.fft.rfftn(np.asarray(embedded, np.float64))
        z = np.conj(otf) * t / (power + CV_ALPHA * power.max())
        a = p * p + ((1 - p) ** 2 if out_of_band else 0.0)
        c = p * z
        # columns 1 .. n/2-1 of the last axis stand for two (conjugate) frequencies
        w = np.full(spectrum_shape(grid.shape)[-1], 2.0)
        w[0] = 1.0
        if grid.shape[-1] % 2 == 0:
            w[-1] = 1.0
        a = a * w / n
        c = c * w / n
        weight = be.to_device(np.ascontiguousarray(a, dtype=np.float32))
        target = be.to_device_spectrum(np.ascontiguousarray(c, dtype=np.complex64))
        return cls(be, op, weight, target, patience)

    def loss(self, point: Any) -> float:
        spectrum = self.backend.rfftn(point, out=self.operator._spectrum)
        return self.backend.spectral_loss(spectrum, self.weight, self.target)

    def __call__(self, k: int, model: Any, point: Any) -> bool:
        if k == self.last_k:  # evaluated already (the final estimate)
            return False
        self.last_k = k
        value = self.loss(point)
        if value < self.best_loss:
            self.best_loss, self.best_k, self.since = value, k, 0
            if self.best is None:
                self.best = self.backend.empty(self.operator.shape)
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
