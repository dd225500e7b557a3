"""rlcore: fast, exact Richardson-Lucy deconvolution of 2-D and 3-D microscopy data.

Public names: :func:`deconvolve`, :func:`richardson_lucy` (scikit-image compatible),
:func:`convolve` (the forward model), :func:`available_backends` and :mod:`rlcore.errors`.
Axis order is (Z, Y, X) throughout.
"""

from __future__ import annotations

from rlcore import errors
from rlcore.api import convolve, deconvolve
from rlcore.compat.skimage import richardson_lucy
from rlcore.registry import BackendInfo, available_backends

__version__ = "0.1.0"

__all__ = [
    "BackendInfo",
    "available_backends",
    "convolve",
    "deconvolve",
    "errors",
    "richardson_lucy",
    "__version__",
]
