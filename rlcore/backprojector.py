"""Back projectors: the kernel applied in the second half of an RL update.

Classic RL back-projects the ratio ``image / H x`` with the exact adjoint ``H^T`` (the
*matched* back projector: correlation with the PSF, the conjugate OTF). An *unmatched*
back projector ``B`` replaces it, ``x <- x * B(image / H x)``, and reaches the same
resolution in far fewer updates because ``B`` does not damp the frequencies that the PSF
already damped (Guo et al. 2020). Each back projector here is a kernel of the PSF's shape,
centre voxel at ``n // 2``, sum 1, so it goes onto the grid and through the FFT exactly as
the PSF does (:class:`rlcore.iteration.Convolution`): one more half spectrum, no second
code path.

``"wiener-butterworth"``
    Guo, M. et al., "Rapid image deconvolution and multiview fusion for optical
    microscopy", Nat. Biotechnol. 38, 1337-1346 (2020), Methods and Supplementary Note 2:
    ``B = W * BW`` with the Wiener filter ``W = conj(OTF) / (|OTF|^2 + alpha)`` (OTF
    normalised to a maximum of 1) and the Butterworth filter
    ``BW = 1 / sqrt(1 + e * (sum_i (k_i / kc_i)^2)^n)``, cut-off ``kc_i = 1 / FWHM_i``
    (cycles per voxel, FWHM of the PSF along axis ``i`` in voxels) and ``e`` chosen so that
    ``|B|`` at the cut-off equals ``beta`` (``e = |W(kc)| / beta^2 - 1``).
``"otf-masked"``
    Ruan, X. et al., "Image processing tools for petabyte-scale light sheet microscopy
    data", Nat. Methods 21, 2342-2352 (2024) (PetaKit5D, OTF-masked Wiener, OMW): the Wiener
    filter restricted to the OTF's support, i.e. the frequencies holding ``support`` of the
    cumulative |OTF| (largest first), with a cos^2 (Hann) roll-off over the outer
    ``1 - 0.8`` of the support radius in every direction.

All spectra are computed in float64 on the host, on the PSF's own array (as Guo's
``BackProjector.m`` does), once per run.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import ndimage as ndi

from rlcore._system import usable_cpus

__all__ = ["BACK_PROJECTORS", "BackProjector", "kernel", "check"]

BACK_PROJECTORS = ("matched", "wiener-butterworth", "otf-masked")


@dataclass(frozen=True)
class BackProjector:
    """A checked back-projector choice (see the module docstring for the formulas).

    Attributes
    ----------
    kind : {"matched", "wiener-butterworth", "otf-masked"}
    alpha : float
        Wiener weight, relative to ``max |OTF|^2 = 1``; in (0, 1]. Larger damps noise more.
    beta : float or None
        Wiener-Butterworth only: gain of the back projector at the cut-off, in (0, 1);
        None takes the gain of the matched back projector there (Guo's ``beta = 1``
        option), so that the WB projector is never sharper at the cut-off than the
        PSF's own OTF.
    order : int
        Wiener-Butterworth only: Butterworth order ``n`` (Guo: 4-15).
    support : float
        OTF-masked only: fraction of the cumulative |OTF| that defines the support, in
        (0, 1) (PetaKit5D's ``OTFCumThresh``).
    """

    kind: str = "matched"
    alpha: float = 0.001
    beta: float | None = None
    order: int = 10
    support: float = 0.9

    @property
    def matched(self) -> bool:
        return self.kind == "matched"


def _number(value, name: str, low: float, high: float, *, closed_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be a number, got {value!r}")
    ok = low < value <= high if closed_high else low < value < high
    if not ok:
        right = "]" if closed_high else ")"
        raise ValueError(f"{name}: must be in ({low:g}, {high:g}{right}, got {value}")
    return float(value)


def check(back_projector: str | BackProjector, *, alpha=None, beta=None, order=None,
          support=None) -> BackProjector:
    """A :class:`BackProjector` from a name (or an instance) and optional parameters.

    Defaults when None: ``alpha`` 0.001 for Wiener-Butterworth (Guo's default), 0.005 for
    OTF-masked (PetaKit5D's ``wienerAlpha``); ``beta`` None (the matched gain at the
    cut-off); ``order`` 10; ``support`` 0.9.

    Raises
    ------
    TypeError
        A parameter of the wrong type.
    ValueError
        An unknown name, or a parameter outside its range.
    """
    if isinstance(back_projector, BackProjector):
        base = back_projector
    elif isinstance(back_projector, str):
        if back_projector not in BACK_PROJECTORS:
            raise ValueError(f"back_projector: must be one of {BACK_PROJECTORS}, got "
                             f"{back_projector!r}")
        default_alpha = 0.005 if back_projector == "otf-masked" else 0.001
        base = BackProjector(back_projector, alpha=default_alpha)
    else:
        raise TypeError(f"back_projector: must be a name {BACK_PROJECTORS}, got "
                        f"{back_projector!r}")
    a = base.alpha if alpha is None else _number(alpha, "alpha", 0, 1, closed_high=True)
    b = base.beta if beta is None else _number(beta, "beta", 0, 1)
    s = base.support if support is None else _number(support, "support", 0, 1)
    n = base.order
    if order is not None:
        if isinstance(order, bool) or not isinstance(order, numbers.Integral):
            raise TypeError(f"order: must be an int, got {order!r}")
        if not 1 <= order <= 32:
            raise ValueError(f"order: must be in [1, 32], got {order}")
        n = int(order)
    return BackProjector(base.kind, alpha=a, beta=b, order=n, support=s)


def _centred_spectrum(psf: np.ndarray, half: bool = False) -> np.ndarray:
    """Float64 spectrum of the PSF with its centre voxel ``n // 2`` at index 0: full, or
    the half spectrum of the last axis (``half``, for Hermitian back projectors)."""
    shift = tuple(-(n // 2) for n in psf.shape)
    transform = scipy.fft.rfftn if half else scipy.fft.fftn
    return transform(np.roll(psf, shift, axis=tuple(range(psf.ndim))), workers=usable_cpus())


def _frequencies(shape: tuple[int, ...], half: bool = False) -> list[np.ndarray]:
    """Per-axis frequencies (cycles per voxel), broadcastable over the spectrum of
    ``shape`` (the half spectrum's last axis with ``half``)."""
    out = []
    for axis, n in enumerate(shape):
        f = np.fft.rfftfreq(n) if half and axis == len(shape) - 1 else np.fft.fftfreq(n)
        out.append(f.reshape([f.size if a == axis else 1 for a in range(len(shape))]))
    return out


def _fwhm(psf: np.ndarray) -> tuple[float, ...]:
    from rlcore._psfmath import fwhm

    return tuple(max(w, 1.0) for w in fwhm(psf))


def _wiener_butterworth(psf: np.ndarray, bp: BackProjector) -> np.ndarray:
    """The half spectrum (last axis) of the WB back projector: Hermitian, as the PSF's
    OTF is and the Butterworth filter (even in every frequency) keeps it."""
    otf = _centred_spectrum(psf, half=True)
    otf = otf / np.abs(otf).max()
    wiener = np.conj(otf) / (np.abs(otf) ** 2 + bp.alpha)
    freqs = _frequencies(psf.shape, half=True)
    cutoff = [1.0 / w for w in _fwhm(psf)]
    w = sum((f / c) ** 2 for f, c in zip(freqs, cutoff))
    # gains at the cut-off along the last axis (Guo: along x), on the frequency sample
    # nearest to it; the matched gain there is beta's default
    line = tuple([0] * (psf.ndim - 1))
    n = psf.shape[-1]
    k = min(max(int(round(cutoff[-1] * n)), 1), n // 2)
    gain_wiener = float(np.abs(wiener[line + (k,)]))
    beta = bp.beta if bp.beta is not None else float(np.abs(otf[line + (k,)]))
    beta = min(max(beta, 1e-6), 0.999)
    e = max(gain_wiener / beta**2 - 1.0, 0.0)
    butterworth = 1.0 / np.sqrt(1.0 + e * w ** bp.order)
    return wiener * butterworth


def _hann_support(mask: np.ndarray, inner: float = 0.8) -> np.ndarray:
    """cos^2 roll-off of a support mask (full spectrum, DC at index 0): 1 inside ``inner``
    of the support radius in each direction, 0 outside the support."""
    shifted = np.fft.fftshift(mask)
    centre = tuple(n // 2 for n in mask.shape)
    labels, _ = ndi.label(shifted)
    shifted = labels == labels[centre]  # the part connected to DC
    shifted = ndi.binary_fill_holes(shifted)
    sampling = tuple(1.0 / n for n in mask.shape)  # frequency units, per axis
    inside = ndi.distance_transform_edt(shifted, sampling=sampling)
    grids = np.meshgrid(*[(np.arange(n) - n // 2) / n for n in mask.shape], indexing="ij")
    radius = np.sqrt(sum(g * g for g in grids))
    relative = radius / np.maximum(radius + inside, 1e-12)  # ~ r / R along the ray
    ramp = np.clip((relative - inner) / (1 - inner), 0, 1)
    weight = np.where(shifted, np.cos(0.5 * np.pi * ramp) ** 2, 0.0)
    return np.fft.ifftshift(weight)


def _otf_masked(psf: np.ndarray, bp: BackProjector) -> np.ndarray:
    otf = _centred_spectrum(psf)
    otf = otf / np.abs(otf).max()
    magnitude = np.abs(otf)
    values = np.sort(magnitude.ravel())[::-1]
    cumulative = np.cumsum(values) / values.sum()
    threshold = values[min(int(np.searchsorted(cumulative, bp.support)), values.size - 1)]
    mask = magnitude >= threshold
    wiener = np.conj(otf) / (magnitude**2 + bp.alpha)
    return wiener * _hann_support(mask)


def kernel(psf: np.ndarray, bp: BackProjector) -> np.ndarray:
    """The back projector as a kernel of the PSF's shape, centre voxel ``n // 2``, sum 1.

    Convolving with it (OTF not conjugated) is the back projection; for ``"matched"``
    this is the PSF mirrored about its centre voxel, i.e. ``H^T``.

    Parameters
    ----------
    psf : ndarray, shape ``(Z, Y, X)`` or ``(Y, X)``
        The normalised PSF (sum 1, non-negative), centre voxel ``n // 2``.
    bp : BackProjector

    Returns
    -------
    ndarray, float32, ``psf.shape``
        May hold negative values (Wiener filters do); the RL update clips the estimate
        at 0 for unmatched back projectors.
    """
    p = np.asarray(psf, dtype=np.float64)
    if bp.kind == "matched":
        spectrum = np.conj(_centred_spectrum(p))
    elif bp.kind == "wiener-butterworth":
        spectrum = _wiener_butterworth(p, bp)
    else:
        spectrum = _otf_masked(p, bp)
    spectrum = spectrum / spectrum.flat[0].real  # sum 1: the flux of the ratio is kept
    if spectrum.shape == p.shape:
        b = scipy.fft.ifftn(spectrum, workers=usable_cpus()).real
    else:  # a Hermitian half spectrum
        b = scipy.fft.irfftn(spectrum, s=p.shape, workers=usable_cpus())
    b = np.roll(b, tuple(n // 2 for n in p.shape), axis=tuple(range(p.ndim)))
    return (b / b.sum()).astype(np.float32)
