# issue 19 experiment (GPU machine): does cuFFT's CUFFT_WORKAREA_MINIMAL policy shrink the
# work area of the 3-D R2C/C2R plans on padded grids, and at what speed? Plans made by
# ctypes: cufftCreate, SetAutoAllocation(0), MakePlanMany, then XtSetWorkAreaPolicy.
import ctypes
import statistics
import sys

import cupy as cp
from cupy.cuda import cufft  # noqa: F401  (loads libcufft)


def lib():
    with open("/proc/self/maps") as maps:
        for line in maps:
            if "libcufft.so" in line:
                return ctypes.CDLL(line.split()[-1])
    raise OSError("libcufft not loaded")


L = lib()
R2C, C2R = 0x2A, 0x2C


def make(shape, kind, policy):
    h = ctypes.c_int()
    assert L.cufftCreate(ctypes.byref(h)) == 0
    if policy is None:  # the policy call needs cuFFT's own allocation (it releases it)
        assert L.cufftSetAutoAllocation(h, 0) == 0
    n = (ctypes.c_int * 3)(*shape)
    work = ctypes.c_size_t(0)
    rc = L.cufftMakePlanMany(h, 3, n, None, 1, 0, None, 1, 0, kind, 1, ctypes.byref(work))
    assert rc == 0, rc
    if policy is not None:  # after the plan: cuFFT re-plans the handle for this policy
        size = ctypes.c_size_t(0)
        rc = L.cufftXtSetWorkAreaPolicy(h, ctypes.c_int(policy), ctypes.byref(size))
        if rc != 0:
            print("policy rc", rc)
        assert L.cufftGetSize(h, ctypes.byref(work)) == 0
    return h, work.value


for shape in ((128, 1120, 1120), (96, 1120, 1120), (288, 288, 288)):
    grid = 4 * shape[0] * shape[1] * shape[2]
    x = cp.random.random(shape, dtype=cp.float32)
    s = cp.empty(shape[:-1] + (shape[-1] // 2 + 1,), cp.complex64)
    for policy in (None, 0):
        (hr, wr), (hc, wc) = make(shape, R2C, policy), make(shape, C2R, policy)
        area = cp.cuda.alloc(max(wr, wc, 1))
        for h in (hr, hc):
            L.cufftSetWorkArea(h, ctypes.c_void_p(area.ptr))
            L.cufftSetStream(h, ctypes.c_void_p(cp.cuda.get_current_stream().ptr))
        times = []
        for i in range(11):
            a, b = cp.cuda.Event(), cp.cuda.Event()
            a.record()
            assert L.cufftExecR2C(hr, ctypes.c_void_p(x.data.ptr), ctypes.c_void_p(s.data.ptr)) == 0
            assert L.cufftExecC2R(hc, ctypes.c_void_p(s.data.ptr), ctypes.c_void_p(x.data.ptr)) == 0
            b.record()
            b.synchronize()
            if i:
                times.append(cp.cuda.get_elapsed_time(a, b))
        print(shape, "policy", "default" if policy is None else "MINIMAL", "work R2C/C2R",
              round(wr / grid, 3), round(wc / grid, 3), "pair ms",
              round(statistics.median(times), 3))
        sys.stdout.flush()
        L.cufftDestroy(hr)
        L.cufftDestroy(hc)
