"""Uploading a caller's NumPy array to a CUDA device: through rlcore's staging lanes
(host copy into page-locked chunks, overlapped with their DMAs), or by page-locking the
array in place (``cudaHostRegister``, one DMA, ``cudaHostUnregister``), against pageable
``cupy.asarray`` and a page-locked buffer's DMA (the link's rate). Issue 32: the upload
is most of what a reused Deconvolver spends beyond its floor.

``python3 bench/experiments/gpu_register.py`` (CuPy; medians of 9 interleaved rounds, ms)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rlcore.registry import get_backend  # noqa: E402


def main() -> None:
    import cupy as cp

    be = get_backend("cupy")
    out = {}
    for mb in (16, 64, 256):
        out[f"{mb} MiB"] = row = _size(cp, be, mb, out)
        print(mb, "MiB", {k: round(v, 3) for k, v in row.items()}, flush=True)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(out, indent=1))


def _size(cp, be, mb: int, out: dict) -> dict:
    rt = cp.cuda.runtime
    stream = cp.cuda.Stream(non_blocking=True)
    n = mb * 2**20 // 4
    host = np.random.default_rng(0).random(n, dtype=np.float32)
    dev = cp.empty(n, cp.float32)
    pinned = np.frombuffer(cp.cuda.alloc_pinned_memory(host.nbytes), np.float32, n)
    pinned[...] = host

    def dma(src_ptr):
        rt.memcpyAsync(dev.data.ptr, src_ptr, host.nbytes, rt.memcpyHostToDevice,
                       stream.ptr)
        stream.synchronize()

    def registered(flags=0):
        rt.hostRegister(host.ctypes.data, host.nbytes, flags)
        try:
            dma(host.ctypes.data)
        finally:
            rt.hostUnregister(host.ctypes.data)

    def register_only():
        rt.hostRegister(host.ctypes.data, host.nbytes, 0)
        rt.hostUnregister(host.ctypes.data)

    runs = {"pinned DMA": lambda: dma(pinned.ctypes.data),
            "staged (be.upload)": lambda: be.upload(host),
            "register + DMA + unregister": registered,
            "register + unregister alone": register_only,
            "pageable cupy.asarray": lambda: cp.asarray(host)}
    try:
        registered(8)  # cudaHostRegisterReadOnly (a read-only caller's array)
        runs["register read-only + DMA"] = lambda: registered(8)
    except Exception as exc:  # noqa: BLE001
        out.setdefault("read-only", repr(exc))
    times = {k: [] for k in runs}
    for fn in runs.values():
        fn()
    cp.cuda.Device().synchronize()
    for _ in range(9):
        for k, fn in runs.items():
            cp.cuda.Device().synchronize()
            t0 = time.perf_counter()
            fn()
            cp.cuda.Device().synchronize()
            times[k].append((time.perf_counter() - t0) * 1e3)
    row = {k: statistics.median(v) for k, v in times.items()}
    row["pinned GB/s"] = host.nbytes / row["pinned DMA"] / 1e6
    return row


if __name__ == "__main__":
    main()
