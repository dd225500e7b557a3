"""The Richardson-Lucy iteration, written once against :class:`rlcore.protocol.Backend`.

Richardson (1972), Lucy (1974); in the notation of Bertero & Boccacci (2005), eq. (4):

    x_{k+1} = x_k * H^T( y / (H x_k) )

with ``y`` the image, ``H`` the circular convolution by the PSF on the grid (its OTF is
computed once) and ``H^T`` its exact adjoint, the circular correlation (conjugate OTF).
The division is guarded (see :meth:`Backend.divide_guarded`): where ``H x_k <= eps`` the
ratio is 0, which keeps every value finite.

Nothing here knows which backend runs it or which boundary mode built the grid.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlcore.boundary import place_psf
from rlcore.protocol import Array, Backend, spectrum_shape

__all__ = ["Convolution", "richardson_lucy"]


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
    grid-sized PSF is ever allocated besides the buffers the iteration needs anyway.
    """

    def __init__(self, backend: Backend, psf: np.ndarray, grid_shape: tuple[int, ...]):
        self.backend = backend
        self.shape = tuple(grid_shape)
        backend.plan(self.shape)
        self.work = backend.empty(self.shape)
        self.work = place_psf(backend.to_device(np.asarray(psf, np.float32)), self.shape,
                              out=self.work)
        otf = backend.empty(spectrum_shape(self.shape), complex=True)
        self.otf = backend.rfftn(self.work, out=otf)
        self._spectrum = backend.empty(spectrum_shape(self.shape), complex=True)

    def _apply(self, x: Array, out: Array | None, conjugate: bool) -> Array:
        return self.backend.apply_otf(
            x, self.otf, conjugate=conjugate, work=self._spectrum, out=out
        )

    def forward(self, x: Array, out: Array | None = None) -> Array:
        """``H x``: circular convolution of ``x`` (grid shape) by the PSF."""
        return self._apply(x, out, conjugate=False)

    def adjoint(self, y: Array, out: Array | None = None) -> Array:
        """``H^T y``: circular correlation of ``y`` with the PSF (conjugate OTF)."""
        return self._apply(y, out, conjugate=True)


def richardson_lucy(
    operator: Convolution,
    image: Array,
    estimate: Array,
    iterations: int,
    eps: float,
    callback: Callable[[int, int], object] | None = None,
) -> Array:
    """Run ``iterations`` RL updates of ``estimate`` (updated in place where possible).

    Parameters
    ----------
    operator : Convolution
        ``H`` and ``H^T`` on the grid.
    image : array, float32, grid shape
        The measured image ``y`` (not modified).
    estimate : array, float32, grid shape
        First estimate ``x_0``; overwritten on backends that compute in place.
    iterations : int
        Number of updates.
    eps : float
        Guard of the division (ratio 0 where ``H x <= eps``).
    callback : callable, optional
        ``callback(k, iterations)`` after update ``k`` (1-based).

    Returns
    -------
    array
        The estimate after ``iterations`` updates.
    """
    b = operator.backend
    work = operator.work
    for k in range(1, iterations + 1):
        work = operator.forward(estimate, out=work)
        work = b.divide_guarded(image, work, eps, out=work)
        work = operator.adjoint(work, out=work)
        estimate = b.multiply(estimate, work)
        if callback is not None:
            callback(k, iterations)
    return estimate
