"""Which kind of array the caller passed (decides the backend and the output kind)."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = ["kind"]


def kind(array: Any) -> str:
    """``"numpy"``, ``"cupy"``, ``"dask"`` or ``"array_api"`` for any other standard array.

    Lists, tuples and other array-likes count as ``"numpy"`` (they are converted).
    """
    if isinstance(array, np.ndarray):
        return "numpy"
    module = type(array).__module__.split(".")[0]
    if module == "cupy":
        return "cupy"
    if module == "dask":
        return "dask"
    if hasattr(array, "__array_namespace__") or array_api_compat.is_array_api_obj(array):
        return "array_api"
    return "numpy"
