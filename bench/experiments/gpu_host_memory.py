# ruff: noqa: B023 (each closure is called at once, in its loop turn)
"""Host-memory primitives behind NumPy in / NumPy out on CuPy (issue 32): what pinning the
caller's array in place costs (cudaHostRegister), a page-locked allocation
(cudaHostAlloc), fresh pages with and without transparent huge pages, and staged uploads
with per-thread pipelines of several chunk sizes.

``python3 bench/experiments/gpu_host_memory.py``
"""

from __future__ import annotations

import mmap
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _ms(fn, repeats=5) -> float:
    fn()
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1e3


def _hugepage_array(nbytes: int) -> np.ndarray:
    m = mmap.mmap(-1, nbytes)
    m.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(m, np.uint8)


def _thread_pipelines(cp, host, dev, threads, chunk, pool, bufs, streams):
    """Each thread: its contiguous share, copied chunk by chunk into its own two pinned
    buffers, each DMA on its own stream."""
    src = host.reshape(-1).view(np.uint8)
    share = -(-src.size // threads)
    rt = cp.cuda.runtime

    def one(t):
        lo, hi = t * share, min(src.size, (t + 1) * share)
        ev = [None, None]
        for i, start in enumerate(range(lo, hi, chunk)):
            k = i % 2
            n = min(chunk, hi - start)
            if ev[k] is not None:
                ev[k].synchronize()
            np.copyto(bufs[t][k][:n], src[start:start + n])
            rt.memcpyAsync(dev.data.ptr + start, bufs[t][k].ctypes.data, n,
                           rt.memcpyHostToDevice, streams[t].ptr)
            ev[k] = streams[t].record()
        for e in ev:
            if e is not None:
                e.synchronize()

    list(pool.map(one, range(threads)))


def main() -> None:
    import cupy as cp

    rt = cp.cuda.runtime
    for path in ("/sys/kernel/mm/transparent_hugepage/enabled",
                 "/sys/kernel/mm/transparent_hugepage/defrag"):
        try:
            print(path, open(path).read().strip())
        except OSError as e:
            print(path, e)
    for shape in ((256, 256, 256), (64, 1024, 1024)):
        host = np.random.default_rng(0).random(shape, np.float32)
        nb = host.nbytes
        dev = cp.empty(shape, np.float32)
        print(f"{shape}: {nb / 1e6:.0f} MB")

        def register():
            rt.hostRegister(host.ctypes.data, nb, 0)
            rt.memcpy(dev.data.ptr, host.ctypes.data, nb, rt.memcpyHostToDevice)
            rt.hostUnregister(host.ctypes.data)

        def register_only():
            rt.hostRegister(host.ctypes.data, nb, 0)
            rt.hostUnregister(host.ctypes.data)

        res = {
            "hostRegister + DMA + unregister": register,
            "hostRegister + unregister": register_only,
            "alloc_pinned_memory": lambda: cp.cuda.alloc_pinned_memory(nb),
            "np.empty touched 1 thread": lambda: np.empty(nb, np.uint8).fill(0),
            "hugepage mmap touched 1 thread": lambda: _hugepage_array(nb).fill(0),
        }
        for k, fn in res.items():
            v = _ms(fn)
            print(f"  {k:40s} {v:8.2f} ms {nb / v / 1e6:6.1f} GB/s")
        for threads in (4, 8, 12):
            pool = ThreadPoolExecutor(threads)
            streams = [cp.cuda.Stream(non_blocking=True) for _ in range(threads)]
            for chunk in (1 << 21, 1 << 22, 1 << 23):
                bufs = [[np.frombuffer(cp.cuda.alloc_pinned_memory(chunk), np.uint8)
                         for _ in range(2)] for _ in range(threads)]
                v = _ms(lambda: _thread_pipelines(cp, host, dev, threads, chunk, pool,
                                                  bufs, streams))
                ok = bool((dev.get() == host).all())
                print(f"  pipelines {threads:2d} threads {chunk >> 20} MiB chunks"
                      f"{'':10s} {v:8.2f} ms {nb / v / 1e6:6.1f} GB/s {ok}")

            def touch(a, threads=threads, pool=pool):
                step = -(-a.size // threads)
                list(pool.map(lambda i: a[i:i + step].fill(0), range(0, a.size, step)))

            for label, make in (("np.empty", lambda: np.empty(nb, np.uint8)),
                                ("hugepage mmap", lambda: _hugepage_array(nb))):
                v = _ms(lambda: touch(make()))
                print(f"  {label} touched {threads} threads{'':14s} {v:8.2f} ms "
                      f"{nb / v / 1e6:6.1f} GB/s")
            pool.shutdown()


if __name__ == "__main__":
    main()
