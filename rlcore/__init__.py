"""rlcore: fast, exact Richardson-Lucy deconvolution of 2-D and 3-D microscopy data.

Public names: :func:`deconvolve`, :func:`richardson_lucy` (scikit-image compatible),
:func:`convolve` (the forward model), :func:`available_backends` and :mod:`rlcore.errors`.
Axis order is (Z, Y, X) throughout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlcore import errors

__version__ = "0.1.0"

#: submodules reached as attributes on first use (``rlcore.psf.gaussian(...)`` after a plain
#: ``import rlcore``), imported only then so that ``import rlcore`` stays light
_LAZY = ("psf", "blocks", "io", "backprojector", "autostop", "series", "data", "cli",
         "background")
#: public names, imported from their modules on first use: ``import rlcore`` loads no
#: NumPy/SciPy, so the command line starts (and answers Ctrl-C) at once
_NAMES = {"convolve": "api", "deconvolve": "api", "richardson_lucy": "compat.skimage",
          "Deconvolver": "deconvolver", "RunInfo": "deconvolver",
          "BackendInfo": "registry", "available_backends": "registry"}

if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported here
    from rlcore.api import convolve, deconvolve
    from rlcore.compat.skimage import richardson_lucy
    from rlcore.deconvolver import Deconvolver, RunInfo
    from rlcore.registry import BackendInfo, available_backends


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return importlib.import_module(f"rlcore.{name}")
    if name in _NAMES:
        value = getattr(importlib.import_module(f"rlcore.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rlcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_NAMES))

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
