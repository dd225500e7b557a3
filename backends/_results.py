"""Result arrays in page-locked host memory, recycled when the caller lets go of them.

A result downloaded into a fresh NumPy array costs the kernel's page faults (every page of
the new array zeroed on first touch: 27-29 GB/s on 8 cores of an H200 host, 4-7 GB/s on
one, against the link's 55 GB/s; bench/experiments/gpu_host_memory.py) on top of the
copy out of a staging buffer. A page-locked array whose pages are already mapped takes
one DMA at the link's rate. :class:`PinnedResults` hands out such arrays (plain
``numpy.ndarray`` objects) from a pool of the backend's page-locked allocations; when
every array and view of one has gone, its memory returns to the pool for the next
result (a series, a batch, a benchmark's repeats reuse one or two allocations).

A page-locked allocation is slow the first time (cudaHostAlloc: ~2 GB/s, 114 ms for
256 MiB, 519 ms for 1 GiB on that host), slower than one download into fresh pages, so
the first result of a size goes to pageable memory and only a size asked for again (a
series, a loop, a benchmark) is given page-locked memory, kept for reuse.

Page-locked memory cannot be swapped, so the bytes handed out and still alive are capped
(:func:`limit`); beyond the cap, at a size's first request, and where the allocation
fails, the caller falls back to pageable memory (``empty`` returns None).
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
    """Page-locked result arrays from ``malloc(nbytes)`` (a new page-locked allocation,
    an object exporting the buffer, freed to the system when garbage), kept for reuse
    per size once the caller lets go (``free``); live plus kept bytes stay within
    ``max_bytes``, the kept blocks of other sizes, oldest first, dropped to make room."""

    def __init__(self, malloc: Callable[[int], Any], max_bytes: int | None = None):
        self.malloc = malloc
        self.max_bytes = limit() if max_bytes is None else int(max_bytes)
        self.live = 0  # bytes handed out and still referenced
        self.free: dict[int, list[Any]] = {}  # size -> allocations to reuse (oldest first)
        self.kept = 0  # bytes in ``free``
        self.lock = threading.Lock()
        self.seen: set[int] = set()  # sizes asked for before

    def _released(self, nbytes: int, memory: Any) -> None:
        with self.lock:
            self.live -= nbytes
            self.free.setdefault(nbytes, []).append(memory)
            self.kept += nbytes

    def _take(self, nbytes: int) -> tuple[Any, bool] | None:
        """A kept allocation of ``nbytes`` (True), room for a new one (None, False), or
        None: over the cap. Called under the lock."""
        if self.free.get(nbytes):
            self.kept -= nbytes
            return self.free[nbytes].pop(0), True
        for size in list(self.free):  # make room: other sizes' kept blocks first
            while self.free[size] and self.live + self.kept + nbytes > self.max_bytes:
                self.free[size].pop(0)
                self.kept -= size
        if self.live + self.kept + nbytes > self.max_bytes:
            return None
        return None, False

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray | None:
        """A C-contiguous array in page-locked memory, or None (a size's first request,
        over the cap, or the allocation failed)."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        with self.lock:
            if nbytes not in self.seen:  # once only, maybe: not worth an allocation
                self.seen.add(nbytes)
                return None
            taken = self._take(nbytes)
            if taken is None:
                return None
            memory, reused = taken
            self.live += nbytes
        if not reused:
            try:
                memory = self.malloc(nbytes)
            except Exception:  # page-locked memory exhausted: the caller uses pageable
                with self.lock:
                    self.live -= nbytes
                return None
        # ``holder`` is the base of every array and view made from the result (NumPy
        # collapses a view's base to the first array over a non-array buffer), so it
        # lives exactly as long as the caller keeps any of them; then its memory is kept
        holder = np.frombuffer(memory, dtype=np.uint8, count=nbytes)
        weakref.finalize(holder, self._released, nbytes, memory)
        return holder.view(dtype).reshape(shape)
