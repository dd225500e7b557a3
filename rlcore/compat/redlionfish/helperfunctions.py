"""RedLionfish's ``helperfunctions`` names that its users' scripts call."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["convertToUint8AndFullRange", "convertToFloat32AndNormalise", "generateGaussPSF"]


def convertToFloat32AndNormalise(data, normaliseType=None, bResetZero=False):  # noqa: N802,N803
    """float32 copy; ``bResetZero`` shifts the minimum to 0; ``normaliseType`` "max" or
    "sum" divides by it (skipped when it is 0); None passes through, as RedLionfish."""
    if data is None:
        return None
    out = np.asarray(data).astype(np.float32)
    if bResetZero:
        out = out - out.min()
    if normaliseType is not None:
        norm = out.max() if normaliseType == "max" else np.sum(out)
        if norm != 0:
            out = out / norm
    return out


def convertToUint8AndFullRange(data):  # noqa: N802 - RedLionfish's name
    """RedLionfish's ``resAsUint8``: minimum to 0, maximum to 255, truncated to uint8 (a
    constant array gives zeros); None passes through."""
    if data is None:
        return None
    shifted = np.asarray(data, dtype=np.float32) - np.float32(np.min(data))
    peak = shifted.max()
    if peak > 0:  # divide first (as RedLionfish): the maximum becomes exactly 1, so 255
        shifted /= peak
        shifted *= np.float32(255)
    return shifted.astype(np.uint8)


def generateGaussPSF(shape: Sequence[int], sigma: float = 10):  # noqa: N802
    """RedLionfish's test PSF: an isotropic Gaussian of ``sigma`` voxels, peak at voxel
    ``n // 2``, not normalised (``1 / (sigma sqrt(2 pi))`` at the peak), float32. Equal
    to RedLionfish's for cubes of even length; for an odd length RedLionfish returns one
    voxel less, and for other shapes its axes transposed (``meshgrid``'s "xy"
    indexing): this returns ``shape``, (Z, Y, X)."""
    axes = [np.arange(-(n // 2), n - n // 2, dtype=np.float32) for n in shape]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    return (1 / sigma / math.sqrt(2 * math.pi)
            * np.exp(-0.5 * (z * z + y * y + x * x) / sigma / sigma)).astype(np.float32)
