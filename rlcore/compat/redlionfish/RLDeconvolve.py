"""RedLionfish's ``RLDeconvolve`` module: the two entry points 3DCT and scripts call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rlcore.compat.redlionfish.helperfunctions import convertToUint8AndFullRange

__all__ = ["doRLDeconvolutionFromNpArrays", "doRLDeconvolutionFromFiles"]

logger = logging.getLogger("rlcore.compat.redlionfish")


def _backend_for(method: str) -> str:
    from rlcore import registry

    if method == "cpu":
        return "numpy"
    if method != "gpu":
        raise ValueError(f"method: must be 'gpu' or 'cpu', got {method!r}")
    name = registry.get_backend("auto").name  # CuPy, else OpenCL on a GPU, else numpy
    if name != "numpy":
        return name
    logger.info("method='gpu': no GPU backend works here, falling back to the CPU (numpy)")
    return "numpy"


def run(data_np: np.ndarray, psf_np: np.ndarray, niter: int, backend: str,
        callbkTickFunc: Callable[[], object] | None, center_psf: bool,  # noqa: N803
        **blocks) -> np.ndarray:
    """The one call every compat entry point makes: checks RedLionfish's 3-D rule,
    centres the PSF (:func:`rlcore.psf.centered`) unless ``center_psf`` is False, runs
    :func:`rlcore.deconvolve` with the faces' boundary
    (:data:`rlcore.boundary.FACE_BOUNDARY`); float32 out."""
    from rlcore.api import deconvolve
    from rlcore.boundary import FACE_BOUNDARY
    from rlcore.psf import centered

    for name, array in (("data_np", data_np), ("psf_np", psf_np)):
        if np.ndim(array) != 3:
            raise ValueError(f"{name}: must be 3-D (Z, Y, X), got {np.ndim(array)} dimensions")
    if callbkTickFunc is not None and not callable(callbkTickFunc):
        raise TypeError(
            f"callbkTickFunc: must be callable with no arguments, got {callbkTickFunc!r}")
    psf = np.asarray(psf_np)
    if center_psf:
        psf, moved = centered(psf)
        if any(moved):
            logger.info("psf_np: centred on its centroid, moved by %s voxels", moved)
    tick = None if callbkTickFunc is None else (lambda k, n: callbkTickFunc())
    return deconvolve(np.asarray(data_np), psf, niter, backend=backend, callback=tick,
                      boundary=FACE_BOUNDARY, **blocks)


def doRLDeconvolutionFromNpArrays(  # noqa: N802 - RedLionfish's name
    data_np: np.ndarray,
    psf_np: np.ndarray,
    *,
    niter: int = 10,
    method: str = "gpu",
    useBlockAlgorithm: bool = False,  # noqa: N803
    callbkTickFunc: Callable[[], object] | None = None,  # noqa: N803
    resAsUint8: bool = False,  # noqa: N803
    center_psf: bool = True,
) -> np.ndarray:
    """Richardson-Lucy deconvolution of a 3-D stack, as RedLionfish's function of this name.

    Parameters
    ----------
    data_np : ndarray, shape (Z, Y, X), any real dtype
        The image (not normalised; uint8, uint16 and floats alike).
    psf_np : ndarray, shape (Z, Y, X)
        The PSF, any real dtype (normalised to sum 1 internally).
    niter : int, default 10
        Iterations.
    method : {"gpu", "cpu"}, default "gpu"
        "gpu": the best GPU backend that works here, else the CPU (logged); "cpu": numpy.
    useBlockAlgorithm : bool, default False
        Compute in blocks (rlcore's scheduler, blocks for the device's free memory);
        without it a run that does not fit the device is retried in blocks, as
        RedLionfish falls back to its block algorithm.
    callbkTickFunc : callable, optional
        Called with no arguments once per iteration (per block and iteration in blocks).
    resAsUint8 : bool, default False
        Return uint8 rescaled to the full 0..255 range; else float32.
    center_psf : bool, default True
        rlcore's addition: move the PSF so that its centroid (after background removal)
        is at voxel ``n // 2`` (:func:`rlcore.psf.centered`), so that objects, beads
        included, keep their positions whatever the centring of the PSF array. False
        keeps the array as given (its voxel ``n // 2`` is then the centre).

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
    backend = _backend_for(method)
    blocks = {"block_shape": "auto"} if useBlockAlgorithm else {}  # for the free memory
    result = run(data_np, psf_np, niter, backend, callbkTickFunc, center_psf, **blocks)
    return convertToUint8AndFullRange(result) if resAsUint8 else result


def doRLDeconvolutionFromFiles(  # noqa: N802 - RedLionfish's name
    datapath: str | Path, psfpath: str | Path, niter: int, savepath: str | Path | None = None
) -> np.ndarray:
    """Read the image and PSF files (TIFF, OME-TIFF, OME-Zarr), deconvolve, optionally
    save; as RedLionfish, the result is uint8 rescaled to 0..255 (``resAsUint8=True``),
    returned and written.

    Parameters
    ----------
    datapath, psfpath : str or path
        Image and PSF files.
    niter : int
        Iterations.
    savepath : str or path, optional
        Where to write the uint8 result (the image's voxel size kept; replaced if it
        exists, as RedLionfish does; written atomically).

    Returns
    -------
    ndarray, uint8, the image's shape

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        Missing or unreadable files, and every check of
        :func:`doRLDeconvolutionFromNpArrays`.
    """
    from rlcore.io import read_image, write_image

    data, voxel = read_image(datapath)
    psf, _ = read_image(psfpath)
    result = doRLDeconvolutionFromNpArrays(data, psf, niter=niter, method="gpu",
                                           resAsUint8=True)
    if savepath is not None:
        write_image(savepath, result, voxel, overwrite=True)
    return result
