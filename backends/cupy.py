"""CuPy backend: RL on NVIDIA GPUs with cuFFT, arrays kept on the device.

* cuFFT real-to-complex / complex-to-real plans are made once per shape and cached for the
  process; they write into the backend's preallocated buffers (no allocation per FFT).
* The elementwise steps are single fused kernels: spectrum x OTF (x conj(OTF) for the
  adjoint) with the 1/N inverse-FFT normalisation folded in; the guarded divide; the
  in-place multiply. One iteration = 4 real FFTs + 4 elementwise passes.
* Device memory for one run: image and estimate (float32), the OTF and one spectrum work
  buffer (complex64 half spectra) whose memory is also the real work buffer (cuFFT's
  in-place layout, rows padded to 2 (n // 2 + 1) floats: :meth:`CupyBackend.work_buffers`),
  plus one cuFFT work area shared by every plan of a shape.
* CUDA / cuFFT out-of-memory becomes :class:`rlcore.errors.DeviceOutOfMemoryError`.

The kernels' sources are in :mod:`rlcore.backends._cupy_kernels`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from rlcore.backends._cupy_kernels import kernels
from rlcore.backends._results import PinnedResults
from rlcore.backends._staging import LANE_CHUNK, PINNED_MIN, Staging
from rlcore.errors import BackendUnavailableError, DeviceOutOfMemoryError
from rlcore.protocol import BackendBase, MemoryInfo, SlicedRegionData, spectrum_shape

__all__ = ["CupyBackend", "probe", "create"]

_MISSING = "CuPy is not installed: pip install cupy-cuda12x (or the wheel for your CUDA)"

#: cuFFT plans per (shape, kind, padded, device), the work area the plans of a shape share
#: per (shape, device), and compiled kernels per device, for the process
_PLANS: dict[tuple, Any] = {}
_AREAS: dict[tuple, Any] = {}
_KERNELS: dict[int, dict[str, Any]] = {}


def clear_plan_cache() -> None:
    """Release every cached cuFFT plan (and its workspace)."""
    _PLANS.clear()
    _AREAS.clear()


#: each thread's staging per device; a thread's buffers go back to CuPy's page-locked
#: pool when it ends (the block scheduler and the series pipeline copy on threads of
#: their own: a cold page-locked allocation costs ~2 GB/s, 65 ms for a thread's lanes)
_STAGING = __import__("threading").local()
#: page-locked block buffers for the block scheduler, per device
_PINNED_FREE: dict[int, list[np.ndarray]] = {}
_PINNED_LOCK = __import__("threading").Lock()
#: device names by index (the runtime's property query costs ~1.2 ms a call, and a
#: deconvolve made two backends)
_NAMES: dict[int, str] = {}
#: lanes of the series pipeline's transfer threads (rlcore.pipeline): overlapped with
#: the iterations, they need not be fast, and 8 lanes there slowed the computing
#: thread (their Python between copies takes the GIL): (64, 256, 256) frames on an H200
#: spent 5.8 ms a frame in the run (2.7 ms alone) with the upload thread busy 3.5 ms
PIPELINE_LANES = 2
#: page-locked result arrays (:mod:`backends._results`), made on first use
_RESULTS: list[PinnedResults] = []


def _device_name(cp: Any, device: int) -> str:
    if device not in _NAMES:
        props = cp.cuda.runtime.getDeviceProperties(device)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        _NAMES[device] = f"GPU {device}: {name}, {props['totalGlobalMem'] / 2**30:.0f} GiB"
    return _NAMES[device]


def _results(cp: Any) -> PinnedResults:
    with _PINNED_LOCK:
        if not _RESULTS:
            def malloc(nbytes: int) -> Any:  # outside CuPy's pool: freed when dropped
                return cp.cuda.PinnedMemoryPointer(cp.cuda.PinnedMemory(nbytes), 0)

            _RESULTS.append(PinnedResults(malloc))
        return _RESULTS[0]


def _even_7_smooth(n: int) -> int:
    """Smallest m >= n whose prime factors are 2, 3, 5 and 7, even when n > 2."""
    if n <= 2:
        return max(n, 1)
    m = n + (n % 2)
    while True:
        k = m
        for p in (2, 3, 5, 7):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 2


def _planless(shape: tuple[int, ...]) -> bool:
    """At most one axis longer than 1 (a single voxel, a line): such an array is both C-
    and F-contiguous and cuFFT's N-d plans refuse it, so CuPy's plain FFT runs instead."""
    return sum(int(n) > 1 for n in shape) <= 1


def _lend_once(area: Any, allocator: Any) -> Any:
    """An allocator that hands out ``area`` (a MemoryPointer) for the first request of more
    than half its size that it can hold (the new cuFFT plan's work area: nothing else the
    plan allocates is that large) and passes every other to ``allocator``."""
    lent = []

    def allocate(size: int) -> Any:
        if not lent and area.mem.size // 2 < size <= area.mem.size:
            lent.append(size)
            return area
        return allocator(size)

    return allocate


class _Staging(Staging):
    """:class:`backends._staging.Staging` with pinned CuPy buffers and a stream per lane,
    for each device and calling thread."""

    def __init__(self, cp: Any, lanes: int | None = None):
        self.cp = cp
        self.memory: list[Any] = []  # the page-locked allocations the views lie in
        self.streams: list[Any] = []
        self.stream = cp.cuda.Stream(non_blocking=True)  # single DMAs of pinned arrays
        super().__init__(self._lane_buffers, lanes)

    def _lane_buffers(self, lane: int) -> list[np.ndarray]:
        memory = [self.cp.cuda.alloc_pinned_memory(LANE_CHUNK) for _ in range(2)]
        self.memory += memory
        self.streams.append(self.cp.cuda.Stream(non_blocking=True))
        return [np.frombuffer(m, dtype=np.uint8, count=LANE_CHUNK) for m in memory]

    def _dma(self, lane: int, dst: int, src: int, n: int, kind: int) -> _Event:
        rt, stream = self.cp.cuda.runtime, self.streams[lane]
        rt.memcpyAsync(dst, src, n, kind, stream.ptr)
        return _Event(stream.record())

    def upload_to(self, host: np.ndarray, device_array: Any, after: Any = None) -> None:
        """``host`` into ``device_array`` once ``after`` (an event) has completed: by
        default the work queued on the current stream so far, which may still use the
        array's memory."""
        base, h2d = device_array.data.ptr, self.cp.cuda.runtime.memcpyHostToDevice
        queued = self.cp.cuda.get_current_stream().record() if after is None else after

        def dma(i: int, k: int, start: int, n: int) -> _Event:
            self.streams[i].wait_event(queued)
            return self._dma(i, base + start, self.views[i][k].ctypes.data, n, h2d)

        self.upload(host, dma)

    def download_from(self, device_array: Any, host: np.ndarray, after: Any = None) -> None:
        if after is not None:  # an event recorded after the result was computed
            after.synchronize()
        else:
            self.cp.cuda.get_current_stream().synchronize()  # the result is computed
        base, d2h = device_array.data.ptr, self.cp.cuda.runtime.memcpyDeviceToHost
        self.download(host, lambda i, k, start, n: self._dma(
            i, self.views[i][k].ctypes.data, base + start, n, d2h))


class _Event:
    def __init__(self, event: Any):
        self.event = event

    def wait(self) -> None:
        self.event.synchronize()


def _staging(cp: Any, device: int, lanes: int | None = None) -> _Staging:
    """The staging buffers of this device for the calling thread (the block scheduler
    uploads and downloads on other threads than the one computing); ``lanes`` at most
    where it is made (default: one per core, up to 8)."""
    mine = _STAGING.__dict__.setdefault("by_device", {})
    if device not in mine:
        mine[device] = _Staging(cp, lanes)
    return mine[device]


class CupyBackend(SlicedRegionData, BackendBase):
    """CuPy arrays on one CUDA device.

    Parameters
    ----------
    device : int, optional
        CUDA device index (default: CuPy's current device, normally 0).

    Raises
    ------
    ValueError
        ``device`` is not a valid device index.
    """

    name = "cupy"
    on_host = False
    #: image, estimate (float32) + OTF, spectrum work (complex64 half spectra; the real work
    #: buffer lives in its memory, :meth:`work_buffers`) + cuFFT's work area, shared by the
    #: plans of a shape: up to one grid array (lengths such as 1088-1200), none on 2^k or
    #: 288 (bench/experiments/diag_cufft.py)
    buffers_per_voxel = 2 * 4 + 2 * 4.0 + 4.0

    def __init__(self, device: int | None = None):
        import cupy as cp
        from cupy.cuda import cufft

        self.cp = cp
        self.xp = cp
        self._cufft = cufft
        count = cp.cuda.runtime.getDeviceCount()
        if device is None:
            device = cp.cuda.runtime.getDevice()
        if isinstance(device, bool) or not isinstance(device, int) or not 0 <= device < count:
            raise ValueError(f"device: CUDA device index 0..{count - 1} expected, got {device!r}")
        self._device = cp.cuda.Device(device)
        self.device = _device_name(cp, device)
        if device not in _KERNELS:
            with self._device:
                _KERNELS[device] = kernels(cp)
        self._k = _KERNELS[device]
        self._plans = _PLANS

    # -- context: device selection and error translation ------------------------------
    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        cp = self.cp
        try:
            with self._device:
                yield
        except cp.cuda.memory.OutOfMemoryError as exc:
            raise DeviceOutOfMemoryError(f"GPU out of memory on {self.device}: {exc}") from exc
        except self._cufft.CuFFTError as exc:
            if "ALLOC_FAILED" in str(exc):
                raise DeviceOutOfMemoryError(
                    f"cuFFT could not allocate its workspace on {self.device}: {exc}"
                ) from exc
            raise

    # -- memory and transfers -------------------------------------------------------------
    def plan(self, shape: tuple[int, ...]) -> None:
        if _planless(shape):
            return
        new = any((tuple(shape), kind, padded, self._device.id) not in self._plans
                  for kind in ("R2C", "C2R") for padded in (False, True))
        for kind in ("R2C", "C2R"):  # contiguous (the estimate) and the work buffers'
            for padded in (False, True):
                self._plan(tuple(shape), kind, padded)
        if new:  # the plans' probes and replaced work areas (grid-sized) go back to the
            # device now, not into the pool, where blocks of their size need not fit
            # what the run allocates next (measured: 1 grid array of peak on padded grids)
            pool = self.cp.get_default_memory_pool()
            if self.cp.cuda.get_allocator() == pool.malloc:
                pool.free_all_blocks()

    def _plan(self, shape: tuple[int, ...], kind: str, padded: bool = False) -> Any:
        """The cached cuFFT plan of ``shape`` and ``kind`` ("R2C" or "C2R"); ``padded``:
        the real side in the in-place layout of :meth:`work_buffers`, else C-contiguous.
        Every plan of a shape uses one work area (they never run at once: all on the
        compute stream); CuPy would give each its own, and on padded grids such as
        (128, 1120, 1120) each is a grid-sized array."""
        key = (shape, kind, padded, self._device.id)
        plan = self._plans.get(key)
        if plan is None:
            cp, cufft = self.cp, self._cufft
            half = spectrum_shape(shape)
            real = shape[:-1] + (2 * half[-1],) if padded else shape
            if kind == "R2C":
                layout = (real, half, cufft.CUFFT_R2C, half[-1])
            else:
                layout = (half, real, cufft.CUFFT_C2R, shape[-1])
            inembed, onembed, fft_type, last = layout

            def make() -> Any:
                return cufft.PlanNd(list(shape), list(inembed), 1, int(np.prod(inembed)),
                                    list(onembed), 1, int(np.prod(onembed)), fft_type, 1,
                                    "C", len(shape) - 1, last)

            area_key = (shape, self._device.id)
            area = _AREAS.get(area_key)
            if area is not None and getattr(area, "mem", None) is not None:
                with cp.cuda.using_allocator(_lend_once(area, cp.cuda.get_allocator())):
                    plan = make()
            else:
                plan = make()
            mine = getattr(plan, "work_area", None)
            if mine is not None and getattr(mine, "mem", None) is not None and (
                    area is None or getattr(area, "mem", None) is None
                    or mine.mem.size > area.mem.size):
                _AREAS[area_key] = mine
            self._plans[key] = plan
        return plan

    def work_buffers(self, shape: tuple[int, ...]) -> tuple[Any, Any]:
        """The spectrum work buffer and, as a view into its memory, the real work buffer:
        rows of ``n`` floats ``2 (n // 2 + 1)`` apart, cuFFT's layout for in-place real
        transforms, so that the C2R of the spectrum writes the real buffer in place and
        the R2C of the real buffer the spectrum (one grid-sized array less per run)."""
        shape = tuple(shape)
        spectrum = self.empty(spectrum_shape(shape), complex=True)
        if _planless(shape):
            return self.empty(shape), spectrum
        return spectrum.view(np.float32)[..., : shape[-1]], spectrum

    def _real_layout(self, x: Any) -> tuple[Any, bool]:
        """``x`` and whether it is in the padded layout of :meth:`work_buffers` (True) or
        C-contiguous (False; any other view is copied)."""
        if x.flags.c_contiguous:
            return x, False
        shape = tuple(x.shape)
        row = 2 * (shape[-1] // 2 + 1)
        strides = [4] * len(shape)
        for axis in range(len(shape) - 2, -1, -1):
            strides[axis] = strides[axis + 1] * (row if axis == len(shape) - 2
                                                 else shape[axis + 1])
        if tuple(x.strides) == tuple(strides):
            return x, True
        return self.cp.ascontiguousarray(x), False

    def upload(self, host: Any, pinned: bool = False) -> Any:
        """``host`` on this device in its own dtype. ``pinned``: ``host`` lies in page-locked
        memory (:meth:`pinned_empty`), so it is copied by one DMA, without staging."""
        cp = self.cp
        if isinstance(host, cp.ndarray):
            return host
        host = np.ascontiguousarray(host)
        if host.nbytes < PINNED_MIN:
            return cp.asarray(host)
        out = cp.empty(host.shape, dtype=host.dtype)
        staging = _staging(cp, self._device.id)
        if pinned:
            rt = cp.cuda.runtime
            rt.memcpyAsync(out.data.ptr, host.ctypes.data, host.nbytes,
                           rt.memcpyHostToDevice, staging.stream.ptr)
            staging.stream.synchronize()
        else:
            staging.upload_to(host, out)
        return out

    def pinned_empty(self, nbytes: int) -> np.ndarray:
        """A reusable page-locked host buffer of at least ``nbytes`` (uint8, 1-D); give it
        back with :meth:`release_pinned`. The block scheduler reads blocks into it and
        downloads results into it, so transfers need no staging copy."""
        with _PINNED_LOCK:
            free = _PINNED_FREE.setdefault(self._device.id, [])
            for i, buf in enumerate(free):
                if buf.nbytes >= nbytes:
                    return free.pop(i)
        memory = self.cp.cuda.alloc_pinned_memory(int(nbytes))
        return np.frombuffer(memory, dtype=np.uint8, count=int(nbytes))

    def release_pinned(self, buffer: np.ndarray) -> None:
        with _PINNED_LOCK:
            _PINNED_FREE.setdefault(self._device.id, []).append(buffer)

    def random(self, seed: int) -> Any:
        """CuPy's seeded generator on this device (the protocol's optional ``random``):
        NumPy's binomial and normal samplers ported to CUDA (``cupy.random.RandomState``)."""
        return self.cp.random.RandomState(seed)

    def to_device(self, host: Any) -> Any:
        cp = self.cp
        return cp.ascontiguousarray(cp.asarray(self.upload(host), dtype=cp.float32))

    def to_host(self, array: Any, after: Any = None, out: np.ndarray | None = None
                ) -> np.ndarray:
        """A NumPy copy of ``array``; ``after`` (from :meth:`record`) lets another thread
        download while this device computes on (without waiting for later work); ``out``,
        a page-locked array of the right shape (:meth:`pinned_empty`), takes one DMA.

        A large copy lands in a page-locked array (:mod:`backends._results`: one DMA at
        the link's rate, its memory reused once the caller drops it), or, beyond their
        cap, in pageable memory through the staging lanes."""
        cp = self.cp
        if after is not None:
            after.synchronize()
        array = cp.ascontiguousarray(array)
        if out is None and array.nbytes >= PINNED_MIN:
            out = _results(cp).empty(array.shape, array.dtype)
            if out is None:
                out = np.empty(array.shape, dtype=array.dtype)
                _staging(cp, self._device.id).download_from(array, out, after)
                return out
            stream = cp.cuda.get_current_stream()  # queued after the array's work
        elif out is not None:
            stream = _staging(cp, self._device.id).stream
        else:
            return cp.asnumpy(array)
        rt = cp.cuda.runtime
        rt.memcpyAsync(out.ctypes.data, array.data.ptr, array.nbytes,
                       rt.memcpyDeviceToHost, stream.ptr)
        stream.synchronize()
        return out

    def upload_target(self, host: np.ndarray) -> tuple[Any, Any]:
        """Device memory for ``host`` and an event after the work queued so far (the
        protocol's :class:`rlcore.protocol.FrameTransfers`)."""
        out = self.cp.empty(host.shape, dtype=host.dtype)
        return out, self.cp.cuda.get_current_stream().record()

    def upload_into(self, host: np.ndarray, out: Any, after: Any) -> Any:
        """``host`` into ``out`` through the staging lanes (their own streams, whatever
        the size: a plain copy would queue behind the iterations), once ``after``."""
        with self._device:
            staging = _staging(self.cp, self._device.id, PIPELINE_LANES)
            staging.upload_to(np.ascontiguousarray(host), out, after=after)
        return out

    def result_buffer(self, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
        """A series' results in a recycled page-locked array where one is to be had
        (:mod:`backends._results`), else in pageable memory."""
        out = _results(self.cp).empty(shape, np.float32)
        return (np.empty(shape, np.float32), False) if out is None else (out, True)

    def download_into(self, array: Any, host: np.ndarray, after: Any,
                      pinned: bool = False) -> np.ndarray:
        """``array`` into ``host`` once ``after``: one DMA into page-locked memory
        (``pinned``), else through the staging lanes."""
        with self._device:
            staging = _staging(self.cp, self._device.id, PIPELINE_LANES)
            if not pinned:
                staging.download_from(array, host, after)
                return host
            after.synchronize()
            rt = self.cp.cuda.runtime
            rt.memcpyAsync(host.ctypes.data, array.data.ptr, array.nbytes,
                           rt.memcpyDeviceToHost, staging.stream.ptr)
            staging.stream.synchronize()
        return host

    def record(self) -> Any:
        """An event after the work queued so far on this device's current stream."""
        return self.cp.cuda.get_current_stream().record()

    def contiguous(self, array: Any) -> Any:
        """A contiguous copy of a view (on the device, queued with the compute)."""
        return self.cp.ascontiguousarray(array)

    def fast_length(self, n: int) -> int:
        """cuFFT's good lengths: the smallest even 7-smooth length >= ``n``. SciPy's
        5-smooth rule picked odd lengths such as 1125 = 3^2 5^3 for a padded axis of 1087,
        where cuFFT's real transforms need 4 grid-sized arrays of workspace per plan and
        run about 1.9x slower than at 1120 = 2^5 5 7 (1 array; bench/cufft_lengths.py)."""
        return _even_7_smooth(int(n))

    def empty(self, shape: tuple[int, ...], *, complex: bool = False) -> Any:
        return self.cp.empty(shape, dtype=np.complex64 if complex else np.float32)

    def memory(self) -> MemoryInfo:
        with self._device:
            free, total = self.cp.cuda.runtime.memGetInfo()
            pooled = self.cp.get_default_memory_pool().free_bytes()
        return MemoryInfo(free=int(free + pooled), total=int(total))

    # -- transforms -----------------------------------------------------------------------
    def rfftn(self, x: Any, out: Any = None) -> Any:
        shape = tuple(x.shape)
        if out is None:
            out = self.empty(spectrum_shape(shape), complex=True)
        if _planless(shape):
            out[...] = self.cp.fft.rfftn(self.cp.ascontiguousarray(x))
            return out
        x, padded = self._real_layout(x)
        self._plan(shape, "R2C", padded).fft(x, out, self._cufft.CUFFT_FORWARD)
        return out

    def irfftn(self, spectrum: Any, shape: tuple[int, ...], out: Any = None) -> Any:
        shape = tuple(shape)
        if out is None:
            out = self.empty(shape)
        if _planless(shape):
            out[...] = self.cp.fft.irfftn(spectrum, s=shape)
            return out
        target, padded = self._real_layout(out)
        self._plan(shape, "C2R", padded).fft(spectrum, target, self._cufft.CUFFT_INVERSE)
        if target is not out:
            out[...] = target
        out *= np.float32(1.0 / float(np.prod(shape)))
        return out

    def apply_otf(self, x, otf, *, conjugate=False, work=None, out=None):
        shape = tuple(x.shape)
        if work is None:
            work = self.empty(spectrum_shape(shape), complex=True)
        if out is None:
            out = self.empty(shape)
        if _planless(shape):
            spectrum = self.multiply_spectrum(self.rfftn(x, out=work), otf,
                                              conjugate=conjugate)
            return self.irfftn(spectrum, shape, out=out)
        x, padded = self._real_layout(x)
        self._plan(shape, "R2C", padded).fft(x, work, self._cufft.CUFFT_FORWARD)
        scale = np.float32(1.0 / float(np.prod(shape)))  # irfftn's 1/N, folded in here
        self._k["cmul_conj" if conjugate else "cmul"](otf, scale, work)
        target, padded = self._real_layout(out)
        self._plan(shape, "C2R", padded).fft(work, target, self._cufft.CUFFT_INVERSE)
        if target is not out:
            out[...] = target
        return out

    # -- elementwise ----------------------------------------------------------------------
    def multiply_spectrum(self, spectrum: Any, otf: Any, *, conjugate: bool = False) -> Any:
        self._k["cmul_conj" if conjugate else "cmul"](otf, np.float32(1.0), spectrum)
        return spectrum

    def divide_guarded(self, numerator: Any, denominator: Any, guard: float, out: Any = None):
        if out is denominator:
            self._k["divide"](numerator, np.float32(guard), denominator)
            return denominator
        if out is None:
            out = self.cp.empty_like(denominator)
        self._k["divide_out"](numerator, denominator, np.float32(guard), out)
        return out

    def multiply(self, x: Any, y: Any) -> Any:
        self._k["multiply"](y, x)
        return x

    def multiply_positive(self, x: Any, y: Any) -> Any:
        self._k["multiply_positive"](y, x)
        return x

    def multiply_extrapolate(self, y, w, x, alpha, *, positive=False):
        self._k["multiply_extrapolate"](w, np.float32(alpha), bool(positive), y, x)
        return x, y

    def multiply_with_step(self, x, y, step):
        self._k["multiply_with_step"](y, x, step)
        return x, step

    def copy_into(self, src, dst):
        self.cp.copyto(dst, src)
        return dst

    def clip_negative(self, x):
        self._k["clip_negative"](x)
        return x

    def zero_where(self, x, support):
        self._k["zero_where"](support, x)
        return x

    def extrapolate(self, x, previous, alpha):
        self._k["extrapolate"](x, np.float32(alpha), previous)
        return previous

    def update_norms(self, x, y, previous_change=None):
        cp = self.cp
        x = cp.ascontiguousarray(x)
        y, padded = self._real_layout(y)  # y: the work buffer, maybe in-place layout
        row = int(y.shape[-1]) if y.ndim else 1
        pitch = 2 * (row // 2 + 1) if padded else row
        p = x if previous_change is None else cp.ascontiguousarray(previous_change)
        out = cp.zeros(3, dtype=cp.float64)
        threads = 256
        blocks = int(min(max(1, -(-x.size // threads)), 8 * _sm_count(cp)))
        self._k["norms"]((blocks,), (threads,),
                         (x, y, p, out, np.int64(x.size), np.int32(previous_change is not None),
                          np.int64(row), np.int64(pitch)))
        dd, xx, dp = (float(v) for v in out.get())
        return dd, xx, dp

    def all_finite(self, x: Any) -> bool:
        """One reduction kernel over a contiguous array: on a strided view (a padded
        grid's image region) CuPy's reduction took 100x longer than copying it first
        (13.6 ms against 0.13 ms for the region of a 280^3 grid;
        bench/experiments/gpu_op_times.py)."""
        return bool(self._k["all_finite"](self.cp.ascontiguousarray(x)))

    def spectral_loss(self, spectrum, weight, target):
        cp = self.cp
        spectrum, target = cp.ascontiguousarray(spectrum), cp.ascontiguousarray(target)
        weight = cp.ascontiguousarray(weight, dtype=cp.float32)
        if not (spectrum.size == weight.size == target.size):
            raise ValueError("spectral_loss: spectrum, weight and target differ in size")
        out = cp.zeros(1, dtype=cp.float64)
        threads = 256
        blocks = int(min(max(1, -(-spectrum.size // threads)), 8 * _sm_count(cp)))
        self._k["spectral_loss"]((blocks,), (threads,),
                                 (spectrum, weight, target, out, np.int64(spectrum.size)))
        return float(out.get()[0])

    def mean(self, x: Any) -> float:
        """Summed in float64 by one kernel: CuPy's float64 reductions are about 100x
        slower (see the norms kernel above), and the non-circulant first estimate's fill
        takes this mean on every run."""
        cp = self.cp
        x = cp.ascontiguousarray(x)
        out = cp.zeros(1, dtype=cp.float64)
        threads = 256
        blocks = int(min(max(1, -(-x.size // threads)), 8 * _sm_count(cp)))
        self._k["sum"]((blocks,), (threads,), (x, out, np.int64(x.size)))
        return float(out.get()[0]) / x.size


_SM_COUNT: dict[int, int] = {}


def _sm_count(cp: Any) -> int:
    device = cp.cuda.Device()
    if device.id not in _SM_COUNT:
        _SM_COUNT[device.id] = int(device.attributes["MultiProcessorCount"])
    return _SM_COUNT[device.id]


def probe() -> tuple[tuple[str, ...], str | None]:
    """CUDA devices CuPy can use, or why it cannot run."""
    try:
        import cupy as cp
    except ImportError:
        return (), _MISSING
    except Exception as exc:  # a broken CuPy install
        return (), f"CuPy failed to import: {exc}"
    try:
        count = cp.cuda.runtime.getDeviceCount()
        names = []
        for i in range(count):
            props = cp.cuda.runtime.getDeviceProperties(i)
            name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            names.append(f"GPU {i}: {name}, {props['totalGlobalMem'] / 2**30:.0f} GiB")
    except Exception as exc:  # no driver, no GPU
        return (), f"CuPy is installed but no CUDA device works: {exc}"
    if not names:
        return (), "CuPy is installed but no CUDA device was found"
    return tuple(names), None


def create(device: Any = None, like: Any = None) -> CupyBackend:
    """The backend on ``device`` (an index), or on the device of ``like`` (a CuPy array)."""
    try:
        if device is None and like is not None and hasattr(like, "device"):
            device = int(like.device.id)
        return CupyBackend(device)
    except ImportError as exc:  # pragma: no cover - probe() says so first
        raise BackendUnavailableError(_MISSING) from exc
