# issue 19: what the in-place work buffers cost per call on the GPU (CuPy): cuFFT in place
# (padded rows) against out of place, and elementwise passes on the padded view against a
# contiguous array; --pitch: whether a row pitch aligned beyond 2 (n // 2 + 1) floats
# recovers out-of-place speed. python3 bench/experiments/inplace_cost.py [--pitch] [ZxYxX ...]
import sys

import cupy as cp
import numpy as np
from cupy.cuda import cufft

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


def plan(shape, real, half, r2c):
    inembed, onembed = (real, half) if r2c else (half, real)
    return cufft.PlanNd(list(shape), list(inembed), 1, int(np.prod(inembed)), list(onembed), 1,
                        int(np.prod(onembed)), cufft.CUFFT_R2C if r2c else cufft.CUFFT_C2R,
                        1, "C", len(shape) - 1, half[-1] if r2c else shape[-1])


def pitch(shape):
    h = shape[-1] // 2 + 1
    x = cp.random.random(shape, dtype=cp.float32)
    s = cp.empty(shape[:-1] + (h,), cp.complex64)
    p = plan(shape, shape, s.shape, True)
    row = {"out of place": ms(lambda: p.fft(x, s, cufft.CUFFT_FORWARD))}
    for align in (1, 8, 32, 64):
        row.update(aligned(shape, -(-h // align) * align))
    print(shape, {k: round(v, 3) for k, v in row.items()}, flush=True)


def aligned(shape, hp):
    """In-place R2C and C2R with rows of ``hp`` complex values."""
    buf = cp.zeros(shape[:-1] + (hp,), cp.complex64)
    pr = plan(shape, shape[:-1] + (2 * hp,), shape[:-1] + (hp,), True)
    pc = plan(shape, shape[:-1] + (2 * hp,), shape[:-1] + (hp,), False)
    return {f"R2C in place h'={hp}": ms(lambda: pr.fft(buf, buf, cufft.CUFFT_FORWARD)),
            f"C2R in place h'={hp}": ms(lambda: pc.fft(buf, buf, cufft.CUFFT_INVERSE))}


def cost(be, shape):
    fwd, inv = cufft.CUFFT_FORWARD, cufft.CUFFT_INVERSE
    be.plan(shape)
    work, spec = be.work_buffers(shape)
    x = cp.random.random(shape, dtype=cp.float32)
    real = cp.empty(shape, cp.float32)
    spec2 = be.empty(spec.shape, complex=True)
    work[...] = x
    row = {
        "R2C contiguous->other": ms(lambda: be._plan(shape, "R2C", False).fft(x, spec2, fwd)),
        "R2C padded in place": ms(lambda: be._plan(shape, "R2C", True).fft(work, spec, fwd)),
        "C2R other->contiguous": ms(lambda: be._plan(shape, "C2R", False).fft(spec2, real,
                                                                              inv)),
        "C2R in place->padded": ms(lambda: be._plan(shape, "C2R", True).fft(spec, work, inv)),
        "multiply contiguous": ms(lambda: be.multiply(real, x)),
        "multiply x *= padded": ms(lambda: be.multiply(x, work)),
        "multiply padded *= x": ms(lambda: be.multiply(work, x)),
        "divide contiguous": ms(lambda: be.divide_guarded(x, real, 1e-6, out=real)),
        "divide padded": ms(lambda: be.divide_guarded(x, work, 1e-6, out=work)),
    }
    print(shape, {k: round(v, 3) for k, v in row.items()}, flush=True)


args = [a for a in sys.argv[1:] if a != "--pitch"]
shapes = [tuple(int(v) for v in a.split("x")) for a in args] or [
    (128, 1120, 1120), (96, 1120, 1120), (288, 288, 288), (64, 1024, 1024)]
backend = cb.CupyBackend()
for one in shapes:
    pitch(one) if "--pitch" in sys.argv else cost(backend, one)
    cb.clear_plan_cache()
    cp.get_default_memory_pool().free_all_blocks()
