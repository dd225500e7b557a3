"""Time of each backend operation of one RL update, OpenCL beside CuPy, on one GPU.

``python -m bench.opencl_ops --shape 256 256 256``

For each backend (OpenCL with each FFT provider on the first OpenCL GPU; CuPy where it
works): the median time (ms, 20 repetitions after a warm-up, the device synchronised
around each) of the operations an update is made of, on device arrays of the grid shape,
and of an upload and a download of one image.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np

import rlcore
import rlcore.registry
from rlcore.protocol import spectrum_shape


def timed(op: Callable[[], object], sync: Callable[[], object], n: int = 20) -> float:
    op()
    sync()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        op()
        sync()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def ops(be, sync, shape) -> dict[str, float]:
    rng = np.random.default_rng(0)
    host = (rng.random(shape, np.float32) + 0.5).astype(np.float32)
    x, y, out = be.to_device(host), be.to_device(host), be.empty(shape)
    otf = be.rfftn(be.to_device(host))
    work = be.empty(spectrum_shape(shape), complex=True)
    spectrum = be.empty(spectrum_shape(shape), complex=True)
    return {
        "rfftn": timed(lambda: be.rfftn(x, out=spectrum), sync),
        "irfftn": timed(lambda: be.irfftn(spectrum, shape, out=out), sync),
        "apply_otf (H x)": timed(lambda: be.apply_otf(x, otf, work=work, out=out), sync),
        "divide_guarded": timed(lambda: be.divide_guarded(x, y, 1e-6, out=out), sync),
        "multiply": timed(lambda: be.multiply(y, x), sync),
        "upload": timed(lambda: be.to_device(host), sync),
        "download": timed(lambda: be.to_host(x), sync),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", type=int, nargs="+", default=[256, 256, 256])
    args = ap.parse_args(argv)
    shape = tuple(args.shape)
    infos = {b.name: b for b in rlcore.available_backends()}
    report: dict[str, dict[str, float]] = {}
    gpus = [d for d in infos["opencl"].devices if "(GPU" in d]
    if gpus:
        from rlcore.backends import opencl

        for fft in ("vkfft", "reikna"):
            os.environ[opencl.ENV_FFT] = fft
            try:
                be = rlcore.registry.get_backend("opencl", device=gpus[0].split("]")[0][1:])
            except Exception as exc:  # pyvkfft missing
                print(fft, exc)
                continue
            report[f"opencl-{fft}"] = ops(be, be.queue.finish, shape)
    if infos["cupy"].available:
        import cupy as cp

        be = rlcore.registry.get_backend("cupy")
        report["cupy"] = ops(be, cp.cuda.Device().synchronize, shape)
    print(json.dumps({"shape": shape, "ms": report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
