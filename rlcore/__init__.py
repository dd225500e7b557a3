"""rlcore: fast, exact Richardson-Lucy deconvolution of 2-D and 3-D microscopy data.

Public names: :func:`deconvolve`, :func:`richardson_lucy` (scikit-image compatible),
:func:`convolve` (the forward model), :func:`available_backends` and :mod:`rlcore.errors`.
Axis order is (Z, Y, X) throughout.
"""

from __future__ import annotations

from rlcore import errors
from rlcore.api import convolve, deconvolve
from rlcore.compat.skimage import richardson_lucy
from rlcore.deconvolver import Deconvolver, RunInfo
from rlcore.registry import BackendInfo, available_backends

__version__ = "0.1.0"

#: submodules reached as attributes on first use (``rlcore.psf.gaussian(...)`` after a plain
#: ``import rlcore``), imported only then so that ``import rlcore`` stays light
_LAZY = ("psf", "blocks", "io", "backprojector", "autostop", "series", "data", "cli")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"rlcore.{name}")
    raise AttributeError(f"module 'rlcore' has no attribute {name!r}")

__all__ = [
    "BackendInfo",
    "Deconvolver",
    "RunInfo",
    "available_backends",
    "convolve",
    "deconvolve",
    "errors",
    "richardson_lucy",
    "__version__",
]
