"""The OpenCL backend's kernels (:mod:`rlcore.backends.opencl`): rlcore's own OpenCL C
(packed real transforms' unpacking, the fused OTF pass, padded grids' placement), and
pyopencl's elementwise and reduction kernels, built once per context and cached."""

from __future__ import annotations

from typing import Any

import numpy as np

#: rlcore's work-group size (global sizes are rounded up to a multiple; every kernel
#: checks its bound)
LOCAL_SIZE = 256

#: programs per context (process-wide)
_PROGRAMS: dict[int, dict[str, Any]] = {}


def clear() -> None:
    """Drop the built programs."""
    _PROGRAMS.clear()


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


def programs(ctx: Any) -> dict[str, Any]:
    """The kernels of ``ctx`` by name, built on first use."""
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
