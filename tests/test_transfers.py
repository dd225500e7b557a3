"""The host side of device transfers, without a device: the staging lanes
(backends/_staging.py) against a fake DMA into a NumPy "device" array, and the recycled
page-locked results (backends/_results.py) with a fake allocator. The real DMAs are
tested in test_cupy.py / test_opencl.py."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from rlcore.backends import _results, _staging


class _Done:
    def wait(self) -> None:
        return None


class _FakeDevice:
    """A byte array standing in for device memory; each DMA copies at once and records
    which lane and buffer it used."""

    def __init__(self, nbytes: int, staging: _staging.Staging):
        self.memory = np.zeros(nbytes, np.uint8)
        self.staging = staging
        self.calls: list[tuple[int, int, int, int, str]] = []
        self.lock = threading.Lock()

    def h2d(self, lane: int, k: int, start: int, n: int) -> _Done:
        self.memory[start:start + n] = self.staging.views[lane][k][:n]
        with self.lock:
            self.calls.append((lane, k, start, n, threading.current_thread().name))
        return _Done()

    def d2h(self, lane: int, k: int, start: int, n: int) -> _Done:
        self.staging.views[lane][k][:n] = self.memory[start:start + n]
        with self.lock:
            self.calls.append((lane, k, start, n, threading.current_thread().name))
        return _Done()


def _staging_with(lanes: int) -> _staging.Staging:
    return _staging.Staging(lambda lane: [np.empty(_staging.LANE_CHUNK, np.uint8)
                                          for _ in range(2)], lanes=lanes)


@pytest.mark.parametrize("lanes", [1, 3, 8])
@pytest.mark.parametrize("nbytes", [1 << 16, (1 << 22) + 12, (1 << 25) + 4 * 7])
def test_lanes_move_every_byte_once_both_ways(lanes, nbytes):
    """Uploads and downloads through the lanes are exact for any size (one lane, a short
    last chunk, shares not a multiple of the chunk), each byte moved once, and the
    caller's array untouched."""
    staging = _staging_with(lanes)
    host = np.random.default_rng(nbytes).integers(0, 256, nbytes, dtype=np.uint8)
    before = host.copy()
    device = _FakeDevice(nbytes, staging)
    staging.upload(host, device.h2d)
    np.testing.assert_array_equal(device.memory, host)
    np.testing.assert_array_equal(host, before)
    moved = sorted((start, n) for _, _, start, n, _ in device.calls)
    assert sum(n for _, n in moved) == nbytes
    assert all(a + n == b for (a, n), (b, _) in zip(moved, moved[1:]))  # no gap, no overlap
    used, chunk = _staging.lane_plan(nbytes, lanes)
    assert {lane for lane, *_ in device.calls} == set(range(used))
    assert max(n for _, n in moved) <= chunk <= _staging.LANE_CHUNK
    back = np.empty_like(host)
    device.memory[:] = np.roll(host, 1)
    staging.download(back, device.d2h)
    np.testing.assert_array_equal(back, np.roll(host, 1))


def test_lanes_run_on_several_threads_and_alternate_buffers():
    """A large transfer uses every lane, lanes beyond the first on other threads, and
    each lane alternates its two buffers (the DMA of one overlaps the copy of the other)."""
    staging = _staging_with(4)
    nbytes = 4 * 4 * _staging.CHUNK_MIN * 3
    device = _FakeDevice(nbytes, staging)
    staging.upload(np.ones(nbytes, np.uint8), device.h2d)
    threads = {lane: name for lane, _, _, _, name in device.calls}
    caller = threading.current_thread().name
    assert len(threads) == 4 and threads[0] == caller
    assert all(threads[lane].startswith("rlcore-copy") for lane in (1, 2, 3))
    for lane in range(4):
        ks = [k for i, k, *_ in device.calls if i == lane]
        assert len(ks) >= 2 and ks == [j % 2 for j in range(len(ks))]


def test_a_failing_dma_is_raised_after_every_lane_stopped():
    """An error in one lane reaches the caller (not lost in a worker thread), and only
    once the other lanes have finished with the buffers."""
    staging = _staging_with(3)
    nbytes = 3 * 4 * _staging.CHUNK_MIN
    device = _FakeDevice(nbytes, staging)
    done = []

    def dma(lane, k, start, n):
        if lane == 2:
            raise RuntimeError("link down")
        result = device.h2d(lane, k, start, n)
        done.append(lane)
        return result

    with pytest.raises(RuntimeError, match="link down"):
        staging.upload(np.ones(nbytes, np.uint8), dma)
    assert set(done) == {0, 1}


def _pinned(max_bytes: int, fail: bool = False):
    allocated: list[int] = []

    def malloc(n: int) -> bytearray:
        if fail:
            raise MemoryError("cudaHostAlloc failed")
        allocated.append(n)
        return bytearray(n)

    return _results.PinnedResults(malloc, max_bytes=max_bytes), allocated


def _asked_before(pool, *sizes):
    """Ask once for each size (a first request gets pageable memory: None)."""
    for n in sizes:
        assert pool.empty((n,), np.uint8) is None


def test_pinned_results_are_plain_arrays_freed_when_the_caller_lets_go():
    """A result is a writeable C-contiguous ndarray of the asked shape and dtype; its
    bytes count as live while any view of it is alive, and no longer after."""
    pool, allocated = _pinned(1 << 20)
    _asked_before(pool, 4 * 8 * 16 * 4)
    a = pool.empty((4, 8, 16), np.float32)
    assert isinstance(a, np.ndarray) and a.shape == (4, 8, 16) and a.dtype == np.float32
    assert a.flags.c_contiguous and a.flags.writeable
    a[...] = 3
    view = a[1:3, ::2].T
    assert pool.live == a.nbytes
    del a
    gc.collect()
    assert pool.live == 4 * 8 * 16 * 4  # the view keeps the memory
    assert float(view.sum()) == 3 * view.size
    del view
    gc.collect()
    assert pool.live == 0 and allocated == [4 * 8 * 16 * 4]


def test_pinned_results_fall_back_beyond_the_cap_and_when_allocation_fails():
    """Over the cap of live bytes, or when page-locked memory cannot be had, ``empty``
    says None (the caller downloads into pageable memory) and counts nothing."""
    pool, _ = _pinned(3000)
    _asked_before(pool, 2000)
    a = pool.empty((500,), np.float32)  # 2000 bytes
    assert a is not None
    assert pool.empty((500,), np.float32) is None  # 4000 > 3000
    del a
    gc.collect()
    assert pool.empty((500,), np.float32) is not None
    failing, _ = _pinned(1 << 20, fail=True)
    _asked_before(failing, 40)
    assert failing.empty((10,), np.float32) is None and failing.live == 0


def test_pinned_results_reuse_dropped_blocks_per_size_within_the_cap():
    """A dropped result's memory serves the next result of its size (no new
    allocation), whatever sizes come between; live plus kept bytes stay within the cap,
    kept blocks of another size dropped first to make room."""
    pool, allocated = _pinned(1000)
    _asked_before(pool, 400, 300)
    a = pool.empty((100,), np.float32)  # 400 bytes
    address = a.ctypes.data
    del a
    gc.collect()
    b = pool.empty((300,), np.uint8)  # another size between
    del b
    gc.collect()
    a = pool.empty((100,), np.float32)
    assert a.ctypes.data == address and allocated == [400, 300]
    assert pool.live == 400 and pool.kept == 300
    _asked_before(pool, 500)
    c = pool.empty((500,), np.uint8)  # 400 live + 300 kept + 500 > 1000: drop the 300
    assert c is not None and pool.kept == 0 and pool.live == 900
    assert pool.empty((100,), np.float32) is None  # 900 + 400 > 1000


def test_a_size_asked_for_the_first_time_gets_pageable_memory():
    """A one-off result is not worth a page-locked allocation (slower than the page
    faults it saves): the first request of a size says None, the second allocates."""
    pool, allocated = _pinned(1 << 20)
    assert pool.empty((64,), np.float32) is None and allocated == []
    assert pool.empty((64,), np.float32) is not None and allocated == [256]
    assert pool.empty((32,), np.float32) is None


def test_the_cap_is_an_eighth_of_memory_at_most_8_gib():
    assert 0 < _results.limit() <= 8 << 30
