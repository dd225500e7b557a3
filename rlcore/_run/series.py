"""Series (the routes ``"channels"`` and ``"frames"``): a channel axis with a PSF per
channel (a depth-variant PSF's stack, ``psf_depths``, for every channel), and frames (the
axes beyond the PSF's). Frames of one PSF run whole in memory through one
:class:`rlcore.Deconvolver`; otherwise (auto, blocks, Dask, several devices) each frame is
one request of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from rlcore import _arrays, pipeline, series
from rlcore._request import Request, is_auto
from rlcore._run.common import progress, subtract_offset
from rlcore.deconvolver import Deconvolver
from rlcore.strata import strata_ndim

__all__ = ["run_channels", "run_frames"]


def run_channels(request: Request, image: Any, psf: Any, run: Callable) -> Any:
    """Each channel with its PSF (a request of its own, through ``run``), stacked back on
    the axis."""
    axis = series.check_channel_axis(request.channel_axis, len(image.shape))
    channels = int(image.shape[axis])
    # a depth-variant PSF (psf_depths): its K PSFs are one stack, for every channel
    psfs = ([psf] * channels if request.psf_depths is not None
            else series.split_channels(psf, channels))
    if request.blocking.out is not None:
        raise ValueError("out: not available with channel_axis; write each channel's "
                         "result yourself")
    part = request.narrowed(channel_axis=None, return_info=True)
    infos = []

    def one_channel(channel: Any, channel_psf: Any) -> Any:
        result, info = run(part, channel, channel_psf)
        infos.append(info)
        return result

    result = series.map_channels(image, psfs, axis, one_channel)
    return (result, infos[0]) if request.return_info else result


def _runs_whole(request: Request, image: Any) -> bool:
    """The frames run whole in memory, one plan for all (else one request per frame)."""
    return (not is_auto(request.iterations) and _arrays.kind(image) != "dask"
            and request.blocking.block_shape is None and request.blocking.max_memory is None
            and not isinstance(request.device, (list, tuple)))


def run_frames(request: Request, image: Any, psf: Any, run: Callable) -> Any:
    """Every frame as if alone; one plan for all when they run whole in memory (else
    each frame a request of its own, through ``run``)."""
    ndim = len(image.shape)
    frame_ndim = (strata_ndim(psf) if request.psf_depths is not None
                  else series.psf_ndim(psf))
    frames = int(np.prod(image.shape[:ndim - frame_ndim]))
    shape = tuple(int(n) for n in image.shape[ndim - frame_ndim:])
    first = image[(0,) * (ndim - frame_ndim) + (Ellipsis,)]
    if not _runs_whole(request, image):
        part = request.narrowed(progress=False, return_info=False)
        result = series.map_frames(image, frame_ndim, lambda f: run(part, f, psf))
        devices = request.device if isinstance(request.device, (list, tuple)) else [None]
        be = request.select_backend(first, devices[0])  # the frames' backend, named
        info = request.info(
            iterations=request.iterations if isinstance(request.iterations, int) else 0,
            converged=False, backend=be.name, device=be.device, grid_shape=shape,
            frames=frames)
        return request.answer(result, info)
    iterations = request.checked_iterations()
    variant = request.variant(len(shape))
    be = request.select_backend(first)
    with be.activate():
        deconvolver = Deconvolver(psf, shape, iterations, backend=be,
                                  boundary=request.boundary, variant=variant,
                                  psf_depths=request.psf_depths)
        result = _each_frame(request, image, frame_ndim, deconvolver, frames)
    info = request.info(iterations=iterations, converged=False, backend=be.name,
                        device=be.device, grid_shape=deconvolver.grid.shape, frames=frames)
    return request.answer(result, info)


def _each_frame(request: Request, image: Any, frame_ndim: int, deconvolver: Deconvolver,
                frames: int) -> Any:
    """The frames through one plan; the callback counts the updates of all frames."""
    done, total = [0], deconvolver.iterations * frames
    callback, offset = request.callback, request.offset

    def counted(k: int, n: int) -> None:
        done[0] += 1
        if callback is not None:
            callback(done[0], total)

    with progress(request.progress, total, f"RL, {frames} frames", None) as step:
        settings = replace(request.settings(), observe=None,
                           callback=lambda k, n: (counted(k, n), step(k, n)))

        def run_frame(frame: Any) -> Any:
            if offset:
                frame = subtract_offset(frame, offset)
            return deconvolver.execute(frame, settings)

        return pipeline.map_frames(deconvolver.backend, image, frame_ndim, run_frame)
