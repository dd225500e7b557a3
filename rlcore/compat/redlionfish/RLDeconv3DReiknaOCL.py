"""RedLionfish's OpenCL module (``RLDeconv3DReiknaOCL``): its names on rlcore's OpenCL
backend (pyopencl; VkFFT or reikna FFTs) and rlcore's block scheduler.

``RL_CL_PLATFORM_PREFERENCE`` (RedLionfish's module setting, default "none") picks the
first OpenCL device whose platform or device name contains it, as RedLionfish does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rlcore.compat.redlionfish.RLDeconvolve import run

__all__ = ["nonBlock_RLDeconvolutionReiknaOCL",
           "block_RLDeconv3DReiknaOCL", "get_best_blockshape_and_blockstep", "printGPUInfo",
           "RL_CL_PLATFORM_PREFERENCE"]

RL_CL_PLATFORM_PREFERENCE = "none"


def __getattr__(name: str):
    if name == "isReiknaAvailable":  # checked on use: importing this module loads no OpenCL
        from rlcore.registry import available_backends

        return any(b.name == "opencl" and b.available for b in available_backends())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _device() -> str | None:
    preference = str(RL_CL_PLATFORM_PREFERENCE)
    return None if preference.lower() in ("", "none") else preference


def nonBlock_RLDeconvolutionReiknaOCL(data_np: np.ndarray, psf_np: np.ndarray, *,  # noqa: N802
                                      niter: int = 10,
                                      callbkTickFunc: Callable[[], object] | None = None,  # noqa: N803
                                      center_psf: bool = True) -> np.ndarray:
    """RL on the OpenCL backend, unblocked (a run that does not fit the device is retried
    in blocks); float32, the data's shape.

    Raises
    ------
    rlcore.errors.BackendUnavailableError
        No working OpenCL (RedLionfish returns None there).
    ValueError, TypeError
        As :func:`rlcore.compat.redlionfish.doRLDeconvolutionFromNpArrays`.
    """
    return run(data_np, psf_np, niter, "opencl", callbkTickFunc, center_psf,
               device=_device())


def block_RLDeconv3DReiknaOCL(data: np.ndarray, psfdata: np.ndarray, *, niter: int = 10,  # noqa: N802
                              max_dim_size: int = 256, psfpaddingfract: float = 1.2,  # noqa: ARG001
                              callbkTickFunc: Callable[[], object] | None = None,  # noqa: N803
                              center_psf: bool = True) -> np.ndarray:
    """RL on the OpenCL backend in blocks of at most ``max_dim_size`` voxels per axis:
    the cores are RedLionfish's block steps (:func:`get_best_blockshape_and_blockstep`),
    the overlap rlcore's automatic one (:func:`rlcore.blocks.auto_overlap`: exact to
    < 1e-3 at the seams, where ``psfpaddingfract`` is not needed); float32.

    Raises
    ------
    As :func:`nonBlock_RLDeconvolutionReiknaOCL`.
    """
    shape, psf_shape = np.shape(data), np.shape(psfdata)
    _, step = get_best_blockshape_and_blockstep(shape, psf_shape, max_dim_size,
                                                psfpaddingfract)
    blocks = {"block_shape": tuple(step)} if step else {"block_shape": "auto"}
    return run(data, psfdata, niter, "opencl", callbkTickFunc, center_psf,
               device=_device(), **blocks)


def get_best_blockshape_and_blockstep(shapedata: Sequence[int], shapepsf: Sequence[int],
                                      blocksize: int, psfpaddingfract: float):
    """RedLionfish's block plan: blocks of ``min(blocksize, n)`` per axis and steps (the
    valid cores) ``int(block - psfpaddingfract * psf)`` on the axes that are split;
    ``(None, None)`` when a split axis's block is shorter than twice the PSF."""
    block = [min(int(blocksize), int(n)) for n in shapedata[:3]]
    split = [n > b for n, b in zip(shapedata, block)]
    if any(s and 2 * p > b for s, p, b in zip(split, shapepsf, block)):
        return None, None
    step = []
    for b, p, s in zip(block, shapepsf, split):
        valid = int(b - psfpaddingfract * p)
        step.append(valid if s and valid > 0 else b)
    return block, step


def printGPUInfo() -> None:  # noqa: N802 - RedLionfish's name
    """Print the OpenCL devices rlcore sees (``rlcore info`` lists every backend)."""
    from rlcore.registry import available_backends

    for b in available_backends():
        if b.name == "opencl":
            if not b.available:
                print(f"No OpenCL: {b.reason}")
            for d in b.devices:
                print(f"OpenCL device: {d}")

