"""Series: images with more axes than the PSF (time-lapses ``(T, Z, Y, X)``, ``(T, C, Z, Y,
X)``) and a channel axis with one PSF per channel.

Each frame is one call of the frame-level run (``run_frame``, which is
:func:`rlcore.deconvolve` for one frame); frames of one channel share one plan (the
caller passes a ``run_frame`` that holds a :class:`rlcore.deconvolver.Deconvolver`). Dask
arrays are mapped frame by frame (one task per frame, each frame one chunk).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from rlcore import _arrays
from rlcore.validate import to_numpy

__all__ = ["is_psf_sequence", "psf_ndim", "split_channels", "check_channel_axis",
           "map_channels", "map_frames"]


def is_psf_sequence(psf: Any) -> bool:
    """True for a list or tuple of PSF arrays (one per channel), not a nested list PSF."""
    return isinstance(psf, (list, tuple)) and bool(psf) and hasattr(psf[0], "shape")


def psf_ndim(psf: Any) -> int:
    """Number of axes of one PSF (``psf`` may be a sequence of per-channel PSFs)."""
    if is_psf_sequence(psf):
        return len(psf[0].shape)
    return int(np.ndim(to_numpy(psf, "psf")))


def check_channel_axis(channel_axis: Any, ndim: int) -> int:
    """The channel axis as a non-negative index.

    Raises
    ------
    TypeError, ValueError
        Not an int, or outside ``[-ndim, ndim)``.
    """
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
        raise TypeError(f"channel_axis: must be an int or None, got {channel_axis!r}")
    if not -ndim <= channel_axis < ndim:
        raise ValueError(f"channel_axis: {channel_axis} is outside the image's {ndim} axes")
    return int(channel_axis) % ndim


def split_channels(psf: Any, channels: int) -> list[Any]:
    """One PSF per channel: a sequence of ``channels`` PSFs, or one PSF for all.

    Raises
    ------
    ValueError
        A sequence of another length.
    """
    if is_psf_sequence(psf):
        if len(psf) != channels:
            raise ValueError(f"psf: {len(psf)} PSFs for {channels} channels; pass one PSF per "
                             "channel (or one PSF for all)")
        return list(psf)
    return [psf] * channels


def _take(array: Any, index: int, axis: int) -> Any:
    key = (slice(None),) * axis + (index, Ellipsis)
    return array[key]


def _stack(parts: Sequence[Any], axis: int, like: Any) -> Any:
    kind = _arrays.kind(like)
    if kind == "numpy":
        return np.stack([np.asarray(p) for p in parts], axis=axis)
    if kind == "dask":
        import dask.array as da

        return da.stack(parts, axis=axis)
    xp = array_api_compat.array_namespace(parts[0])
    return xp.stack(parts, axis=axis)


def map_channels(image: Any, psfs: list[Any], axis: int,
                 run: Callable[[Any, Any], Any]) -> Any:
    """``run(channel_image, channel_psf)`` per channel, stacked back on ``axis``."""
    return _stack([run(_take(image, c, axis), p) for c, p in enumerate(psfs)], axis, image)


def map_frames(image: Any, frame_ndim: int, run_frame: Callable[[Any], Any],
               progress: Callable[[], None] | None = None) -> Any:
    """``run_frame(frame)`` over every frame (the last ``frame_ndim`` axes) of ``image``.

    NumPy, CuPy and array-API arrays: frame by frame into one float32 array of the
    image's kind; Dask: lazily, one task per frame.
    """
    lead = tuple(int(n) for n in image.shape[:len(image.shape) - frame_ndim])
    kind = _arrays.kind(image)
    if kind == "dask":
        chunks = (1,) * len(lead) + tuple(int(n) for n in image.shape[len(lead):])
        blocks = image.rechunk(chunks)

        def one(block: np.ndarray) -> np.ndarray:
            frame = block.reshape(block.shape[len(lead):])
            return np.asarray(run_frame(frame), np.float32).reshape(block.shape)

        return blocks.map_blocks(one, dtype=np.float32,
                                 meta=np.empty((0,) * len(image.shape), np.float32))
    out = None
    for index in np.ndindex(*lead):
        index = index + (Ellipsis,)  # the array API wants every axis named
        result = run_frame(image[index])
        if out is None:
            if kind == "numpy":
                out = np.empty(tuple(image.shape), np.float32)
            else:
                xp = array_api_compat.array_namespace(result)
                out = xp.empty(tuple(image.shape), dtype=xp.float32)
        out[index] = result
        if progress is not None:
            progress()
    return out
