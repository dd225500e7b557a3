"""Entry points with RedLionfish's names and meaning: switch by changing one import.

``from rlcore.compat.redlionfish import doRLDeconvolutionFromNpArrays`` replaces
``from RedLionfishDeconv import doRLDeconvolutionFromNpArrays`` (3DCT, scripts, napari tools).

Deliberate differences from RedLionfish 0.10:

* the output shape always equals the input shape (RedLionfish pads an odd last axis to an
  even size and returns the padded array);
* errors raise (``ValueError`` / ``TypeError`` naming the argument) instead of being logged
  with ``None`` returned;
* the PSF centre is voxel ``n // 2`` and the adjoint is the exact correlation (RedLionfish
  flips the PSF in space), so results differ from RedLionfish's by rounding for odd PSF
  sizes and by up to a one-voxel shift for even ones;
* ``useBlockAlgorithm=True`` is accepted; this version has no block scheduler yet, so the
  run is unblocked (logged), which is the exact result blocks approximate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rlcore import registry
from rlcore.api import deconvolve

__all__ = ["doRLDeconvolutionFromNpArrays", "doRLDeconvolutionFromFiles", "to_uint8_full_range"]

logger = logging.getLogger(__name__)

def to_uint8_full_range(data: np.ndarray) -> np.ndarray:
    """RedLionfish's ``resAsUint8``: shift the minimum to 0, scale the maximum to 255,
    truncate to uint8 (a constant array gives zeros)."""
    shifted = np.asarray(data, dtype=np.float32) - np.float32(np.min(data))
    peak = shifted.max()
    if peak > 0:  # divide first (as RedLionfish): the maximum becomes exactly 1, so 255
        shifted /= peak
        shifted *= np.float32(255)
    return shifted.astype(np.uint8)


def _backend_for(method: str) -> str:
    if method == "cpu":
        return "numpy"
    if method != "gpu":
        raise ValueError(f"method: must be 'gpu' or 'cpu', got {method!r}")
    name = registry.get_backend("auto").name  # CuPy, else OpenCL on a GPU, else numpy
    if name != "numpy":
        return name
    logger.info("method='gpu': no GPU backend works here, falling back to the CPU (numpy)")
    return "numpy"


def doRLDeconvolutionFromNpArrays(  # noqa: N802 - RedLionfish's name
    data_np: np.ndarray,
    psf_np: np.ndarray,
    *,
    niter: int = 10,
    method: str = "gpu",
    useBlockAlgorithm: bool = False,  # noqa: N803
    callbkTickFunc: Callable[[], object] | None = None,  # noqa: N803
    resAsUint8: bool = False,  # noqa: N803
) -> np.ndarray:
    """Richardson-Lucy deconvolution of a 3-D stack, as RedLionfish's function of this name.

    Parameters
    ----------
    data_np : ndarray, shape (Z, Y, X), any real dtype
        The image (not normalised; uint8, uint16 and floats alike).
    psf_np : ndarray, shape (Z, Y, X)
        The PSF, any real dtype (normalised to sum 1 internally; centre voxel ``n // 2``).
    niter : int, default 10
        Iterations.
    method : {"gpu", "cpu"}, default "gpu"
        "gpu": the best GPU backend that works here, else the CPU (logged); "cpu": numpy.
    useBlockAlgorithm : bool, default False
        Accepted for compatibility (see the module notes).
    callbkTickFunc : callable, optional
        Called with no arguments once per iteration.
    resAsUint8 : bool, default False
        Return uint8 rescaled to the full 0..255 range; else float32.

    Returns
    -------
    ndarray, shape ``data_np.shape``
        float32, or uint8 with ``resAsUint8``.

    Raises
    ------
    ValueError
        Data or PSF not 3-D, unknown ``method``, and every check of
        :func:`rlcore.deconvolve`.
    TypeError
        Unsupported dtypes, ``callbkTickFunc`` not callable.
    """
    for name, array in (("data_np", data_np), ("psf_np", psf_np)):
        if np.ndim(array) != 3:
            raise ValueError(f"{name}: must be 3-D (Z, Y, X), got {np.ndim(array)} dimensions")
    if callbkTickFunc is not None and not callable(callbkTickFunc):
        raise TypeError(
            f"callbkTickFunc: must be callable with no arguments, got {callbkTickFunc!r}"
        )
    backend = _backend_for(method)
    if useBlockAlgorithm:
        logger.info("useBlockAlgorithm=True: no block scheduler in this version; running unblocked")
    tick = None if callbkTickFunc is None else (lambda k, n: callbkTickFunc())
    result = deconvolve(np.asarray(data_np), psf_np, niter, backend=backend, callback=tick)
    return to_uint8_full_range(result) if resAsUint8 else result


def doRLDeconvolutionFromFiles(  # noqa: N802 - RedLionfish's name
    datapath: str | Path, psfpath: str | Path, niter: int, savepath: str | Path | None = None
) -> np.ndarray:
    """Read the image and PSF files (TIFF, OME-TIFF, OME-Zarr), deconvolve, optionally save.

    Parameters
    ----------
    datapath, psfpath : str or path
        Image and PSF files.
    niter : int
        Iterations.
    savepath : str or path, optional
        Where to write the float32 result (voxel size of the image kept; replaced if it
        exists, as RedLionfish does).

    Returns
    -------
    ndarray, float32, the image's shape

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        Missing or unreadable files, and every check of
        :func:`doRLDeconvolutionFromNpArrays`.
    """
    from rlcore.io import read_image, write_image

    data, voxel = read_image(datapath)
    psf, _ = read_image(psfpath)
    result = doRLDeconvolutionFromNpArrays(data, psf, niter=niter, method="gpu")
    if savepath is not None:
        write_image(savepath, result, voxel, overwrite=True)
    return result
