"""A drop-in for ``skimage.restoration.richardson_lucy`` on rlcore's backends."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from rlcore.deconvolver import Deconvolver, RunSettings

__all__ = ["richardson_lucy"]

#: scikit-image's own guard (it adds 1e-12 to ``H x``); here a threshold, see Notes.
_SKIMAGE_EPS = 1e-12


def richardson_lucy(
    image: Any,
    psf: Any,
    num_iter: int = 50,
    clip: bool = True,
    filter_epsilon: float | None = None,
    *,
    backend: str = "auto",
) -> Any:
    """Richardson-Lucy deconvolution with scikit-image's signature, defaults and value range.

    Same model as ``skimage.restoration.richardson_lucy`` (scikit-image 0.19 and later):
    linear convolution with zeros beyond the image edges (``boundary="zero"``), a first
    estimate of 0.5 everywhere, ``num_iter=50`` and, with ``clip=True``, the result clipped
    to ``[-1, 1]``. For odd-sized PSFs the result equals scikit-image's to float32
    rounding; it runs on rlcore's backends with real FFTs.

    Parameters
    ----------
    image : ndarray, shape ``(Z, Y, X)`` or ``(Y, X)``
        Input image (real dtype).
    psf : ndarray
        The PSF, same number of axes (its scale does not change the result).
    num_iter : int, default 50
        Number of iterations.
    clip : bool, default True
        Clip the result to ``[-1, 1]`` (scikit-image's value range for float images).
    filter_epsilon : float, optional
        Where ``H x < filter_epsilon`` the ratio is set to 0 (as scikit-image).
    backend : str, default ``"auto"``
        rlcore backend (keyword only; not in scikit-image).

    Returns
    -------
    ndarray, float32, shape ``image.shape``

    Raises
    ------
    TypeError, ValueError
        As :func:`rlcore.deconvolve`; ``filter_epsilon`` negative or not finite.

    Notes
    -----
    Deliberate differences from scikit-image:

    * the output is always float32 (scikit-image returns float64 for float64 input);
    * negative image values are clipped to 0 with a warning (Richardson-Lucy assumes
      non-negative data), where scikit-image computes on them;
    * for even-sized PSF axes the PSF centre is voxel ``n // 2`` and the adjoint is the
      exact correlation; scikit-image's ``convolve(mode="same")`` centres even kernels at
      ``(n - 1) // 2`` and its flipped-kernel adjoint is then off by one voxel;
    * without ``filter_epsilon`` the ratio is 0 where ``H x <= 1e-12``; scikit-image
      divides by ``H x + 1e-12`` there (values up to 1e12).
    """
    if filter_epsilon is not None and not (np.isfinite(filter_epsilon) and filter_epsilon >= 0):
        raise ValueError(f"filter_epsilon: must be finite and >= 0, got {filter_epsilon!r}")
    guard = _SKIMAGE_EPS if filter_epsilon is None else float(filter_epsilon)
    if not hasattr(image, "shape"):
        image = np.asarray(image)
    like = None if isinstance(image, np.ndarray) else image
    deconvolver = Deconvolver(psf, tuple(image.shape), num_iter, backend=backend,
                       boundary="zero", like=like)
    result = deconvolver.execute(image, RunSettings(init=0.5, guard=guard))
    if clip:
        if isinstance(result, np.ndarray):
            np.clip(result, -1, 1, out=result)
        else:  # CuPy or another array-API library
            xp = array_api_compat.array_namespace(result)
            result = xp.clip(result, -1.0, 1.0)
    return result
