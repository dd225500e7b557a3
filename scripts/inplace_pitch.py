# issue 19: cuFFT in-place real transforms with padded rows: does a row pitch aligned
# beyond 2 (n // 2 + 1) floats recover out-of-place speed? python3 scripts/inplace_pitch.py
import cupy as cp
import numpy as np
from cupy.cuda import cufft


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


for shape in [(128, 1120, 1120), (96, 1120, 1120), (128, 1088, 1088), (128, 1152, 1152),
              (128, 1200, 1200), (128, 1024, 1024), (288, 288, 288), (280, 280, 280)]:
    h = shape[-1] // 2 + 1
    row = {}
    x = cp.random.random(shape, dtype=cp.float32)
    s = cp.empty(shape[:-1] + (h,), cp.complex64)
    p = plan(shape, shape, s.shape, True)
    row["oop"] = ms(lambda: p.fft(x, s, cufft.CUFFT_FORWARD))
    del p
    for align in (1, 8, 32, 64):
        hp = -(-h // align) * align
        buf = cp.zeros(shape[:-1] + (hp,), cp.complex64)
        pr = plan(shape, shape[:-1] + (2 * hp,), shape[:-1] + (hp,), True)
        pc = plan(shape, shape[:-1] + (2 * hp,), shape[:-1] + (hp,), False)
        row[f"in-place h'={hp}"] = ms(lambda: pr.fft(buf, buf, cufft.CUFFT_FORWARD))
        row[f"C2R in-place h'={hp}"] = ms(lambda: pc.fft(buf, buf, cufft.CUFFT_INVERSE))
        del buf, pr, pc
    print(shape, {k: round(v, 3) for k, v in row.items()}, flush=True)
    del x, s
    cp.get_default_memory_pool().free_all_blocks()
