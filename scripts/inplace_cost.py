# issue 19: what the in-place work buffers cost per call on the GPU (CuPy): cuFFT in place
# (padded rows) against out of place, and elementwise passes on the padded view against a
# contiguous array. python3 scripts/inplace_cost.py [ZxYxX ...]
import sys

import cupy as cp
import numpy as np

from rlcore.backends import cupy as cb


def ms(fn, n=20):
    fn()
    a, b = cp.cuda.Event(), cp.cuda.Event()
    a.record()
    for _ in range(n):
        fn()
    b.record()
    b.synchronize()
    return cp.cuda.get_elapsed_time(a, b) / n


be = cb.CupyBackend()
for text in sys.argv[1:] or ["128x1120x1120", "96x1120x1120", "288x288x288", "64x1024x1024"]:
    shape = tuple(int(v) for v in text.split("x"))
    be.plan(shape)
    work, spec = be.work_buffers(shape)
    x = cp.random.random(shape, dtype=cp.float32)
    real = cp.empty(shape, cp.float32)
    spec2 = be.empty(spec.shape, complex=True)
    work[...] = x
    fwd, inv = be._cufft.CUFFT_FORWARD, be._cufft.CUFFT_INVERSE
    row = {
        "R2C contiguous->other": ms(lambda: be._plan(shape, "R2C", False).fft(x, spec2, fwd)),
        "R2C padded in place": ms(lambda: be._plan(shape, "R2C", True).fft(work, spec, fwd)),
        "C2R other->contiguous": ms(lambda: be._plan(shape, "C2R", False).fft(spec2, real, inv)),
        "C2R in place->padded": ms(lambda: be._plan(shape, "C2R", True).fft(spec, work, inv)),
        "multiply contiguous": ms(lambda: be.multiply(real, x)),
        "multiply x *= padded": ms(lambda: be.multiply(x, work)),
        "multiply padded *= x": ms(lambda: be.multiply(work, x)),
        "divide contiguous": ms(lambda: be.divide_guarded(x, real, 1e-6, out=real)),
        "divide padded": ms(lambda: be.divide_guarded(x, work, 1e-6, out=work)),
    }
    print(text, {k: round(v, 3) for k, v in row.items()}, flush=True)
    del work, spec, x, real, spec2
    cb.clear_plan_cache()
    cp.get_default_memory_pool().free_all_blocks()
