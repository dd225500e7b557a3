"""What several runners share: the per-update step (progress bar and callback), the
offset's subtraction, and the conversion back to the caller's array kind."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import array_api_compat
import numpy as np

from rlcore import _arrays

__all__ = ["progress", "like", "subtract_offset"]


@contextlib.contextmanager
def progress(show: bool, total: int, desc: str,
             callback: Callable | None) -> Iterator[Callable[[int, int], None]]:
    """The per-update step: advances a tqdm bar (when ``show``) and calls ``callback``."""
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="it")

    def step(k: int, n: int) -> None:
        if bar is not None:
            bar.update(1)
        if callback is not None:
            callback(k, n)

    try:
        yield step
    finally:
        if bar is not None:
            bar.close()


def like(host: np.ndarray, image: Any) -> Any:
    """``host`` as an array of the caller's kind (CuPy, array API; NumPy unchanged)."""
    kind = _arrays.kind(image)
    if kind == "cupy":
        import cupy

        return cupy.asarray(host)
    if kind == "array_api":
        return array_api_compat.array_namespace(image).asarray(host)
    return host


def subtract_offset(image: Any, offset: Any) -> Any:
    """``max(image - offset, 0)`` in the image's own kind (numpy, CuPy, Dask, array API).

    Raises
    ------
    TypeError
        ``offset`` not a finite number.
    """
    from rlcore import autostop

    offset = autostop.check_offset(offset)
    kind = _arrays.kind(image)
    if kind == "numpy":
        return _subtract_on_host(np.asarray(image), np.float32(offset))
    if kind == "dask":
        return (image.astype(np.float32) - np.float32(offset)).clip(0, None)
    xp = array_api_compat.array_namespace(image)
    shifted = xp.astype(image, xp.float32) - offset
    return xp.where(shifted > 0, shifted, xp.zeros_like(shifted))


def _subtract_on_host(y: np.ndarray, offset: np.float32) -> np.ndarray:
    """``max(y - offset, 0)`` as one new float32 array, written in place (no temporaries)
    and, for large arrays, by several threads (:func:`rlcore.validate.in_row_slabs`)."""
    from rlcore.validate import in_row_slabs

    if y.ndim == 0:  # refused later, as every 0-d image
        return np.maximum(np.float32(y) - offset, np.float32(0))
    out = np.empty(y.shape, np.float32)

    def part(lo: int, hi: int) -> None:
        np.subtract(y[lo:hi], offset, out=out[lo:hi], casting="unsafe")
        np.maximum(out[lo:hi], np.float32(0), out=out[lo:hi])

    in_row_slabs(y, part)
    return out
