"""Host <-> device copies through two page-locked chunk buffers (CuPy and OpenCL).

Copies from pageable NumPy memory run at a few GB/s (the driver stages them, and a fresh
result array page-faults during the DMA); through page-locked buffers the DMA runs at the
bus rate. A transfer runs in chunks: the DMA of one chunk overlaps the host copy of the
other, which is spread over several cores (NumPy releases the GIL).

A backend gives the two buffers (uint8 NumPy views of page-locked memory) and one
function per direction that queues the DMA of ``n`` bytes between buffer ``k`` and the
device array at byte ``start`` and returns something with ``wait()``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from rlcore._system import usable_cpus

__all__ = ["Staging", "chunk_bytes", "CHUNK", "PINNED_MIN"]

#: Transfers below PINNED_MIN bytes go through the framework's plain copies. Chunks are
#: ~1/8 of a transfer, between 4 and 32 MiB: 8 MiB chunks made 268 MB transfers 2-3x
#: slower than 32 MiB chunks, and 32 MiB chunks left 67 MB transfers without overlap
#: (bench/results/gpu-blocks-h100.json).
CHUNK = 1 << 25
CHUNK_MIN = 1 << 22
PINNED_MIN = 1 << 24


def chunk_bytes(nbytes: int) -> int:
    return min(CHUNK, max(CHUNK_MIN, nbytes // 8))


class Waitable(Protocol):
    def wait(self) -> Any: ...


#: dma(k, start, n): queue the copy of n bytes between buffer k and byte ``start`` of the
#: device array; returns what to wait on
DMA = Callable[[int, int, int], Waitable]


class Staging:
    """Two page-locked buffers of :data:`CHUNK` bytes (``views``) and a copy pool."""

    def __init__(self, views: list[np.ndarray]):
        self.views = views
        self.threads = max(1, min(8, usable_cpus()))
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="rlcore-copy")

    def _copy(self, dst: np.ndarray, src: np.ndarray) -> None:
        """Host memcpy of byte views, split over threads."""
        step = -(-dst.size // self.threads)
        futures = [self.pool.submit(np.copyto, dst[i:i + step], src[i:i + step])
                   for i in range(step, dst.size, step)]
        np.copyto(dst[:step], src[:step])
        for f in futures:
            f.result()

    def upload(self, host: np.ndarray, dma: DMA) -> None:
        """``host`` (C-contiguous) to the device: returns once every DMA has completed."""
        src = host.reshape(-1).view(np.uint8)
        events: list[Any] = [None, None]
        chunk = chunk_bytes(src.size)
        for i, start in enumerate(range(0, src.size, chunk)):
            k = i % 2
            n = min(chunk, src.size - start)
            if events[k] is not None:
                events[k].wait()  # its previous DMA has read the buffer
            self._copy(self.views[k][:n], src[start:start + n])
            events[k] = dma(k, start, n)
        for event in events:
            if event is not None:
                event.wait()

    def download(self, host: np.ndarray, dma: DMA) -> None:
        """The device array into ``host`` (C-contiguous); the caller has made sure the
        array is computed (or ``dma`` queues after it)."""
        dst = host.reshape(-1).view(np.uint8)
        pending = None
        chunk = chunk_bytes(dst.size)
        for i, start in enumerate(range(0, dst.size, chunk)):
            k = i % 2
            n = min(chunk, dst.size - start)
            event = dma(k, start, n)
            if pending is not None:
                self._drain(dst, *pending)
            pending = (k, start, n, event)
        if pending is not None:
            self._drain(dst, *pending)

    def _drain(self, dst: np.ndarray, k: int, start: int, n: int, event: Waitable) -> None:
        event.wait()
        self._copy(dst[start:start + n], self.views[k][:n])
