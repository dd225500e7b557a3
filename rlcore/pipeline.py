"""A series' frames through a device backend with the transfers overlapped: the upload of
frame t + 1 and the download of frame t - 1 run on their own threads and streams while
frame t iterates (:class:`rlcore.protocol.FrameTransfers`; CuPy).

Without overlap a reused plan on (64, 256, 256) frames spent 4.4 ms a frame on an H200
where its iterations take 2.0 ms (bench/results/series-gpu-h200.md): each frame's upload
(17 MB), checks and download waited for the one before. Every frame is still deconvolved
as if alone (the same calls, the same result as one call per frame).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from rlcore import _arrays, series
from rlcore.protocol import AsyncDownloads, FrameTransfers

__all__ = ["map_frames", "overlaps"]


def overlaps(backend: Any, image: Any, frame_ndim: int) -> bool:
    """True where :func:`map_frames` overlaps transfers: a NumPy series of two frames or
    more on a backend with :class:`~rlcore.protocol.FrameTransfers`."""
    return (isinstance(backend, FrameTransfers) and isinstance(backend, AsyncDownloads)
            and _arrays.kind(image) == "numpy"
            and int(np.prod(image.shape[:len(image.shape) - frame_ndim])) > 1)


#: the upload and the download thread, for the process: their staging buffers
#: (page-locked) are made once, not for every series
_THREADS: list[ThreadPoolExecutor] = []
_LOCK = threading.Lock()


def _threads() -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
    with _LOCK:
        if not _THREADS:
            _THREADS.extend(ThreadPoolExecutor(1, thread_name_prefix=f"rlcore-{name}")
                            for name in ("upload", "download"))
        return _THREADS[0], _THREADS[1]


def map_frames(backend: Any, image: Any, frame_ndim: int,
               run_frame: Callable[[Any], Any]) -> Any:
    """``run_frame(frame)`` over every frame (the last ``frame_ndim`` axes) of ``image``,
    into one float32 array of the image's kind, as :func:`rlcore.series.map_frames`;
    where :func:`overlaps`, ``run_frame`` gets each frame on the device (in its own
    dtype) and returns a device array, while the neighbouring frames move."""
    if not overlaps(backend, image, frame_ndim):
        return series.map_frames(image, frame_ndim, run_frame)
    be = backend
    lead = tuple(int(n) for n in image.shape[:len(image.shape) - frame_ndim])
    indices = [index + (Ellipsis,) for index in np.ndindex(*lead)]
    out, pinned = be.result_buffer(tuple(int(n) for n in image.shape))
    uploads, downloads = _threads()
    with be.activate():

        def start(index: tuple) -> Any:
            host = np.asarray(image[index])
            target, after = be.upload_target(host)  # here: see FrameTransfers
            return uploads.submit(be.upload_into, host, target, after)

        pending = start(indices[0])
        writes: list = []
        for i, index in enumerate(indices):
            frame = pending.result()
            if i + 1 < len(indices):
                pending = start(indices[i + 1])
            result = be.contiguous(run_frame(frame))
            del frame
            if result.dtype != np.float32:  # pragma: no cover - run_frame gives float32
                raise TypeError(f"a frame's result is {result.dtype}, float32 expected")
            writes.append(downloads.submit(be.download_into, result, out[index],
                                           be.record(), pinned))
            del result
            if len(writes) > 1:  # one download in flight: its result's memory held
                writes.pop(0).result()
        for write in writes:
            write.result()
    return out
