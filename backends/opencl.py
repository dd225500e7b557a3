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

from rlcore.backends import _opencl_fft, _opencl_kernels
from rlcore.backends._opencl_fft import ENV_FFT, fft_provider
from rlcore.backends._opencl_kernels import LOCAL_SIZE
from rlcore.backends._staging import LANE_CHUNK, PINNED_MIN, Staging
from rlcore.errors import BackendUnavailableError, DeviceOutOfMemoryError
from rlcore.protocol import TV_EPS_FLOOR, BackendBase, MemoryInfo, spectrum_shape

__all__ = ["OpenCLBackend", "probe", "create", "auto_skip_reason", "ENV_DEVICE", "ENV_FFT"]

ENV_DEVICE = "RLCORE_OPENCL_DEVICE"

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

#: process-wide cache: contexts/queues per device (programs: _opencl_kernels; FFT plans:
#: _opencl_fft)
_CONTEXTS: dict[tuple[str, str], tuple[Any, Any]] = {}
#: each thread's staging per context (freed when the thread ends)
_STAGING = __import__("threading").local()

def clear_caches() -> None:
    """Drop cached FFT plans and programs (contexts stay)."""
    _opencl_fft.clear()
    _opencl_kernels.clear()


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
        self.kernels = _opencl_kernels.programs(self.ctx)
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
            self._plans[shape] = (packed, _opencl_fft.plan(self.queue, fft_shape, self.fft_name))

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
