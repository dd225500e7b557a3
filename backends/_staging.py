"""Host <-> device copies through page-locked chunk buffers (CuPy and OpenCL).

Copies from pageable NumPy memory run at a few GB/s (the driver stages them, and a fresh
result array page-faults during the DMA); through page-locked buffers the DMA runs at the
bus rate. A transfer is cut into one contiguous share per *lane*; each lane (a host
thread with two page-locked chunk buffers and a stream or queue of its own) copies its
share chunk by chunk into one buffer while the other's DMA runs. The lanes need no
coordination, so the host copies, which bound the rate, run on several cores at once
(NumPy releases the GIL). Measured on an H200 host (bench/experiments/gpu_host_memory.py,
67 and 268 MB): 8 lanes of 4-8 MiB chunks 28-36 GB/s, where one pool of threads sharing
two 8-32 MiB buffers gave 13-20 GB/s (its threads wait on every chunk) and pinning the
caller's array in place (cudaHostRegister) 15 GB/s.

A backend gives a function that makes one lane's two buffers (uint8 NumPy views of
page-locked memory, :data:`LANE_CHUNK` bytes each) and one function per direction that
queues the DMA of ``n`` bytes between buffer ``k`` of lane ``lane`` and the device array
at byte ``start`` and returns something with ``wait()``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from rlcore._system import usable_cpus

__all__ = ["Staging", "lane_plan", "LANE_CHUNK", "PINNED_MIN"]

#: Transfers below PINNED_MIN bytes go through the framework's plain copies
PINNED_MIN = 1 << 24
#: a lane's chunk buffers (bytes each). Chunks of about half a lane's share, 1-8 MiB:
#: 2 MiB chunks were 20-30% slower than 4-8 MiB on 67-268 MB transfers (more DMA calls
#: and waits), 8 MiB chunks left a 67 MB transfer's lanes one chunk each (no overlap)
LANE_CHUNK = 1 << 23
CHUNK_MIN = 1 << 20
#: lanes at most: 8 reached 28-36 GB/s, 12 no more (the memory bus)
LANES = 8


def lane_plan(nbytes: int, lanes: int) -> tuple[int, int]:
    """``(lanes, chunk)`` of a transfer of ``nbytes``: as many lanes as have a chunk's
    worth each, chunks of half a lane's share within [CHUNK_MIN, LANE_CHUNK]."""
    lanes = max(1, min(lanes, nbytes // CHUNK_MIN))
    share = -(-nbytes // lanes)
    return lanes, min(LANE_CHUNK, max(CHUNK_MIN, -(-share // 2)))


class Waitable(Protocol):
    def wait(self) -> Any: ...


#: dma(lane, k, start, n): queue the copy of n bytes between buffer k of that lane and
#: byte ``start`` of the device array; returns what to wait on
DMA = Callable[[int, int, int, int], Waitable]


class Staging:
    """Lanes of two page-locked buffers each (made on first use by ``make_buffers``) and
    the threads that run them."""

    def __init__(self, make_buffers: Callable[[int], list[np.ndarray]],
                 lanes: int | None = None):
        self.make_buffers = make_buffers
        self.lanes = max(1, min(LANES, usable_cpus()) if lanes is None else int(lanes))
        self.views: list[list[np.ndarray]] = []
        self.pool = ThreadPoolExecutor(max(1, self.lanes - 1),
                                       thread_name_prefix="rlcore-copy")

    def _run(self, nbytes: int, one_lane: Callable[[int, int, int, int], None]) -> None:
        """``one_lane(lane, lo, hi, chunk)`` for each lane's share ``[lo, hi)``, lane 0 on
        the calling thread; returns when every lane has."""
        lanes, chunk = lane_plan(nbytes, self.lanes)
        while len(self.views) < lanes:
            self.views.append(self.make_buffers(len(self.views)))
        share = -(-nbytes // lanes)
        futures = [self.pool.submit(one_lane, i, i * share, min(nbytes, (i + 1) * share),
                                    chunk) for i in range(1, lanes)]
        error = None
        try:
            one_lane(0, 0, min(nbytes, share), chunk)
        except BaseException as exc:  # the other lanes finish before it is raised
            error = exc
        for f in futures:
            try:
                f.result()
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error

    def upload(self, host: np.ndarray, dma: DMA) -> None:
        """``host`` (C-contiguous) to the device: returns once every DMA has completed."""
        src = host.reshape(-1).view(np.uint8)

        def lane(i: int, lo: int, hi: int, chunk: int) -> None:
            events: list[Any] = [None, None]
            for j, start in enumerate(range(lo, hi, chunk)):
                k, n = j % 2, min(chunk, hi - start)
                if events[k] is not None:
                    events[k].wait()  # its previous DMA has read the buffer
                np.copyto(self.views[i][k][:n], src[start:start + n])
                events[k] = dma(i, k, start, n)
            for event in events:
                if event is not None:
                    event.wait()

        self._run(src.size, lane)

    def download(self, host: np.ndarray, dma: DMA) -> None:
        """The device array into ``host`` (C-contiguous); the caller has made sure the
        array is computed (or ``dma`` queues after it)."""
        dst = host.reshape(-1).view(np.uint8)

        def lane(i: int, lo: int, hi: int, chunk: int) -> None:
            pending = None
            for j, start in enumerate(range(lo, hi, chunk)):
                k, n = j % 2, min(chunk, hi - start)
                event = dma(i, k, start, n)
                if pending is not None:
                    self._drain(dst, i, *pending)
                pending = (k, start, n, event)
            if pending is not None:
                self._drain(dst, i, *pending)

        self._run(dst.size, lane)

    def _drain(self, dst: np.ndarray, i: int, k: int, start: int, n: int,
               event: Waitable) -> None:
        event.wait()
        np.copyto(dst[start:start + n], self.views[i][k][:n])
