"""Result arrays in page-locked host memory, recycled when the caller lets go of them.

A result downloaded into a fresh NumPy array costs the kernel's page faults (every page of
the new array zeroed on first touch: 27-29 GB/s on 8 cores of an H200 host, 4-7 GB/s on
one, against the link's 55 GB/s; bench/experiments/gpu_host_memory.py) on top of the
copy out of a staging buffer. A page-locked array whose pages are already mapped takes
one DMA at the link's rate. :class:`PinnedResults` hands out such arrays (plain
``numpy.ndarray`` objects) from a pool of the backend's page-locked allocations; when
every array and view of one has gone, its memory returns to the pool for the next
result (a series, a batch, a benchmark's repeats reuse one or two allocations).

Page-locked memory cannot be swapped, so the bytes handed out and still alive are capped
(:func:`limit`); beyond the cap, and where the allocation fails, the caller falls back to
pageable memory (``empty`` returns None).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["PinnedResults", "limit"]


def limit() -> int:
    """Bytes of page-locked results alive at once: an eighth of the host's memory, at
    most 8 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not POSIX
        total = 16 << 30
    return int(min(8 << 30, total // 8))


class PinnedResults:
    """Page-locked result arrays from ``malloc(nbytes)`` (an object exporting the buffer;
    freed to its pool when garbage) and ``release_free()`` (gives the pool's unused
    allocations back to the system)."""

    def __init__(self, malloc: Callable[[int], Any], release_free: Callable[[], None],
                 max_bytes: int | None = None):
        self.malloc, self.release_free = malloc, release_free
        self.max_bytes = limit() if max_bytes is None else int(max_bytes)
        self.live = 0  # bytes handed out and still referenced
        self.size: int | None = None  # the last size asked for
        self.lock = threading.Lock()

    def _released(self, nbytes: int) -> None:
        with self.lock:
            self.live -= nbytes

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray | None:
        """A C-contiguous array in page-locked memory, or None (over the cap, or the
        allocation failed)."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        with self.lock:
            if self.live + nbytes > self.max_bytes:
                return None
            if nbytes != self.size:  # another size: the pool's unused blocks of the
                self.release_free()  # last size would only pile up
                self.size = nbytes
            self.live += nbytes
        try:
            memory = self.malloc(nbytes)
        except Exception:  # page-locked memory exhausted: the caller uses pageable
            self._released(nbytes)
            return None
        # ``holder`` is the base of every array and view made from the result (NumPy
        # collapses a view's base to the first array over a non-array buffer), so it
        # lives exactly as long as the caller keeps any of them
        holder = np.frombuffer(memory, dtype=np.uint8, count=nbytes)
        weakref.finalize(holder, self._released, nbytes)
        return holder.view(dtype).reshape(shape)
