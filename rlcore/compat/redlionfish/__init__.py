"""RedLionfish's names and meaning on rlcore: switch by changing one import.

``from rlcore.compat.redlionfish import doRLDeconvolutionFromNpArrays`` replaces
``from RedLionfishDeconv import doRLDeconvolutionFromNpArrays`` (3DCT, scripts, napari
tools); the submodules RedLionfish's scripts and tests import exist under the same names:
``RLDeconvolve``, ``RLDeconv3DScipy``, ``RLDeconv3DReiknaOCL``, ``helperfunctions``
(``import rlcore.compat.redlionfish as rl`` for ``import RedLionfishDeconv as rl``).

Differences from RedLionfish 0.10, measured (``python -m bench.redlionfish``):

MEASURED_DIFFERENCES
"""

from __future__ import annotations

from rlcore.compat.redlionfish import (
    RLDeconv3DReiknaOCL,
    RLDeconv3DScipy,
    RLDeconvolve,
    helperfunctions,
)
from rlcore.compat.redlionfish.helperfunctions import convertToUint8AndFullRange
from rlcore.compat.redlionfish.RLDeconvolve import (
    doRLDeconvolutionFromFiles,
    doRLDeconvolutionFromNpArrays,
)

#: rlcore's earlier name for RedLionfish's ``resAsUint8`` rescale
to_uint8_full_range = convertToUint8AndFullRange

__all__ = ["doRLDeconvolutionFromNpArrays", "doRLDeconvolutionFromFiles",
           "to_uint8_full_range", "RLDeconvolve", "RLDeconv3DScipy", "RLDeconv3DReiknaOCL",
           "helperfunctions"]
