"""OpenCL backend: pyopencl arrays on any vendor's GPU or CPU (PoCL), reikna's FFT or VkFFT.

How it differs from RedLionfish's OpenCL path (complex64 everywhere, work-groups of
(1, 1, 1)):

* **Real data, real transforms.** Every real array stays float32. A real-to-complex FFT of
  an ``(..., X)`` array with even ``X`` is a complex FFT of half the length: the array's own
  buffer is read as ``(..., X/2)`` complex values (even samples real, odd ones imaginary),
  transformed, and split into the half spectrum with one pass (the standard "two real
  sequences in one complex FFT" identity; e.g. Press et al., Numerical Recipes 3rd ed.,
  sec. 12.3). So each transform moves half the data of a complex one.
* **One fused pass per convolution.** ``H x`` is: complex FFT of the packed array into the
  spectrum work buffer, one kernel that unpacks the half spectrum, multiplies by the OTF
  (or its conjugate) and repacks it in place (each Hermitian pair by one work item), and
  the inverse complex FFT straight into the real output. One iteration = 4 half-length
  complex FFTs + 2 fused spectrum passes + 2 elementwise passes, in 5 grid arrays.
* **Work-group sizes.** Elementwise kernels go through pyopencl's
  ``ElementwiseKernel``/``ReductionKernel``, which size work-groups from the device; ours
  run in groups of :data:`LOCAL_SIZE` (left to NVIDIA's runtime, they ran several times
  slower).
* **Only the image crosses the bus.** Transfers from 16 MiB up go through two page-locked
  chunk buffers (``CL_MEM_ALLOC_HOST_PTR``); the PSF is placed, padded grids are built
  and normalised, the result is checked and cropped on the device
  (:class:`rlcore.protocol.GridPlacement`). Through NVIDIA's OpenCL it takes
  1.12-1.16x CuPy's time end to end (``bench/results/opencl-gpu.md``).
* **Compiled once.** Programs are built once per context, FFT plans once per shape and
  provider, and both are cached for the process.
* **FFT provider.** VkFFT (``pyvkfft``, its OpenCL backend) when installed, else reikna.
  ``RLCORE_OPENCL_FFT=reikna|vkfft`` forces one.

An odd last axis (periodic boundary on an odd-sized image) cannot be packed; it takes a
full-length complex transform instead (about twice the time and memory).

Device choice: ``device=`` an index into :func:`probe`'s list or a case-insensitive substring
of the platform, vendor or device name (``"nvidia"``, ``"pocl"``, ...); else the environment
variable ``RLCORE_OPENCL_DEVICE``; else the first GPU, else the first device.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from rlcore.backends._staging import LANE_CHUNK, PINNED_MIN, Staging
from rlcore.errors import BackendUnavailableError, DeviceOutOfMemoryError
from rlcore.protocol import TV_EPS_FLOOR, BackendBase, MemoryInfo, spectrum_shape

__all__ = ["OpenCLBackend", "probe", "create", "auto_skip_reason", "ENV_DEVICE", "ENV_FFT"]

ENV_DEVICE = "RLCORE_OPENCL_DEVICE"
ENV_FFT = "RLCORE_OPENCL_FFT"

_MISSING = "pyopencl or reikna is not installed: pip install 'rlcore[opencl]'"
_NO_PLATFORM = (
    "no OpenCL platform found (pyopencl's wheel brings no driver): install your GPU "
    "vendor's OpenCL driver (NVIDIA driver, AMD ROCm, Intel compute-runtime), or PoCL for "
    "CPUs (Debian/Ubuntu: apt-get install pocl-opencl-icd; conda: conda install -c "
    "conda-forge pocl)"
)
_TENSORFLOW = (
    "not probed: TensorFlow is loaded in this process, and PoCL's LLVM beside TensorFlow's "
    "has crashed the process (SIGSEGV); use OpenCL in a process without TensorFlow"
)

#: process-wide caches: contexts/queues per device, programs per context, FFT plans
_CONTEXTS: dict[tuple[str, str], tuple[Any, Any]] = {}
_PROGRAMS: dict[int, dict[str, Any]] = {}
_FFTS: dict[tuple, Any] = {}
#: each thread's staging per context (freed when the thread ends)
_STAGING = __import__("threading").local()

#: work-group size of rlcore's own kernels (global sizes are rounded up to a multiple;
#: every kernel checks its bound)
LOCAL_SIZE = 256


def clear_caches() -> None:
    """Drop cached FFT plans and programs (contexts stay)."""
    _FFTS.clear()
    _PROGRAMS.clear()


# reikna's temporary-array manager raises while the interpreter tears modules down: release
# the plans first
atexit.register(clear_caches)


# -- discovery ------------------------------------------------------------------------------


def _listing() -> list[tuple[Any, Any]]:
    """Every (platform, device) pair; empty when no ICD / driver is installed."""
    import pyopencl as cl

    try:
        platforms = cl.get_platforms()
    except (cl.LogicError, cl.RuntimeError):  # PLATFORM_NOT_FOUND_KHR: no ICD at all
        return []
    pairs = []
    for platform in platforms:
        try:
            pairs += [(platform, d) for d in platform.get_devices()]
        except (cl.LogicError, cl.RuntimeError):  # a platform with no usable device
            continue
    return pairs


def _describe(platform: Any, device: Any) -> str:
    import pyopencl as cl

    kind = "GPU" if device.type & cl.device_type.GPU else (
        "CPU" if device.type & cl.device_type.CPU else "accelerator")
    return (f"{platform.name.strip()}: {device.name.strip()} ({kind}, "
            f"{device.global_mem_size / 2**30:.1f} GiB)")


def probe() -> tuple[tuple[str, ...], str | None]:
    """OpenCL devices (``"[index] platform: device (kind, memory)"``), or why none can run."""
    if "tensorflow" in sys.modules:
        return (), _TENSORFLOW
    try:
        import pyopencl  # noqa: F401
        import reikna  # noqa: F401
    except ImportError as exc:
        return (), f"{_MISSING} ({exc})"
    pairs = _listing()
    if not pairs:
        return (), _NO_PLATFORM
    return tuple(f"[{i}] {_describe(p, d)}" for i, (p, d) in enumerate(pairs)), None


def auto_skip_reason() -> str | None:
    """Why ``backend="auto"`` should not pick OpenCL here (None: pick it).

    "auto" takes OpenCL only for a GPU (or a device named in ``RLCORE_OPENCL_DEVICE``): on
    CPUs the numpy backend is several times faster than PoCL (``bench/results``).
    """
    import pyopencl as cl

    if os.environ.get(ENV_DEVICE):
        return None
    if any(d.type & cl.device_type.GPU for _, d in _listing()):
        return None
    return "only CPU OpenCL devices here; the numpy backend is faster on CPUs"


def _select(device: Any) -> tuple[Any, Any]:
    pairs = _listing()
    if not pairs:
        raise BackendUnavailableError(_NO_PLATFORM)
    source = "device"
    if device is None and os.environ.get(ENV_DEVICE):
        device, source = os.environ[ENV_DEVICE], ENV_DEVICE
    if device is None:
        import pyopencl as cl

        gpus = [pair for pair in pairs if pair[1].type & cl.device_type.GPU]
        return (gpus or pairs)[0]
    choices = "; ".join(f"[{i}] {_describe(p, d)}" for i, (p, d) in enumerate(pairs))
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)
    if isinstance(device, bool) or not isinstance(device, (int, str)):
        raise TypeError(f"{source}: an OpenCL device index or name, got {device!r}")
    if isinstance(device, int):
        if not 0 <= device < len(pairs):
            raise ValueError(f"{source}: no OpenCL device {device}; choose from {choices}")
        return pairs[device]
    needle = device.strip().lower()
    for p, d in pairs:
        if needle in f"{p.name} {p.vendor} {d.name} {d.vendor}".lower():
            return p, d
    raise ValueError(f"{source}: no OpenCL device matches {device!r}; choose from {choices}")


def _context(platform: Any, device: Any) -> tuple[Any, Any]:
    import pyopencl as cl

    key = (platform.name, device.int_ptr if hasattr(device, "int_ptr") else device.name)
    if key not in _CONTEXTS:
        ctx = cl.Context([device])
        _CONTEXTS[key] = (ctx, cl.CommandQueue(ctx))
    return _CONTEXTS[key]


# -- kernels --------------------------------------------------------------------------------

#: Half-length packing of real transforms. ``Z`` is the complex FFT of the real array read
#: as complex pairs, shape (Dz, Dy, M), M = X / 2; ``S`` the half spectrum (Dz, Dy, M + 1);
#: ``w[k] = exp(-2 pi i k / X)``. With A = Z[k], B = conj(Z[-k]): the even samples' DFT is
#: E = (A + B) / 2, the odd samples' O = (A - B) / 2i, and S[k] = E + w^k O,
#: S[k + M] = E - w^k O = conj(S[-k, M - k_x]).
_SPECTRUM_SOURCE = r"""
inline float2 cmul(float2 a, float2 b) {
    return (float2)(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}
inline float2 cconj(float2 a) { return (float2)(a.x, -a.y); }
inline float2 times_minus_i(float2 a) { return (float2)(a.y, -a.x); }
inline float2 times_i(float2 a) { return (float2)(-a.y, a.x); }

/* (z, y, x) of the linear index i of a C-ordered (., Dy, Dx) array */
inline int3 unravel(long i, int Dy, int Dx) {
    const long r = i / Dx;
    return (int3)((int)(r / Dy), (int)(r % Dy), (int)(i % Dx));
}

/* row r = kz * Dy + ky of a (Dz, Dy, n) array -> the row of its Hermitian partner
   (-kz mod Dz, -ky mod Dy) */
inline long partner_row(long r, int Dz, int Dy) {
    const int ky = (int)(r % Dy), kz = (int)(r / Dy);
    return (long)((Dz - kz) % Dz) * Dy + (Dy - ky) % Dy;
}

/* E + i O from a spectrum value and the conjugate of its partner: the packed DFT */
inline float2 pack(float2 s1, float2 s2c, float2 w) {
    float2 e = 0.5f * (s1 + s2c);
    float2 o = 0.5f * cmul(s1 - s2c, cconj(w));
    return e + times_i(o);
}

__kernel void unpack(__global float2 *S, __global const float2 *Z, __global const float2 *w,
                     const int Dz, const int Dy, const int M) {
    const long i = get_global_id(0);
    const long H = M + 1;
    if (i >= (long)Dz * Dy * H) return;
    const int kx = (int)(i % H);
    const long r = i / H, q = partner_row(r, Dz, Dy);
    const float2 a = Z[r * M + (kx % M)];
    const float2 b = cconj(Z[q * M + ((M - kx) % M)]);
    S[i] = 0.5f * (a + b) + cmul(w[kx], times_minus_i(0.5f * (a - b)));
}

__kernel void pack_spectrum(__global float2 *Z, __global const float2 *S,
                            __global const float2 *w, const int Dz, const int Dy, const int M) {
    const long i = get_global_id(0);
    if (i >= (long)Dz * Dy * M) return;
    const int kx = (int)(i % M);
    const long r = i / M, q = partner_row(r, Dz, Dy), H = M + 1;
    const float2 s1 = S[r * H + kx];
    const float2 s2c = cconj(S[q * H + (M - kx)]);
    Z[i] = pack(s1, s2c, w[kx]);
}

/* the PSF (nz, ny, nx), centre voxel n // 2, wrapped around the origin of the grid
   (Gz, Gy, Gx): PSF index p lands on grid index (p - n / 2) mod G, so grid index g
   holds PSF index (g + n / 2) mod G where that is < n, else 0 */
__kernel void place_psf(__global float *out, __global const float *psf, const int Gz,
                        const int Gy, const int Gx, const int nz, const int ny,
                        const int nx) {
    const long i = get_global_id(0);
    if (i >= (long)Gz * Gy * Gx) return;
    const int3 g = unravel(i, Gy, Gx);
    const int pz = (g.x + nz / 2) % Gz, py = (g.y + ny / 2) % Gy, px = (g.z + nx / 2) % Gx;
    out[i] = (pz < nz && py < ny && px < nx) ? psf[((long)pz * ny + py) * nx + px] : 0.0f;
}

/* apply_otf in place: the work item of the lower index of each Hermitian pair (i, j)
   reads both values and writes both outputs (j = i for self-partners), so no second
   half-length buffer is needed */
inline float2 otf_product(float2 a, float2 b, __global const float2 *otf,
                          __global const float2 *w, long r, long q, int kx, int M,
                          int conjugate, float scale) {
    const long H = M + 1;
    const float2 e = 0.5f * (a + b);
    const float2 t = cmul(w[kx], times_minus_i(0.5f * (a - b)));
    float2 h1 = otf[r * H + kx];
    float2 h2 = otf[q * H + (M - kx)];
    if (conjugate) h1 = cconj(h1); else h2 = cconj(h2);
    return scale * pack(cmul(e + t, h1), cmul(e - t, h2), w[kx]);
}

__kernel void apply_otf_inplace(__global float2 *Z, __global const float2 *otf,
                                __global const float2 *w, const int Dz, const int Dy,
                                const int M, const int conjugate, const float scale) {
    const long i = get_global_id(0);
    if (i >= (long)Dz * Dy * M) return;
    const int kx = (int)(i % M), kx2 = (M - kx) % M;
    const long r = i / M, q = partner_row(r, Dz, Dy), j = q * M + kx2;
    if (j < i) return;  /* the pair's lower index does both */
    const float2 zi = Z[i], zj = Z[j];
    const float2 out_i = otf_product(zi, cconj(zj), otf, w, r, q, kx, M, conjugate, scale);
    if (j != i)
        Z[j] = otf_product(zj, cconj(zi), otf, w, q, r, kx2, M, conjugate, scale);
    Z[i] = out_i;
}

/* grid embedding on the device. Grid (Gz, Gy, Gx), image (nz, ny, nx) at offset
   (oz, oy, ox); src is image-sized, or grid-sized with the image in its region
   (src_grid). mode 0: ``fill`` outside the image; 1: the mirror (half-sample symmetric,
   repeated with period 2n, as numpy.pad(mode="symmetric")); 2: 1 inside, ``fill``
   outside (src unused) */
inline int mirror(int k, int n) {
    int m = k % (2 * n);
    if (m < 0) m += 2 * n;
    return m < n ? m : 2 * n - 1 - m;
}

__kernel void embed(__global float *out, __global const float *src, const int Gz,
                    const int Gy, const int Gx, const int nz, const int ny, const int nx,
                    const int oz, const int oy, const int ox, const int src_grid,
                    const int mode, const float fill) {
    const long i = get_global_id(0);
    if (i >= (long)Gz * Gy * Gx) return;
    const int3 g = unravel(i, Gy, Gx);
    int kz = g.x - oz, ky = g.y - oy, kx = g.z - ox;
    const int inside = kz >= 0 && kz < nz && ky >= 0 && ky < ny && kx >= 0 && kx < nx;
    if (mode == 2) { out[i] = inside ? 1.0f : fill; return; }
    if (!inside) {
        if (mode == 0) { out[i] = fill; return; }
        kz = mirror(kz, nz); ky = mirror(ky, ny); kx = mirror(kx, nx);
    }
    const long s = src_grid ? ((long)(kz + oz) * Gy + (ky + oy)) * Gx + (kx + ox)
                            : ((long)kz * ny + ky) * nx + kx;
    out[i] = src[s];
}

/* the RL ratio with the data at the image's size (RegionData): grid voxel i of den
   becomes data / den in the image region (nz, ny, nx) at (oz, oy, ox) where den > eps,
   else 0 */
__kernel void divide_region(__global float *den, __global const float *data, const int Gz,
                            const int Gy, const int Gx, const int nz, const int ny,
                            const int nx, const int oz, const int oy, const int ox,
                            const float eps) {
    const long i = get_global_id(0);
    if (i >= (long)Gz * Gy * Gx) return;
    const int3 g = unravel(i, Gy, Gx);
    const int kz = g.x - oz, ky = g.y - oy, kx = g.z - ox;
    const int inside = kz >= 0 && kz < nz && ky >= 0 && ky < ny && kx >= 0 && kx < nx;
    const float d = den[i];
    den[i] = (inside && d > eps) ? data[((long)kz * ny + ky) * nx + kx] / d : 0.0f;
}

/* the image region (nz, ny, nx) at (oz, oy, ox) of a grid-sized array (., Gy, Gx) */
__kernel void crop(__global float *out, __global const float *src, const int Gy,
                   const int Gx, const int nz, const int ny, const int nx, const int oz,
                   const int oy, const int ox) {
    const long i = get_global_id(0);
    if (i >= (long)nz * ny * nx) return;
    const int3 k = unravel(i, ny, nx);
    out[i] = src[((long)(k.x + oz) * Gy + (k.y + oy)) * Gx + (k.z + ox)];
}

/* odd last axis: full-length complex transforms */
__kernel void real_to_complex(__global float2 *c, __global const float *x, const long n) {
    const long i = get_global_id(0);
    if (i < n) c[i] = (float2)(x[i], 0.0f);
}

__kernel void crop_half(__global float2 *S, __global const float2 *C, const int X,
                        const long n) {
    const long i = get_global_id(0);
    const int H = X / 2 + 1;
    if (i < n) S[i] = C[(i / H) * X + (i % H)];
}

/* value at column kx < X of the full spectrum, row r, from a half spectrum (X/2 + 1) */
inline float2 full_at(__global const float2 *S, long r, int kx, int Dz, int Dy, int X) {
    const int H = X / 2 + 1;
    return kx < H ? S[r * H + kx] : cconj(S[partner_row(r, Dz, Dy) * H + (X - kx)]);
}

__kernel void apply_otf_full(__global float2 *C, __global const float2 *otf, const int Dz,
                             const int Dy, const int X, const int conjugate) {
    const long i = get_global_id(0);
    if (i >= (long)Dz * Dy * X) return;
    const float2 h = full_at(otf, i / X, (int)(i % X), Dz, Dy, X);
    C[i] = cmul(C[i], conjugate ? cconj(h) : h);
}

__kernel void expand_half(__global float2 *C, __global const float2 *S, const int Dz,
                          const int Dy, const int X) {
    const long i = get_global_id(0);
    if (i < (long)Dz * Dy * X) C[i] = full_at(S, i / X, (int)(i % X), Dz, Dy, X);
}

__kernel void multiply_spectrum(__global float2 *S, __global const float2 *otf, const long n,
                                const int conjugate) {
    const long i = get_global_id(0);
    if (i < n) S[i] = cmul(S[i], conjugate ? cconj(otf[i]) : otf[i]);
}

__kernel void real_part(__global float *x, __global const float2 *c, const float scale,
                        const long n) {
    const long i = get_global_id(0);
    if (i < n) x[i] = scale * c[i].x;
}

/* RLTV factor 1 / (1 - weight div(grad x / |grad x|)): forward differences, backward
   divergence, periodic ends (Dz = 1 for 2-D images: no z gradient) */
inline float at(__global const float *x, int z, int y, int k, int Dz, int Dy, int Dx) {
    z = (z + Dz) % Dz; y = (y + Dy) % Dy; k = (k + Dx) % Dx;
    return x[((long)z * Dy + y) * Dx + k];
}
inline float3 unit_gradient(__global const float *x, int z, int y, int k, int Dz, int Dy,
                            int Dx, float eps) {
    const float c = at(x, z, y, k, Dz, Dy, Dx);
    const float3 g = (float3)(at(x, z + 1, y, k, Dz, Dy, Dx) - c,
                              at(x, z, y + 1, k, Dz, Dy, Dx) - c,
                              at(x, z, y, k + 1, Dz, Dy, Dx) - c);
    return g / sqrt(dot(g, g) + eps * eps);
}
__kernel void tv_factor(__global float *out, __global const float *x, const int Dz,
                        const int Dy, const int Dx, const float weight, const float eps) {
    const long i = get_global_id(0);
    if (i >= (long)Dz * Dy * Dx) return;
    const int3 v = unravel(i, Dy, Dx);
    const int z = v.x, y = v.y, k = v.z;
    const float3 n = unit_gradient(x, z, y, k, Dz, Dy, Dx, eps);
    float div = n.x + n.y + n.z;
    div -= unit_gradient(x, z - 1, y, k, Dz, Dy, Dx, eps).x;
    div -= unit_gradient(x, z, y - 1, k, Dz, Dy, Dx, eps).y;
    div -= unit_gradient(x, z, y, k - 1, Dz, Dy, Dx, eps).z;
    out[i] = 1.0f / (1.0f - weight * div);
}
"""


def _programs(ctx: Any) -> dict[str, Any]:
    key = ctx.int_ptr
    if key in _PROGRAMS:
        return _PROGRAMS[key]
    import pyopencl as cl
    from pyopencl.elementwise import ElementwiseKernel
    from pyopencl.reduction import ReductionKernel

    fp64 = all(d.double_fp_config for d in ctx.devices)
    acc = np.float64 if fp64 else np.float32
    program = cl.Program(ctx, _SPECTRUM_SOURCE).build()
    k = {name: getattr(program, name) for name in (
        "unpack", "pack_spectrum", "real_to_complex", "crop_half",
        "apply_otf_full", "expand_half", "multiply_spectrum", "real_part", "tv_factor",
        "place_psf", "apply_otf_inplace", "embed", "crop", "divide_region")}

    def ew(args: str, op: str, name: str) -> Any:
        return ElementwiseKernel(ctx, args, op, name)

    def red(map_expr: str, args: str, name: str, dtype=acc, neutral="0",
            reduce_expr="a+b") -> Any:
        return ReductionKernel(ctx, dtype, neutral=neutral, reduce_expr=reduce_expr,
                               map_expr=map_expr, arguments=args, name=name)

    k.update(
        divide=ew("float *den, const float *num, const float eps",
                  "den[i] = den[i] > eps ? num[i] / den[i] : 0.0f", "rlcore_divide"),
        divide_out=ew("float *o, const float *num, const float *den, const float eps",
                      "o[i] = den[i] > eps ? num[i] / den[i] : 0.0f", "rlcore_divide_out"),
        multiply=ew("float *x, const float *y", "x[i] = x[i] * y[i]", "rlcore_multiply"),
        multiply_positive=ew("float *x, const float *y",
                             "x[i] = y[i] > 0.0f ? x[i] * y[i] : 0.0f",
                             "rlcore_multiply_positive"),
        # momentum: the update and the next extrapolated point in one pass
        multiply_extrapolate=ew(
            "float *y, const float *w, float *x, const float a, const int positive",
            "float xn = (positive && w[i] <= 0.0f) ? 0.0f : y[i] * w[i]; "
            "float yn = xn + a * (xn - x[i]); x[i] = xn; y[i] = yn > 0.0f ? yn : 0.0f",
            "rlcore_multiply_extrapolate"),
        multiply_with_step=ew(
            "float *x, const float *y, float *s",
            "s[i] = x[i] * (y[i] - 1.0f); x[i] = x[i] * y[i]", "rlcore_multiply_step"),
        clip_negative=ew("float *x", "x[i] = x[i] > 0.0f ? x[i] : 0.0f",
                         "rlcore_clip_negative"),
        zero_where=ew("float *x, const float *s", "x[i] = s[i] != 0.0f ? x[i] : 0.0f",
                      "rlcore_zero_where"),
        extrapolate=ew(
            "const float *x, float *p, const float a",
            "float v = x[i] + a * (x[i] - p[i]); p[i] = v > 0.0f ? v : 0.0f",
            "rlcore_extrapolate"),
        dd=red("(x[i] * (y[i] - 1.0f)) * (x[i] * (y[i] - 1.0f))",
               "const float *x, const float *y", "rlcore_dd"),
        xx=red("x[i] * x[i]", "const float *x", "rlcore_xx"),
        total=red("x[i]", "const float *x", "rlcore_total"),
        dp=red("(x[i] * (y[i] - 1.0f)) * p[i]", "const float *x, const float *y, "
               "const float *p", "rlcore_dp"),
        spectral_loss=red(
            "w[i] * (s[i].x * s[i].x + s[i].y * s[i].y) - 2.0f * (s[i].x * t[i].x + "
            "s[i].y * t[i].y)", "const float2 *s, const float *w, const float2 *t",
            "rlcore_spectral_loss"),
        max_abs=red("fabs(x[i])", "const float *x", "rlcore_max_abs", dtype=np.float32,
                    reduce_expr="fmax(a, b)"),
        all_finite=red("isfinite(x[i]) ? 1 : 0", "const float *x", "rlcore_all_finite",
                       dtype=np.int32, neutral="1", reduce_expr="a & b"),
    )
    _PROGRAMS[key] = k
    return k


# -- FFT providers ---------------------------------------------------------------------------


class _ReiknaFFT:
    """Complex-to-complex FFT over all axes by reikna; ``inverse`` normalised by 1/N."""

    provider = "reikna"

    def __init__(self, queue: Any, shape: tuple[int, ...]):
        from reikna.cluda import ocl_api
        from reikna.core import Type
        from reikna.fft import FFT

        self.thread = ocl_api().Thread(queue)
        self.plan = FFT(Type(np.complex64, shape)).compile(self.thread)

    def forward(self, out: Any, src: Any) -> None:
        self.plan(out, src, inverse=0)

    def inverse(self, out: Any, src: Any) -> None:
        self.plan(out, src, inverse=1)


class _VkFFT:
    """Complex-to-complex FFT over all axes by VkFFT (``pyvkfft.opencl``), out of place."""

    provider = "vkfft"

    def __init__(self, queue: Any, shape: tuple[int, ...]):
        from pyvkfft.opencl import VkFFTApp

        self.plan = VkFFTApp(shape, np.complex64, queue=queue, ndim=len(shape),
                             inplace=False, norm=1)

    def forward(self, out: Any, src: Any) -> None:
        self.plan.fft(src, out)

    def inverse(self, out: Any, src: Any) -> None:
        self.plan.ifft(src, out)


def fft_provider() -> str:
    """``"vkfft"`` when pyvkfft imports (or ``RLCORE_OPENCL_FFT`` says so), else
    ``"reikna"``."""
    choice = os.environ.get(ENV_FFT, "").strip().lower()
    if choice in ("reikna", "vkfft"):
        return choice
    if choice:
        raise ValueError(f"{ENV_FFT}: must be 'reikna' or 'vkfft', got {choice!r}")
    try:
        import pyvkfft.opencl  # noqa: F401
    except Exception:  # not installed, or built without OpenCL
        return "reikna"
    return "vkfft"


def _fft(queue: Any, shape: tuple[int, ...], provider: str) -> Any:
    key = (queue.int_ptr, shape, provider)
    if key not in _FFTS:
        _FFTS[key] = (_VkFFT if provider == "vkfft" else _ReiknaFFT)(queue, shape)
    return _FFTS[key]


# -- transfers ------------------------------------------------------------------------------


class _Staging(Staging):
    """:class:`rlcore.backends._staging.Staging` with page-locked OpenCL buffers
    (``CL_MEM_ALLOC_HOST_PTR``, mapped once) and a transfer queue per lane, for each
    context and calling thread: NVIDIA's OpenCL copies from such memory by DMA at the bus
    rate, while a copy from pageable NumPy memory runs at a few GB/s."""

    def __init__(self, cl: Any, ctx: Any):
        self.cl, self.ctx = cl, ctx
        self.queues: list[Any] = []
        self.buffers: list[Any] = []
        super().__init__(self._lane_buffers)

    def _lane_buffers(self, lane: int) -> list[np.ndarray]:
        cl = self.cl
        queue = cl.CommandQueue(self.ctx)
        flags = cl.mem_flags.READ_WRITE | cl.mem_flags.ALLOC_HOST_PTR
        buffers = [cl.Buffer(self.ctx, flags, LANE_CHUNK) for _ in range(2)]
        self.queues.append(queue)
        self.buffers += buffers
        return [cl.enqueue_map_buffer(queue, b, cl.map_flags.READ | cl.map_flags.WRITE,
                                      0, (LANE_CHUNK,), np.uint8)[0] for b in buffers]

    def upload_to(self, host: np.ndarray, array: Any) -> None:
        cl, base, offset = self.cl, array.base_data, array.offset
        self.upload(host, lambda i, k, start, n: cl.enqueue_copy(
            self.queues[i], base, self.views[i][k][:n], dst_offset=offset + start,
            is_blocking=False))

    def download_from(self, array: Any, host: np.ndarray) -> None:
        cl, base, offset = self.cl, array.base_data, array.offset
        self.download(host, lambda i, k, start, n: cl.enqueue_copy(
            self.queues[i], self.views[i][k][:n], base, src_offset=offset + start,
            is_blocking=False))


def _staging(cl: Any, ctx: Any) -> _Staging:
    """The staging buffers of this context for the calling thread."""
    mine = _STAGING.__dict__.setdefault("by_context", {})
    if ctx.int_ptr not in mine:
        mine[ctx.int_ptr] = _Staging(cl, ctx)
    return mine[ctx.int_ptr]


# -- the backend ---------------------------------------------------------------------------


class OpenCLBackend(BackendBase):
    """pyopencl arrays on one OpenCL device; see the module docstring.

    Parameters
    ----------
    platform, device : pyopencl.Platform, pyopencl.Device
        Where to compute (see :func:`create` for choosing by index or name).
    fft : {"reikna", "vkfft"}, optional
        FFT provider; default :func:`fft_provider`.
    """

    name = "opencl"
    #: checks and grid embedding run on the host (pyopencl arrays have no array-API
    #: namespace); the image then crosses to the device once
    on_host = True
    xp = None
    #: image, estimate, work (float32), OTF and spectrum work (complex64 half spectra):
    #: 20 bytes per grid voxel, and the FFT provider's own buffers: measured peaks of 5.34
    #: image arrays with VkFFT and 8.38 with reikna (its FFT keeps about two more arrays;
    #: bench/results/opencl-gpu.md)
    buffers_per_voxel = 34.0
    _BUFFERS_PER_VOXEL = {"vkfft": 22.0, "reikna": 34.0}

    def __init__(self, platform: Any, device: Any, fft: str | None = None):
        import pyopencl as cl
        import pyopencl.array  # noqa: F401
        import pyopencl.tools

        self.cl = cl
        self.cl_device = device
        self.device = _describe(platform, device)
        self.ctx, self.queue = _context(platform, device)
        self.fft_name = fft or fft_provider()
        self.buffers_per_voxel = self._BUFFERS_PER_VOXEL[self.fft_name]
        self.kernels = _programs(self.ctx)
        self.pool = cl.tools.MemoryPool(cl.tools.ImmediateAllocator(self.queue))
        self._plans: dict[tuple[int, ...], Any] = {}
        self._twiddles: dict[int, Any] = {}
        self._local: dict[str, int] = {}

    # -- memory and transfers
    def activate(self) -> Any:
        return _translate_oom(self.cl)

    def _alloc(self, shape: tuple[int, ...], dtype: Any) -> Any:
        import pyopencl.array as cla

        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if nbytes > self.cl_device.max_mem_alloc_size:
            raise DeviceOutOfMemoryError(
                f"OpenCL: one array of {nbytes / 2**20:.0f} MiB exceeds the device's largest "
                f"allocation ({self.cl_device.max_mem_alloc_size / 2**20:.0f} MiB) on "
                f"{self.device}; use blocks or a smaller volume")
        return cla.empty(self.queue, shape, dtype, allocator=self.pool)

    def empty(self, shape, *, complex=False):
        return self._alloc(tuple(shape), np.complex64 if complex else np.float32)

    def to_device(self, host):
        host = np.ascontiguousarray(host, dtype=np.float32)
        out = self._alloc(host.shape, np.float32)
        if host.nbytes < PINNED_MIN:
            out.set(host)
            return out
        self.queue.finish()  # the array's memory may be reused from work still queued
        _staging(self.cl, self.ctx).upload_to(host, out)
        return out

    def to_host(self, array):
        if isinstance(array, np.ndarray):
            return array
        if array.nbytes < PINNED_MIN or not array.flags.c_contiguous:
            return array.get()
        out = np.empty(array.shape, array.dtype)
        self.queue.finish()  # the array is computed
        _staging(self.cl, self.ctx).download_from(array, out)
        return out

    def memory(self) -> MemoryInfo:
        total = int(self.cl_device.global_mem_size)
        free = total - int(self.pool.managed_bytes) if hasattr(self.pool, "managed_bytes") \
            else total
        if self.cl_device.type & self.cl.device_type.CPU:
            import psutil

            free = min(free, int(psutil.virtual_memory().available))
        return MemoryInfo(free=max(free, 0), total=total)

    # -- FFT
    def fast_length(self, n: int) -> int:
        """Padded grid lengths: powers of 2 for reikna (other lengths take its much slower
        Bluestein path: 70 s against 4 s for one real-data case on PoCL), even 5-smooth
        lengths for VkFFT (even: the last axis packs into a half-length transform)."""
        n = int(n)
        if self.fft_name == "reikna":
            return 1 << max(1, (n - 1).bit_length())
        import scipy.fft

        m = scipy.fft.next_fast_len(n, real=True)
        while m % 2:
            m = scipy.fft.next_fast_len(m + 1, real=True)
        return m

    def plan(self, shape):
        shape = tuple(shape)
        if shape not in self._plans:
            packed = shape[-1] % 2 == 0
            fft_shape = shape[:-1] + (shape[-1] // 2,) if packed else shape
            self._plans[shape] = (packed, _fft(self.queue, fft_shape, self.fft_name))

    def _twiddle(self, x: int) -> Any:
        if x not in self._twiddles:
            k = np.arange(x // 2 + 1)
            w = np.exp(-2j * np.pi * k / x).astype(np.complex64)
            self._twiddles[x] = self._upload_any(w)
        return self._twiddles[x]

    def _upload_any(self, host: np.ndarray) -> Any:
        out = self._alloc(host.shape, host.dtype)
        out.set(np.ascontiguousarray(host))
        return out

    def _view(self, array: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        """``array``'s buffer read as ``shape`` of ``dtype`` (no copy)."""
        import pyopencl.array as cla

        return cla.Array(self.queue, shape, dtype, data=array.base_data, offset=array.offset)

    def _scratch(self, shape: tuple[int, ...]) -> Any:
        """A complex work array, freed (back to the pool) when the caller drops it: the
        iteration itself needs none (the OTF product is made in the spectrum work
        buffer), so no grid-sized scratch outlives the transform that used it."""
        return self._alloc(shape, np.complex64)

    @staticmethod
    def _dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(Dz, Dy, X) of a 2-D or 3-D shape (Dz = 1 for 2-D)."""
        if len(shape) == 2:
            return 1, shape[0], shape[1]
        if len(shape) == 3:
            return shape
        raise ValueError(f"the OpenCL backend computes 2-D and 3-D grids, got {shape}")

    def _grid(self, shape: tuple[int, ...]) -> tuple[Any, tuple[int, int, int], Any]:
        """The FFT plan of a grid shape, its (Dz, Dy, X), and the half-length complex shape
        of the packed real FFT (None for an odd last axis, which takes the full path)."""
        self.plan(shape)
        packed, fft = self._plans[shape]
        return fft, self._dims(shape), (shape[:-1] + (shape[-1] // 2,) if packed else None)

    def _run(self, kernel: Any, n: int, *args: Any) -> None:
        """``kernel`` over ``n`` items in work-groups of :data:`LOCAL_SIZE` (or the most
        the kernel allows on this device); left to the runtime, NVIDIA's driver ran
        them several times slower."""
        local = self._local.get(kernel.function_name)
        if local is None:
            local = min(LOCAL_SIZE, kernel.get_work_group_info(
                self.cl.kernel_work_group_info.WORK_GROUP_SIZE, self.cl_device))
            self._local[kernel.function_name] = local
        kernel(self.queue, (-(-int(n) // local) * local,), (local,), *args)

    def rfftn(self, x, out=None):
        shape = tuple(x.shape)
        fft, (dz, dy, nx), half = self._grid(shape)
        spectrum = out if out is not None else self.empty(spectrum_shape(shape), complex=True)
        if half is not None:
            m = nx // 2
            z = self._scratch(half)
            fft.forward(z, self._view(x, half, np.complex64))
            self._run(self.kernels["unpack"], spectrum.size, spectrum.data, z.data,
                      self._twiddle(nx).data, np.int32(dz), np.int32(dy), np.int32(m))
        else:
            c = self._full_complex(x, shape)
            self._run(self.kernels["crop_half"], spectrum.size, spectrum.data, c.data,
                      np.int32(nx), np.int64(spectrum.size))
        return spectrum

    def _full_complex(self, x: Any, shape: tuple[int, ...]) -> Any:
        """FFT of ``x`` as a full-length complex array (odd last axis), a new array."""
        _, fft = self._plans[shape]
        c0, c1 = self._scratch(shape), self._scratch(shape)
        self._run(self.kernels["real_to_complex"], x.size, c0.data, x.data, np.int64(x.size))
        fft.forward(c1, c0)
        return c1

    def irfftn(self, spectrum, shape, out=None):
        shape = tuple(shape)
        fft, (dz, dy, nx), half = self._grid(shape)
        out = out if out is not None else self.empty(shape)
        if half is not None:
            m = nx // 2
            z = self._scratch(half)
            self._run(self.kernels["pack_spectrum"], z.size, z.data, spectrum.data,
                      self._twiddle(nx).data, np.int32(dz), np.int32(dy), np.int32(m))
            fft.inverse(self._view(out, half, np.complex64), z)
            return out
        c0, c1 = self._scratch(shape), self._scratch(shape)
        self._run(self.kernels["expand_half"], c0.size, c0.data, spectrum.data, np.int32(dz),
                  np.int32(dy), np.int32(nx))
        fft.inverse(c1, c0)
        self._run(self.kernels["real_part"], out.size, out.data, c1.data, np.float32(1.0),
                  np.int64(out.size))
        return out

    def multiply_spectrum(self, spectrum, otf, *, conjugate=False):
        self._run(self.kernels["multiply_spectrum"], spectrum.size, spectrum.data, otf.data,
                  np.int64(spectrum.size), np.int32(bool(conjugate)))
        return spectrum

    def apply_otf(self, x, otf, *, conjugate=False, work=None, out=None):
        shape = tuple(x.shape)
        fft, (dz, dy, nx), half = self._grid(shape)
        out = out if out is not None else self.empty(shape)
        if half is not None:
            m = nx // 2
            # the packed spectrum in the caller's spectrum work buffer (one more column)
            z = self._scratch(half) if work is None else self._view(work, half, np.complex64)
            fft.forward(z, self._view(x, half, np.complex64))
            self._run(self.kernels["apply_otf_inplace"], z.size, z.data, otf.data,
                      self._twiddle(nx).data, np.int32(dz), np.int32(dy), np.int32(m),
                      np.int32(bool(conjugate)), np.float32(1.0))
            fft.inverse(self._view(out, half, np.complex64), z)
            return out
        c = self._full_complex(x, shape)
        self._run(self.kernels["apply_otf_full"], c.size, c.data, otf.data, np.int32(dz),
                  np.int32(dy), np.int32(nx), np.int32(bool(conjugate)))
        c0 = self._scratch(shape)
        fft.inverse(c0, c)
        self._run(self.kernels["real_part"], out.size, out.data, c0.data, np.float32(1.0),
                  np.int64(out.size))
        return out

    def place_psf(self, psf, grid_shape, out):
        """The PSF wrapped around the grid origin (as :func:`rlcore.boundary.place_psf`):
        the PSF uploaded as it is, placed by one kernel (no grid-sized host array)."""
        psf = np.ascontiguousarray(psf, dtype=np.float32)
        gz, gy, gx = self._dims(tuple(grid_shape))
        nz, ny, nx = self._dims(psf.shape)
        self._run(self.kernels["place_psf"], out.size, out.data, self._upload_any(psf).data,
                  *(np.int32(n) for n in (gz, gy, gx, nz, ny, nx)))
        return out

    # -- the grid on the device (GridPlacement)
    def _placement(self, grid: Any) -> tuple[np.int32, ...]:
        pad = (0,) * (3 - len(grid.shape))
        return tuple(np.int32(n) for n in (*self._dims(grid.shape),
                                           *self._dims(grid.image_shape),
                                           *pad, *grid.offset))

    def embed(self, array, grid, fill):
        # blocks the pool holds (the uploaded image, once embedded) go back to the device
        # first, so that no freed block of another size adds to the peak
        self.pool.free_held()
        out = self.empty(grid.shape)
        src_grid = tuple(array.shape) == tuple(grid.shape)
        self._run(self.kernels["embed"], out.size, out.data, array.data,
                  *self._placement(grid), np.int32(src_grid), np.int32(fill is None),
                  np.float32(0.0 if fill is None else fill))
        return out

    def region_mask(self, grid, out, outside=0.0):
        self._run(self.kernels["embed"], out.size, out.data, out.data,
                  *self._placement(grid), np.int32(0), np.int32(2), np.float32(outside))
        return out

    def crop(self, array, grid):
        self.pool.free_held()  # the data's grid array, dropped before the result is cropped
        out = self.empty(grid.image_shape)
        _, gy, gx, nz, ny, nx, oz, oy, ox = self._placement(grid)
        self._run(self.kernels["crop"], out.size, out.data, array.data, gy, gx, nz, ny, nx,
                  oz, oy, ox)
        return out

    def divide_region(self, data, model, guard, grid):
        self._run(self.kernels["divide_region"], model.size, model.data, data.data,
                  *self._placement(grid), np.float32(guard))
        return model

    def mean(self, x):
        return float(self.kernels["total"](x, queue=self.queue).get()) / x.size

    # -- elementwise
    def divide_guarded(self, numerator, denominator, guard, out=None):
        if out is None or out is denominator:
            self.kernels["divide"](denominator, numerator, np.float32(guard))
            return denominator
        self.kernels["divide_out"](out, numerator, denominator, np.float32(guard))
        return out

    def multiply(self, x, y):
        self.kernels["multiply"](x, y)
        return x

    def multiply_positive(self, x, y):
        self.kernels["multiply_positive"](x, y)
        return x

    def multiply_extrapolate(self, y, w, x, alpha, *, positive=False):
        self.kernels["multiply_extrapolate"](y, w, x, np.float32(alpha), np.int32(positive))
        return x, y

    def multiply_with_step(self, x, y, step):
        self.kernels["multiply_with_step"](x, y, step)
        return x, step

    def copy_into(self, src, dst):
        self.cl.enqueue_copy(self.queue, dst.base_data, src.base_data,
                             byte_count=src.nbytes, src_offset=src.offset,
                             dst_offset=dst.offset)
        return dst

    def to_device_spectrum(self, host):
        return self._upload_any(np.ascontiguousarray(host, dtype=np.complex64))

    def spectral_loss(self, spectrum, weight, target):
        return float(self.kernels["spectral_loss"](spectrum, weight, target,
                                                   queue=self.queue).get())

    def clip_negative(self, x):
        self.kernels["clip_negative"](x)
        return x

    def zero_where(self, x, support):
        self.kernels["zero_where"](x, support)
        return x

    def extrapolate(self, x, previous, alpha):
        self.kernels["extrapolate"](x, previous, np.float32(alpha))
        return previous

    def update_norms(self, x, y, previous_change=None):
        k = self.kernels
        dd = float(k["dd"](x, y, queue=self.queue).get())
        xx = float(k["xx"](x, queue=self.queue).get())
        dp = 0.0
        if previous_change is not None:
            dp = float(k["dp"](x, y, previous_change, queue=self.queue).get())
        return dd, xx, dp

    def tv_factor(self, x, weight):
        dz, dy, nx = self._dims(tuple(x.shape))
        eps = 1e-8 * float(self.kernels["max_abs"](x, queue=self.queue).get()) + TV_EPS_FLOOR
        out = self.empty(tuple(x.shape))
        self._run(self.kernels["tv_factor"], x.size, out.data, x.data, np.int32(dz),
                  np.int32(dy), np.int32(nx), np.float32(weight), np.float32(eps))
        return out

    def all_finite(self, x):
        if isinstance(x, np.ndarray):
            return bool(np.isfinite(x).all())
        return bool(self.kernels["all_finite"](x, queue=self.queue).get())


@contextlib.contextmanager
def _translate_oom(cl: Any) -> Iterator[None]:
    try:
        yield
    except cl.MemoryError as exc:
        raise DeviceOutOfMemoryError(f"OpenCL device out of memory: {exc}") from exc
    except cl.RuntimeError as exc:
        text = str(exc)
        if "OUT_OF_RESOURCES" in text or "OUT_OF_HOST_MEMORY" in text or \
                "MEM_OBJECT_ALLOCATION_FAILURE" in text:
            raise DeviceOutOfMemoryError(f"OpenCL device out of memory: {exc}") from exc
        raise


def create(device: Any = None, like: Any = None) -> OpenCLBackend:
    """The OpenCL backend on ``device`` (index, name substring, or None; see module doc).

    Raises
    ------
    BackendUnavailableError
        pyopencl/reikna missing, or no OpenCL platform (the message says what to install).
    ValueError, TypeError
        ``device`` (or ``RLCORE_OPENCL_DEVICE``) matches no device.
    """
    devices, reason = probe()
    if reason is not None:
        raise BackendUnavailableError(f"backend 'opencl' cannot run here: {reason}")
    platform, dev = _select(device)
    return OpenCLBackend(platform, dev)
