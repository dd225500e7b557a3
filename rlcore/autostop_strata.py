"""``iterations="auto"`` with a depth-variant PSF (``psf_depths``): the held-out loss of the
strata forward model.

:mod:`rlcore.autostop`'s held-out loss for one PSF of OTF ``H`` is

    ``L(x) = sum_f |P X - Z|^2 + g sum_f (1 - P)^2 |X|^2``, with ``P = |H|^2 / (|H|^2 + a)``
    and ``Z = conj(H) T / (|H|^2 + a)``

(``X``, ``T``: the half spectra of the estimate and of the test part). Because
``P X - Z = G (H X - T)`` with ``G = conj(H) / (|H|^2 + a)``, its first term is the test
part's residual against the forward projection, filtered by ``G``. That form needs only a
forward projection, which the strata model ``H_s x = sum_k h_k * (w_k x)`` (Preza &
Conchello 2004; :class:`rlcore.iteration.StrataConvolution`) has, where it has no single
OTF to invert. So, with ``M = rfftn(H_s x) = sum_k H_k rfftn(w_k x)``:

    ``L_s(x) = sum_f |G|^2 |M - T|^2 + g sum_f (1 - P)^2 |X|^2``

with ``|G|^2 = Q / (Q + a)^2``, ``P = Q / (Q + a)`` and ``Q = sum_k v_k |H_k|^2``: the
strata's power spectra weighed by each one's share ``v_k`` of the image's planes (its
weights' mean over them), ``a = CV_ALPHA max Q`` and ``g`` as for one PSF. The test part
``t`` is independent of the training part and ``E t = H_s x_true``, so ``L_s`` is (up to
a constant) an unbiased estimate of ``|G H_s (x - x_true)|^2``, the error of the estimate
within the band, for any fixed ``G``; the mean power only sets which band. With one
stratum, or K equal PSFs, ``Q = |H|^2`` and ``L_s = L`` exactly (tests/test_depth_variant.py
checks auto with K equal PSFs against auto with the one PSF). ``L_s`` is taken in the
spectrum: ``M`` costs the K forward transforms of a forward projection and no inverse one,
``X`` nothing more (:meth:`rlcore.iteration.StrataConvolution.model_spectrum`: the sum of
the K transforms), so an update of the auto run costs ``3 K + 2`` transforms against
``2 K + 2`` for a fixed count. It is written once, against the backend protocol
(``rfftn``, ``multiply``, ``multiply_spectrum``, ``copy_into``, ``spectral_loss`` and a sum
of arrays), so it runs on every backend.

The choices, and why:

- **Phases**: the matched back projector with momentum, stopped where ``L_s`` is least
  (:data:`rlcore.autostop.AUTO_STRATA_PHASES`), on every boundary. The periodic grid's
  first phase for one PSF, the Wiener-Butterworth back projector, is built from one OTF; a
  middle-depth PSF's would back-project with the wrong model away from that depth (on
  bench/depth_variant.py's phantom one PSF at the middle depth is 2-3x the error of K = 8
  strata), so it is not run. On the default boundary ("non-circulant-half") this is
  the one phase one PSF runs too; with only one phase there is no rival.
- **Padded grids**: as for one PSF, the loss is taken on the image region, on the image's
  own periodic grid (a strata operator there, with the image planes' weights), and its
  test part is corrected for that periodic model's mismatch at the faces
  (:func:`boundary_mismatch`, the strata form of :func:`rlcore.autostop.boundary_mismatch`).
- **Band**: ``Q`` is built once, on the host (each OTF downloaded once); the loss's
  weights then live on the device.
- **Memory**: beyond one PSF's auto run, the loss holds three half spectra (the
  out-of-band weights, a zero target and ``rfftn(x)``); on a padded grid also its strata
  operator on the image's grid (K OTFs, K weights and its buffers, of the image's size).

Measured in bench/results/depth-variant.md (``iterations="auto"`` beside each best count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from rlcore._system import usable_cpus
from rlcore.autostop import CV_ALPHA, MISMATCH_UPDATES, AutoStop, _image_region
from rlcore.iteration import StrataConvolution, strata_weights
from rlcore.protocol import spectrum_shape

__all__ = ["StrataHeldOut", "StrataStop", "boundary_mismatch", "image_strata"]


def image_strata(depths: tuple[float, ...], nz: int) -> tuple[np.ndarray, np.ndarray]:
    """The strata that weigh on an image of ``nz`` planes, and their weights there.

    Parameters
    ----------
    depths : tuple of K float
        The strata depths, voxels along z (checked: strictly increasing).
    nz : int
        The image's planes.

    Returns
    -------
    used : ndarray of int
        The indices of the strata whose weight is non-zero on some plane (as a plan holds:
        a padding plane weighs as an image plane).
    weights : ndarray, float64, ``(len(used), nz)``
        Their weights on the image's planes; each column sums to 1.
    """
    w = strata_weights(depths, np.arange(nz))
    used = np.flatnonzero(np.any(w > 0, axis=1))
    return used, w[used]


def _loss_operator(deconvolver: Any) -> tuple[StrataConvolution, np.ndarray]:
    """The strata operator the loss is taken on and each stratum's share of the image's
    planes: the plan's own on a periodic grid, else one on the image's periodic grid."""
    used, weights = image_strata(deconvolver.psf_depths, deconvolver.shape[0])
    if not deconvolver.grid.padded:
        return deconvolver.operator, weights.mean(axis=1)
    operator = StrataConvolution(deconvolver.backend, [deconvolver.psf[k] for k in used],
                                 weights, deconvolver.shape)
    return operator, weights.mean(axis=1)


def boundary_mismatch(deconvolver: Any, train: Any, operator: StrataConvolution,
                      updates: int = MISMATCH_UPDATES) -> np.ndarray:
    """``m = crop(H_s x) - H_image crop(x)`` for the strata model: what its periodic form on
    the image's grid (``operator``) misses of the data, for an object ``x`` that lives
    beyond the image too, estimated by ``updates`` updates with momentum of the half
    extension with the same strata on the training part; host, float32, the image's
    shape. :func:`rlcore.autostop.boundary_mismatch` computes it (and says why the test
    part is corrected by it) with the plans' own operators on the backend."""
    from rlcore import autostop

    m = autostop.boundary_mismatch(deconvolver, train, updates, periodic=operator)
    return np.asarray(deconvolver.backend.to_host(m), np.float32)


@dataclass(frozen=True)
class StrataHeldOut:
    """The test part in the band of the strata model (see the module docstring): on the
    device, the weights ``w |G|^2`` of the model's spectrum and the target
    ``w |G|^2 T``; on the host, the out-of-band weights ``w (1 - P)^2`` (``w``: the
    weights of the half spectrum's mirrored columns); ``operator`` the strata operator
    the loss is taken on, and ``grid`` the plan's grid when that is padded (the loss is
    then taken on its image region)."""

    operator: Any
    model: Any
    target: Any
    beyond: np.ndarray
    grid: Any = None

    @property
    def strata(self) -> int:
        """K, the strata that weigh on the image."""
        return self.operator.strata

    @classmethod
    def of(cls, deconvolver: Any, test: Any, train: Any = None) -> StrataHeldOut:
        """From the test part (image shape, host or device) and a depth-variant plan
        (``psf_depths`` with at least two strata on the image). ``train``: the training
        part, whose half-extension estimate corrects the test part for the periodic
        model's mismatch at the faces (:func:`boundary_mismatch`); None: no correction.

        Raises
        ------
        ValueError
            The plan has one PSF, or one stratum weighs on the image.
        """
        if deconvolver.psf_depths is None or deconvolver.strata < 2:
            raise ValueError("deconvolver: StrataHeldOut takes a plan with psf_depths and "
                             "at least two strata on the image; for one PSF (or one "
                             "stratum) use rlcore.autostop.HeldOut with it")
        be = deconvolver.backend
        operator, share = _loss_operator(deconvolver)
        t = np.asarray(be.to_host(test) if not isinstance(test, np.ndarray) else test,
                       np.float32)
        if train is not None:
            t = t - boundary_mismatch(deconvolver, train, operator)
        g2, beyond = _band(be, operator, share)
        spectrum = scipy.fft.rfftn(t, workers=usable_cpus()).astype(np.complex64)
        target = (g2 * spectrum).astype(np.complex64)
        return cls(operator, be.to_device(g2), be.to_device_spectrum(target), beyond,
                   deconvolver.grid if deconvolver.grid.padded else None)


def _band(backend: Any, operator: StrataConvolution, share: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """``w |G|^2`` and ``w (1 - P)^2`` (float32 half spectra, host) from the strata's
    OTFs (each downloaded once) and their shares of the image's planes; float64 inside
    (the loss is a difference of large sums: its weights are rounded once)."""
    power = None
    for otf, v in zip(operator.otfs, share):
        h = np.asarray(backend.to_host(otf)).astype(np.complex128)
        part = v * (h.real * h.real + h.imag * h.imag)
        power = part if power is None else power + part
    denominator = power + CV_ALPHA * power.max()
    p = power / denominator
    shape = operator.shape
    n = float(np.prod(shape))
    # columns 1 .. n/2-1 of the last axis stand for two (conjugate) frequencies
    w = np.full(spectrum_shape(tuple(shape))[-1], 2.0 / n)
    w[0] = 1.0 / n
    if shape[-1] % 2 == 0:
        w[-1] = 1.0 / n
    g2 = w * power / (denominator * denominator)
    beyond = w * (1.0 - p) ** 2
    return g2.astype(np.float32), beyond.astype(np.float32)


@dataclass
class StrataStop(AutoStop):
    """:class:`rlcore.autostop.AutoStop` with the strata model's held-out loss ``L_s``
    (module docstring): the iteration's ``monitor``, which keeps the best estimate.
    Built by :meth:`build`; ``weight`` and ``target`` are those of the model's spectrum,
    ``beyond`` the out-of-band term's weights ``g w (1 - P)^2`` on the device (None:
    ``g = 0``), ``zero`` its target and ``plain`` the buffer of ``rfftn(x)``."""

    beyond: Any = None
    zero: Any = None
    plain: Any = None

    @classmethod
    def build(cls, deconvolver: Any, test: Any, *, out_of_band: float,
              patience: int = 2, first: int = 0) -> StrataStop:
        """As :meth:`rlcore.autostop.AutoStop.build`, for a depth-variant plan; ``test``:
        the test part or its :class:`StrataHeldOut` band (made once for several plans)."""
        if not isinstance(test, StrataHeldOut):
            test = StrataHeldOut.of(deconvolver, test)
        be = deconvolver.backend
        beyond = zero = plain = None
        if out_of_band:
            beyond = be.to_device(np.ascontiguousarray(out_of_band * test.beyond,
                                                       dtype=np.float32))
            zero = be.to_device_spectrum(np.zeros(test.beyond.shape, np.complex64))
            plain = be.empty(spectrum_shape(tuple(test.operator.shape)), complex=True)
        return cls(be, test.operator, test.model, test.target, patience,
                   tuple(deconvolver.operator.shape), test.grid, first=first,
                   beyond=beyond, zero=zero, plain=plain)

    def loss(self, point: Any, spectrum: Any = None) -> float:
        """``L_s`` of a grid estimate (``spectrum``, its ``rfftn``, is not used: the loss
        reads the forward projection's spectrum, made here)."""
        be = self.backend
        if self.region is not None:
            point = _image_region(be, self.region, point)
        model, plain = self.operator.model_spectrum(point, self.plain)
        value = be.spectral_loss(model, self.weight, self.target)
        if self.beyond is not None:
            value += be.spectral_loss(plain, self.beyond, self.zero)
        return value
