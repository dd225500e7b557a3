"""The CuPy backend's kernels: fused elementwise steps (CuPy ``ElementwiseKernel``) and
float64 reductions in CUDA C (``RawKernel``), compiled once per device by
:class:`rlcore.backends.cupy.CupyBackend` (``kernels(cp)``)."""

from __future__ import annotations

from typing import Any

__all__ = ["kernels"]


_NORMS_SOURCE = r"""
extern "C" __global__ void rlcore_step_norms(const float* x, const float* y, const float* p,
                                             double* out, long long n, int has_p,
                                             long long row, long long pitch) {
    // sums of d*d, x*x and d*p with d = x * (y - 1): grid-stride loop, warp shuffles,
    // one double atomicAdd per block and sum; y's rows of `row` values lie `pitch` apart
    // (the real work buffer in cuFFT's in-place layout)
    double dd = 0.0, xx = 0.0, dp = 0.0;
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float xi = x[i];
        float yi = row == pitch ? y[i] : y[(i / row) * pitch + i % row];
        float d = xi * (yi - 1.0f);
        dd += (double)d * (double)d;
        xx += (double)xi * (double)xi;
        if (has_p) dp += (double)d * (double)p[i];
    }
    for (int o = 16; o > 0; o >>= 1) {
        dd += __shfl_down_sync(0xffffffffu, dd, o);
        xx += __shfl_down_sync(0xffffffffu, xx, o);
        dp += __shfl_down_sync(0xffffffffu, dp, o);
    }
    __shared__ double s[3][32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) { s[0][warp] = dd; s[1][warp] = xx; s[2][warp] = dp; }
    __syncthreads();
    if (warp == 0) {
        int warps = blockDim.x >> 5;
        dd = lane < warps ? s[0][lane] : 0.0;
        xx = lane < warps ? s[1][lane] : 0.0;
        dp = lane < warps ? s[2][lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) {
            dd += __shfl_down_sync(0xffffffffu, dd, o);
            xx += __shfl_down_sync(0xffffffffu, xx, o);
            dp += __shfl_down_sync(0xffffffffu, dp, o);
        }
        if (lane == 0) {
            atomicAdd(&out[0], dd);
            atomicAdd(&out[1], xx);
            atomicAdd(&out[2], dp);
        }
    }
}
"""


#: one block's float64 partial sum added to ``*out``: warp shuffles, one atomicAdd per
#: block (shared by the float64 reductions below)
_BLOCK_ADD = r"""
__device__ void rlcore_block_add(double s, double* out) {
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    __shared__ double w[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) w[warp] = s;
    __syncthreads();
    if (warp == 0) {
        s = lane < (int)(blockDim.x >> 5) ? w[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
        if (lane == 0) atomicAdd(out, s);
    }
}
"""

_SUM_SOURCE = _BLOCK_ADD + r"""
extern "C" __global__ void rlcore_sum(const float* x, double* out, long long n) {
    // float64 sum: grid-stride loop, then rlcore_block_add
    double s = 0.0;
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        s += (double)x[i];
    rlcore_block_add(s, out);
}
"""

_LOSS_SOURCE = _BLOCK_ADD + r"""
extern "C" __global__ void rlcore_spectral_loss(const float2* s, const float* w,
                                                const float2* t, double* out, long long n) {
    // sum of w |s|^2 - 2 Re(conj(s) t) in float64, one pass (as rlcore_sum)
    double a = 0.0;
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        double re = s[i].x, im = s[i].y;
        a += (double)w[i] * (re * re + im * im) - 2.0 * (re * t[i].x + im * t[i].y);
    }
    rlcore_block_add(a, out);
}
"""


def kernels(cp: Any) -> dict[str, Any]:
    """The kernels by name, for the CuPy module ``cp`` (on its current device)."""
    return {
        "cmul": cp.ElementwiseKernel(
            "complex64 otf, float32 scale", "complex64 s", "s = s * otf * scale",
            "rlcore_cmul"),
        "cmul_conj": cp.ElementwiseKernel(
            "complex64 otf, float32 scale", "complex64 s", "s = s * conj(otf) * scale",
            "rlcore_cmul_conj"),
        "divide": cp.ElementwiseKernel(
            "float32 n, float32 eps", "float32 d", "d = d > eps ? n / d : 0.0f",
            "rlcore_divide_guarded"),
        "divide_out": cp.ElementwiseKernel(
            "float32 n, float32 d, float32 eps", "float32 out",
            "out = d > eps ? n / d : 0.0f", "rlcore_divide_guarded_out"),
        "multiply": cp.ElementwiseKernel(
            "float32 y", "float32 x", "x = x * y", "rlcore_multiply"),
        # momentum: the update and the next extrapolated point in one pass
        "multiply_extrapolate": cp.ElementwiseKernel(
            "float32 w, float32 a, bool positive", "float32 y, float32 x",
            "float xn = (positive && w <= 0.0f) ? 0.0f : y * w; "
            "float yn = xn + a * (xn - x); x = xn; y = yn > 0.0f ? yn : 0.0f",
            "rlcore_multiply_extrapolate"),
        "multiply_positive": cp.ElementwiseKernel(
            "float32 y", "float32 x", "x = y > 0.0f ? x * y : 0.0f", "rlcore_multiply_positive"),
        "multiply_with_step": cp.ElementwiseKernel(
            "float32 y", "float32 x, float32 s", "s = x * (y - 1.0f); x = x * y",
            "rlcore_multiply_with_step"),
        "clip_negative": cp.ElementwiseKernel(
            "", "float32 x", "x = x > 0.0f ? x : 0.0f", "rlcore_clip_negative"),
        "zero_where": cp.ElementwiseKernel(
            "float32 s", "float32 x", "x = s != 0.0f ? x : 0.0f", "rlcore_zero_where"),
        "extrapolate": cp.ElementwiseKernel(
            "float32 x, float32 a", "float32 p",
            "float v = x + a * (x - p); p = v > 0.0f ? v : 0.0f", "rlcore_extrapolate"),
        # three sums in one pass (CuPy's ReductionKernel was about 100x slower for a
        # float64 full reduction)
        "norms": cp.RawKernel(_NORMS_SOURCE, "rlcore_step_norms"),
        "sum": cp.RawKernel(_SUM_SOURCE, "rlcore_sum"),
        # iterations="auto"'s held-out loss after every update: one kernel (the generic
        # array form runs ~15 kernels with float64 temporaries, about one update's time)
        "spectral_loss": cp.RawKernel(_LOSS_SOURCE, "rlcore_spectral_loss"),
        # one pass, no temporary (isfinite(x).all() would allocate a bool per voxel)
        "all_finite": cp.ReductionKernel(
            "float32 x", "bool y", "isfinite(x)", "a && b", "y = a", "true",
            "rlcore_all_finite"),
    }
