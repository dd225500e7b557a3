"""The Richardson-Lucy iteration, written once against :class:`rlcore.protocol.Backend`.

Richardson (1972), Lucy (1974); in the notation of Bertero & Boccacci (2005), eq. (4):

    x_{k+1} = x_k * H^T( y / (H x_k) )

with ``y`` the image, ``H`` the circular convolution by the PSF on the grid (its OTF is
computed once) and ``H^T`` its exact adjoint, the circular correlation (conjugate OTF).
The division is guarded (see :meth:`Backend.divide_guarded`): where ``H x_k <= guard``
the ratio is 0, which keeps every value finite.

A depth-variant PSF is another operator in the same iteration: :class:`StrataConvolution`,
the strata model of Preza & Conchello (2004), ``H x = sum_k h_k * (w_k x)`` with its exact
adjoint, and the same interface as :class:`Convolution`.

Nothing here knows which backend runs it or which boundary mode built the grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcore.boundary import place_psf
from rlcore.protocol import Array, Backend, HostPlacement, spectrum_shape

__all__ = ["Convolution", "StrataConvolution", "Options", "richardson_lucy", "strata_weights"]


def kernel_spectrum(backend: Backend, kernel: np.ndarray, shape: tuple[int, ...],
                    work: Array) -> tuple[Array, Array]:
    """Half spectrum of a kernel (centre voxel ``n // 2``) placed on a grid of ``shape``,
    and the work buffer (grid-sized, real) the placement went through (a backend may
    return a new one), so that no other grid-sized array is allocated."""
    if isinstance(backend, HostPlacement):  # a backend may place on the host
        work = backend.place_psf(kernel, shape, work)
    else:
        work = place_psf(backend.to_device(np.asarray(kernel, np.float32)), shape, out=work)
    spectrum = backend.empty(spectrum_shape(shape), complex=True)
    return backend.rfftn(work, out=spectrum), work


class Convolution:
    """``H`` (convolution by a PSF) and ``H^T`` (correlation) on a periodic grid.

    Parameters
    ----------
    backend : Backend
        Where to compute.
    psf : ndarray, float32, no larger than ``grid_shape``
        The normalised PSF, centre voxel at ``n // 2``; it is uploaded as is and placed on
        the grid on the device (:func:`rlcore.boundary.place_psf`), then transformed once.
    grid_shape : tuple of int
        Shape of the (periodic) grid.

    Notes
    -----
    Holds the OTF and one spectrum work buffer (half spectra), and one real work buffer
    (:attr:`work`), which first holds the placed PSF while the OTF is computed, so that no
    grid-sized PSF is ever allocated besides the buffers the iteration needs anyway. The
    two work buffers may share memory (``backend.work_buffers``): every step reads one
    and writes the other, and none needs both afterwards.
    """

    def __init__(self, backend: Backend, psf: np.ndarray, grid_shape: tuple[int, ...],
                 back: np.ndarray | None = None):
        self.backend = backend
        self.shape = tuple(grid_shape)
        backend.plan(self.shape)
        pair = getattr(backend, "work_buffers", None)
        self.work, self._spectrum = (pair(self.shape) if pair is not None else (
            backend.empty(self.shape), backend.empty(spectrum_shape(self.shape), complex=True)))
        self.otf = self._spectrum_of(psf)
        #: the unmatched back projector's spectrum (None: the conjugate OTF, exact H^T)
        self.back = None if back is None else self._spectrum_of(back)

    def _spectrum_of(self, kernel: np.ndarray):
        """Half spectrum of a kernel (centre voxel ``n // 2``) placed on the grid; the
        placement goes through :attr:`work`, so no other grid-sized array is allocated."""
        spectrum, self.work = kernel_spectrum(self.backend, kernel, self.shape, self.work)
        return spectrum

    def _apply(self, x: Array, out: Array | None, conjugate: bool) -> Array:
        return self.backend.apply_otf(
            x, self.otf, conjugate=conjugate, work=self._spectrum, out=out
        )

    def forward(self, x: Array, out: Array | None = None) -> Array:
        """``H x``: circular convolution of ``x`` (grid shape) by the PSF."""
        return self._apply(x, out, conjugate=False)

    def forward_observed(self, x: Array, observe: Callable[[Array], bool],
                         out: Array | None = None) -> tuple[Array | None, bool]:
        """``H x`` as :meth:`forward`, showing ``observe`` the half spectrum ``rfftn(x)``
        on the way (before the OTF product), so that a monitor of the estimate needs no
        transform of its own. Returns ``(H x, False)``, or ``(None, True)`` when
        ``observe`` returned True (the product is then not made)."""
        b = self.backend
        spectrum = b.rfftn(x, out=self._spectrum)
        if observe(spectrum):
            return None, True
        spectrum = b.multiply_spectrum(spectrum, self.otf)
        return b.irfftn(spectrum, self.shape, out=out), False

    def adjoint(self, y: Array, out: Array | None = None) -> Array:
        """``H^T y``: circular correlation of ``y`` with the PSF (conjugate OTF)."""
        return self._apply(y, out, conjugate=True)

    def back_project(self, y: Array, out: Array | None = None) -> Array:
        """The back projection of the RL update: :meth:`adjoint`, or the convolution by
        the unmatched back projector when one was given."""
        if self.back is None:
            return self.adjoint(y, out)
        return self.backend.apply_otf(y, self.back, conjugate=False, work=self._spectrum,
                                      out=out)


def strata_weights(depths: Any, z: Any) -> np.ndarray:
    """The strata weights ``w_k(z)`` (Preza & Conchello 2004): linear interpolation
    between neighbouring strata depths, constant beyond the first and the last.

    Parameters
    ----------
    depths : sequence of K float
        The strata depths, strictly increasing (K >= 1).
    z : array of float
        The depths at which to weigh, in the same unit (voxels along axis 0).

    Returns
    -------
    ndarray, float64, ``(K, len(z))``
        ``w[k, i]``: the weight of stratum ``k`` at ``z[i]``; every column sums to 1 and
        has at most two non-zero entries (neighbouring strata).
    """
    d = np.asarray(depths, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64).ravel()
    eye = np.eye(len(d))
    return np.stack([np.interp(z, d, eye[k]) for k in range(len(d))])


def _add(b: Backend, total: Array, term: Array) -> Array:
    """``total + term``, in place in ``total`` where the arrays allow: the backend's
    ``add`` where it has one (an optional fused operation), else the arrays' own ``+=``,
    which NumPy, CuPy, pyopencl and array-API arrays all have (the protocol has no sum:
    only the strata operator needs one)."""
    fused = getattr(b, "add", None)
    if fused is not None:
        return fused(total, term)
    total += term
    return total


class StrataConvolution:
    """The depth-variant operator of the strata model (Preza & Conchello, JOSA A 21 (2004)
    1593) on a grid: ``H x = sum_k h_k * (w_k x)`` and its exact adjoint ``H^T r =
    sum_k w_k (h_k correlated with r)``, with :class:`Convolution`'s interface.

    Parameters
    ----------
    backend : Backend
        Where to compute.
    psfs : sequence of K ndarray, float32, one shape, no larger than ``grid_shape``
        The normalised PSFs of the strata (centre voxel ``n // 2``).
    weights : ndarray, ``(K, grid_shape[0])``
        ``w_k`` on the grid's planes (axis 0): :func:`strata_weights` of each plane's
        depth, the image's first or last plane's beyond the image (padding).
    grid_shape : tuple of int
        Shape of the (periodic) grid.

    Notes
    -----
    Built only from the backend protocol's operations and a sum (:func:`_add`), so it runs
    on every backend. The K OTFs are computed once. ``forward`` costs K forward real FFTs
    and one inverse (the K products summed in the spectrum), ``adjoint`` one forward and K
    inverse (the K weighted correlations summed on the grid): ``2 K + 2`` transforms per
    RL update instead of 4. Holds K OTFs, K weights (grid-sized, float32), two real work
    buffers (:attr:`work` and a term) and two spectrum buffers.
    """

    #: no unmatched back projector: :meth:`back_project` is the exact adjoint
    back = None

    def __init__(self, backend: Backend, psfs: Any, weights: np.ndarray,
                 grid_shape: tuple[int, ...]):
        self.backend = backend
        self.shape = tuple(grid_shape)
        backend.plan(self.shape)
        self.work = backend.empty(self.shape)
        self._term = backend.empty(self.shape)
        self._spectrum = backend.empty(spectrum_shape(self.shape), complex=True)
        self._total = backend.empty(spectrum_shape(self.shape), complex=True)
        self.otfs = []
        for psf in psfs:
            otf, self.work = kernel_spectrum(backend, psf, self.shape, self.work)
            self.otfs.append(otf)
        column = (-1,) + (1,) * (len(self.shape) - 1)
        self.weights = [backend.to_device(np.ascontiguousarray(np.broadcast_to(
            np.asarray(w, np.float32).reshape(column), self.shape))) for w in weights]
        if len(self.weights) != len(self.otfs):
            raise ValueError(f"weights: {len(self.weights)} rows for {len(self.otfs)} PSFs")

    @property
    def strata(self) -> int:
        """K, the number of strata (PSFs) the operator sums over."""
        return len(self.otfs)

    def forward(self, x: Array, out: Array | None = None) -> Array:
        """``H x = sum_k h_k * (w_k x)``, the sum taken in the spectrum (one inverse
        transform); ``x`` is left unchanged."""
        return self.backend.irfftn(self.model_spectrum(x)[0], self.shape, out=out)

    def model_spectrum(self, x: Array, plain: Array | None = None
                       ) -> tuple[Array, Array | None]:
        """``rfftn(H x) = sum_k OTF_k rfftn(w_k x)``: the forward projection's half
        spectrum, before its inverse transform (K forward transforms), in the operator's
        spectrum buffer (valid until the operator's next call); ``x`` is left unchanged.

        ``plain``: a half-spectrum buffer for ``sum_k rfftn(w_k x)``, made on the way (no
        transform more), which is ``rfftn(x)`` because the weights of every plane sum to
        1 (:func:`strata_weights`; a stratum left out of a plan weighs 0 on every plane).
        Returns both (the second None without ``plain``; a backend whose ``copy_into``
        makes a new array returns that, not the buffer). The held-out loss of
        ``iterations="auto"`` reads both (:mod:`rlcore.autostop_strata`)."""
        b = self.backend
        total = None
        for otf, w in zip(self.otfs, self.weights):
            term = b.multiply(b.copy_into(x, self._term), w)
            spectrum = b.rfftn(term, out=self._total if total is None else self._spectrum)
            if plain is not None:
                plain = (b.copy_into(spectrum, plain) if total is None
                         else _add(b, plain, spectrum))
            spectrum = b.multiply_spectrum(spectrum, otf)
            total = spectrum if total is None else _add(b, total, spectrum)
        return total, plain

    def forward_observed(self, x: Array, observe: Callable[[Array], bool],
                         out: Array | None = None) -> tuple[Array | None, bool]:
        """As :meth:`Convolution.forward_observed`: ``observe`` is shown ``rfftn(x)``
        first (one transform more than :meth:`forward`, which never transforms ``x``
        itself)."""
        if observe(self.backend.rfftn(x, out=self._total)):
            return None, True
        return self.forward(x, out=out), False

    def adjoint(self, y: Array, out: Array | None = None) -> Array:
        """``H^T y = sum_k w_k (h_k correlated with y)`` (conjugate OTFs); ``out`` may be
        ``y`` itself (it is transformed first)."""
        b = self.backend
        spectrum_y = b.rfftn(y, out=self._total)
        result = None
        for otf, w in zip(self.otfs, self.weights):
            spectrum = b.multiply_spectrum(b.copy_into(spectrum_y, self._spectrum), otf,
                                           conjugate=True)
            if result is None:
                result = b.multiply(b.irfftn(spectrum, self.shape, out=out), w)
            else:
                term = b.multiply(b.irfftn(spectrum, self.shape, out=self._term), w)
                result = _add(b, result, term)
        return result

    def back_project(self, y: Array, out: Array | None = None) -> Array:
        """The back projection of the RL update: the exact adjoint (:meth:`adjoint`)."""
        return self.adjoint(y, out)


@dataclass(frozen=True)
class Options:
    """Variants of the update, all off by default (plain RL).

    Attributes
    ----------
    normalization : array or None
        ``1 / H^T M`` on the grid (``M`` the measured-voxel mask), multiplied into every
        update: the non-circulant RL of Bertero & Boccacci (2005), eq. (9).
    accelerate : {None, "biggs-andrews", "momentum"}
        ``"biggs-andrews"``: Biggs & Andrews (1997) first-order vector extrapolation:
        ``y = x_k + a (x_k - x_{k-1})`` clipped to >= 0, RL applied to ``y``, and
        ``a = sum(g_k g_{k-1}) / sum(g_{k-1}^2)`` clipped to [0, 1], where ``g_k`` is the
        step RL made from ``y``; ``a = 0`` for the first two updates. ``"momentum"``: the
        scaled heavy ball of deconwolf (Wernersson et al. 2024): the same extrapolation
        with the fixed schedule ``a_k = (k - 1) / (k + 2)``.
    clip : bool
        Clip the back-projected ratio at 0 (unmatched back projectors have negative
        lobes; this keeps the estimate >= 0).
    monitor : callable or None
        ``monitor(k, x_k, spectrum)`` at the start of update ``k + 1``, with the
        estimate ``x_k`` after ``k`` updates and, without acceleration, ``spectrum`` its
        half spectrum ``rfftn(x_k)`` on the grid (the forward projection's own
        transform, :meth:`Convolution.forward_observed`; valid during the call only),
        else None; returning True stops the run before that update (``x_k`` is
        returned).
    tv : float
        RLTV weight (Dey et al. 2006, eq. 9): the update is divided by
        ``1 - tv * div(grad x / |grad x|)``; 0 disables it.
    tol : float or None
        Stop when ``||x_{k+1} - y_k|| / ||y_k||`` (the relative change made by the RL
        update; ``y_k = x_k`` without acceleration) falls below ``tol``.
    """

    normalization: Array | None = None
    accelerate: str | None = None
    tv: float = 0.0
    tol: float | None = None
    clip: bool = False
    monitor: Callable[[int, Array, Array], bool] | None = None
    #: the grid (:class:`rlcore.boundary.Grid`) when ``image`` holds only its image region
    #: (a :class:`rlcore.protocol.RegionData` backend, data zero outside it)
    region: object | None = None
    #: ``observe(k, x)`` with the grid estimate after update k
    observe: Callable[[int, Array], object] | None = None


def _multiply_extrapolate(b: Backend, y: Array, w: Array, x: Array, alpha: float,
                          positive: bool) -> tuple[Array, Array]:
    """The momentum update ``x_k = y * w`` (``w`` clipped at 0 when ``positive``) and the
    next point ``max(x_k + alpha (x_k - x), 0)``: the backend's fused op where it has one
    (:mod:`rlcore.protocol`), else the multiply, then the extrapolation into ``x``'s
    buffer."""
    fused = getattr(b, "multiply_extrapolate", None)
    if fused is not None:
        return fused(y, w, x, alpha, positive=positive)
    new = _multiply_positive(b, y, w) if positive else b.multiply(y, w)
    return new, b.extrapolate(new, x, alpha)


def _multiply_positive(b: Backend, x: Array, y: Array) -> Array:
    """``x * max(y, 0)`` in place in ``x``: the backend's fused op where it has one."""
    fused = getattr(b, "multiply_positive", None)
    return fused(x, y) if fused is not None else b.multiply(x, b.clip_negative(y))


def richardson_lucy(
    operator: Convolution | StrataConvolution,
    image: Array,
    estimate: Array,
    iterations: int,
    guard: float,
    callback: Callable[[int, int], object] | None = None,
    options: Options | None = None,
) -> tuple[Array, int, bool]:
    """Run up to ``iterations`` RL updates of ``estimate`` (in place where possible).

    Parameters
    ----------
    operator : Convolution or StrataConvolution
        ``H`` and ``H^T`` on the grid (one PSF, or the strata of a depth-variant one).
    image : array, float32, grid shape
        The measured image ``y`` (not modified); zero outside the measured voxels. With
        ``options.region``, image-shaped: the grid's image region only.
    estimate : array, float32, grid shape
        First estimate ``x_0``; overwritten on backends that compute in place.
    iterations : int
        Maximum number of updates.
    guard : float
        Guard of the division (ratio 0 where ``H x <= guard``).
    callback : callable, optional
        ``callback(k, iterations)`` after update ``k`` (1-based).
    options : Options, optional
        Non-circulant normalisation, acceleration, TV, tolerance.

    Returns
    -------
    estimate : array
        The estimate after the last update.
    done : int
        Updates made (fewer than ``iterations`` when ``tol`` stopped the run).
    converged : bool
        True when the last update changed the estimate by less than ``tol``.
    """
    opt = options or Options()
    b = operator.backend
    work = operator.work
    x = estimate
    biggs = opt.accelerate == "biggs-andrews"
    # acceleration state: the previous estimate, the last step and its squared norm
    previous = step = None
    alpha, step_norm2 = 0.0, 0.0
    momentum = opt.accelerate == "momentum"
    if opt.accelerate:
        previous = b.empty(operator.shape)
    if biggs:
        step = b.empty(operator.shape)
    if momentum:  # the first point is the estimate (alpha_1 = 0); later ones are made
        y = b.copy_into(x, previous)  # with each update (Backend.multiply_extrapolate)
    done = 0
    for k in range(1, iterations + 1):
        if biggs:  # y = x_k + alpha (x_k - x_{k-1}), in the buffer of x_{k-1}
            if alpha > 0:
                y = b.extrapolate(x, previous, alpha)
            else:
                y = b.copy_into(x, previous)
        elif not momentum:
            y = x
        tv = b.tv_factor(y, opt.tv) if opt.tv else None
        if opt.monitor is not None and y is x:  # the monitor reads the forward's spectrum
            model, stop = operator.forward_observed(
                y, lambda spectrum, k=k, x=x: opt.monitor(k - 1, x, spectrum), out=work)
            if stop:
                return x, done, True
            work = model
        else:
            # the monitor first: it may transform x in the spectrum work buffer, which
            # can share memory with the real one (Backend.work_buffers)
            if opt.monitor is not None and opt.monitor(k - 1, x, None):
                return x, done, True
            work = operator.forward(y, out=work)
        if opt.region is not None:
            work = b.divide_region(image, work, guard, opt.region)
        else:
            work = b.divide_guarded(image, work, guard, out=work)
        work = operator.back_project(work, out=work)
        # the clip is fused into the update's multiply where nothing reads the step before
        # it (every factor below is >= 0); Biggs-Andrews and tol read the clipped step
        fuse_clip = opt.clip and not biggs and opt.tol is None and tv is None
        if opt.clip and not fuse_clip:
            work = b.clip_negative(work)
        if opt.normalization is not None:
            work = b.multiply(work, opt.normalization)
        if tv is not None:
            work = b.multiply(work, tv)
            del tv
        norms = None
        if biggs or opt.tol is not None:
            norms = b.update_norms(y, work, step if (biggs and k > 1) else None)
        if biggs:
            y, step = b.multiply_with_step(y, work, step)
            if k > 1 and step_norm2 > 0:
                alpha = min(max(norms[2] / step_norm2, 0.0), 1.0)
            step_norm2 = norms[0]
            previous, x = x, y  # x_k becomes the previous estimate; y now holds x_{k+1}
        elif momentum:  # x_k = y * w and the next point, alpha_{k+1} = k / (k + 3), at once
            x, y = _multiply_extrapolate(b, y, work, x, k / (k + 3), fuse_clip)
        else:
            x = _multiply_positive(b, y, work) if fuse_clip else b.multiply(y, work)
        done = k
        if opt.observe is not None:
            opt.observe(k, x)
        if callback is not None:
            callback(k, iterations)
        if opt.tol is not None and norms[1] > 0 and (norms[0] / norms[1]) ** 0.5 < opt.tol:
            return x, done, True
    return x, done, False
