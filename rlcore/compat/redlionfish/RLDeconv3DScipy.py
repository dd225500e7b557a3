"""RedLionfish's CPU module (``RLDeconv3DScipy``): its three names, one rlcore numpy run.

RedLionfish keeps three CPU variants (``doRLDeconvolution12``, ``_DL2_4`` and the default
``doRLDeconvolution``, which calls ``_DL2_4``); they compute the same RL iteration, so all
three are rlcore's numpy backend here, with the PSF centred as in
:func:`rlcore.compat.redlionfish.doRLDeconvolutionFromNpArrays`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlcore.compat.redlionfish.RLDeconvolve import run

__all__ = ["doRLDeconvolution", "doRLDeconvolution_DL2_4", "doRLDeconvolution12"]


def doRLDeconvolution(data_np: np.ndarray, psf_np: np.ndarray, *, niter: int = 10,  # noqa: N802
                      callbkTickFunc: Callable[[], object] | None = None,  # noqa: N803
                      center_psf: bool = True) -> np.ndarray:
    """RL on the CPU (numpy backend); float32, the data's shape. Raises as
    :func:`rlcore.compat.redlionfish.doRLDeconvolutionFromNpArrays`."""
    return run(data_np, psf_np, niter, "numpy", callbkTickFunc, center_psf)


doRLDeconvolution_DL2_4 = doRLDeconvolution
doRLDeconvolution12 = doRLDeconvolution
