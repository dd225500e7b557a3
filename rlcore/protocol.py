"""The backend protocol: the few array operations one Richardson-Lucy iteration needs.

A backend is any object with these methods. The RL iteration (:mod:`rlcore.iteration`) is
written once against them; a backend knows nothing about RL.

Conventions for every method:

* real arrays are float32 of the *grid shape* ``(Z, Y, X)`` (or ``(Y, X)``) planned with
  :meth:`Backend.plan`; spectra are complex64 half spectra of shape
  ``grid[:-1] + (grid[-1] // 2 + 1,)`` (the layout of ``numpy.fft.rfftn``);
* ``out=`` is a hint: a backend that can write in place returns ``out`` itself, one that
  cannot (the generic array-API backend) returns a new array. Callers always use the
  returned array;
* a method may overwrite an argument only where its docstring says so.

Optional fused operations, which a backend defines to save passes over memory (the
iteration composes each from the required ones where a backend has none):

* ``work_buffers(shape) -> (real, spectrum)``: the iteration's real work buffer (float32,
  ``shape``) and spectrum work buffer (complex64 half spectrum); the real one may be a
  view into the spectrum's memory, since every step reads one and writes the other
  (CuPy: cuFFT's in-place layout, a grid-sized array less);
* ``multiply_positive(x, y)``: ``x * max(y, 0)`` in place in ``x`` (``y`` may be clipped
  in place too), the update of an unmatched back projector;
* ``multiply_extrapolate(y, w, x, alpha, *, positive=False) -> (x_new, y_next)``:
  momentum's update ``x_new = y * w`` (``w`` clipped at 0 when ``positive``) and next
  point ``max(x_new + alpha * (x_new - x), 0)``, in two of the three buffers.

One optional operation outside the iteration:

* ``random(seed)``: a generator of random numbers on the device with NumPy's
  ``binomial(n, p)`` and ``standard_normal(shape, dtype)``, seeded (the same seed, the
  same numbers on that device): ``iterations="auto"`` then splits the image on the device
  (:func:`rlcore.autostop.split`); without it, on the host's cores.

Why there is no ``flip``: the adjoint ``H^T`` of the convolution is applied as the conjugate
OTF (``multiply_spectrum(..., conjugate=True)``), which is the exact correlation on the
grid; flipping the PSF in space would give the same operator only up to the centring of
even sizes, and costs a second OTF. So a spatial flip is not part of the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Array", "AsyncDownloads", "Backend", "BackendBase", "HostPlacement", "MemoryInfo",
           "PinnedTransfers", "spectrum_shape"]

#: An array of the backend's own kind (numpy, CuPy, pyopencl, any array-API array).
Array = Any


@dataclass(frozen=True)
class MemoryInfo:
    """Memory of the device a backend computes on.

    Attributes
    ----------
    free : int
        Bytes that can be allocated now.
    total : int
        Bytes of the device in all.
    """

    free: int
    total: int


def spectrum_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the half spectrum of a real array of ``shape`` (last axis ``n // 2 + 1``)."""
    return tuple(shape[:-1]) + (shape[-1] // 2 + 1,)


@runtime_checkable
class Backend(Protocol):
    """What a backend provides. See the module docstring for shape and dtype conventions.

    Attributes
    ----------
    name : str
        Registry name (``"numpy"``, ``"array_api"``, ``"cupy"``, ...).
    device : str
        Human-readable description of the device computing (for logs and ``rlcore info``).
    buffers_per_voxel : float
        Memory model: bytes of device memory one RL run needs per grid voxel, besides
        transient FFT workspace (used to size blocks).
    """

    name: str
    device: str
    buffers_per_voxel: float
    #: True when arrays live in host memory (checks then run on the caller's array)
    on_host: bool
    #: the backend's array namespace (NumPy, CuPy, an array-API module), or None when its
    #: arrays have none (pyopencl): grids are then embedded and cropped on the host
    xp: Any

    def fast_length(self, n: int) -> int:
        """Smallest length >= ``n`` the backend's FFT handles fast (padded grids use it)."""

    def activate(self) -> Any:
        """Context manager: select the device; map out-of-memory to DeviceOutOfMemoryError."""

    def upload(self, host: np.ndarray) -> Array:
        """A host array on the device in its own dtype (validation then runs on the device)."""

    def plan(self, shape: tuple[int, ...]) -> None:
        """Prepare (and cache) the real-to-complex transforms for real arrays of ``shape``."""

    def to_device(self, host: np.ndarray) -> Array:
        """Copy a host float32 array to the device (may return the same array on the host)."""

    def to_host(self, array: Array) -> np.ndarray:
        """Return a host ``numpy.ndarray`` with the values of ``array``."""

    def empty(self, shape: tuple[int, ...], *, complex: bool = False) -> Array:
        """Allocate an uninitialised float32 (or complex64 when ``complex``) array."""

    def rfftn(self, x: Array, out: Array | None = None) -> Array:
        """Forward real FFT over all axes, unnormalised; ``x`` is left unchanged."""

    def irfftn(self, spectrum: Array, shape: tuple[int, ...], out: Array | None = None) -> Array:
        """Inverse real FFT over all axes, normalised by ``1 / prod(shape)``.

        ``spectrum`` may be overwritten (it is a work buffer).
        """

    def multiply_spectrum(self, spectrum: Array, otf: Array, *, conjugate: bool = False) -> Array:
        """``spectrum * otf`` (or ``spectrum * conj(otf)``), in place in ``spectrum``."""

    def apply_otf(
        self,
        x: Array,
        otf: Array,
        *,
        conjugate: bool = False,
        work: Array | None = None,
        out: Array | None = None,
    ) -> Array:
        """``irfftn(rfftn(x) * otf)`` (``conj(otf)`` when ``conjugate``): a circular
        convolution (correlation) on the grid. ``work`` is a spectrum-shaped buffer the
        backend may use; ``x`` is left unchanged. :class:`BackendBase` composes it from
        the three methods above; a backend overrides it to fuse them.
        """

    def divide_guarded(
        self, numerator: Array, denominator: Array, guard: float, out: Array | None = None
    ) -> Array:
        """``numerator / denominator`` where ``denominator > guard``, and 0 elsewhere.

        ``out`` may be ``denominator`` itself. The guard makes the result finite for every
        finite input.
        """

    def multiply(self, x: Array, y: Array) -> Array:
        """``x * y``, in place in ``x``."""

    def multiply_with_step(self, x: Array, y: Array, step: Array) -> tuple[Array, Array]:
        """``(x * y, x * (y - 1))``, in place in ``x`` and ``step``: the update and the
        step it made (``x`` before it is overwritten)."""

    def copy_into(self, src: Array, dst: Array) -> Array:
        """``dst[...] = src``; returns ``dst``."""

    def to_device_spectrum(self, host: np.ndarray) -> Array:
        """Copy a host complex64 half spectrum to the device."""

    def spectral_loss(self, spectrum: Array, weight: Array, target: Array) -> float:
        """``sum(weight * |spectrum|^2 - 2 * Re(conj(spectrum) * target))`` over a half
        spectrum (``weight`` float32, ``target`` complex64, the spectrum's shape), summed
        in float64: the held-out loss of ``iterations="auto"``."""

    def clip_negative(self, x: Array) -> Array:
        """``max(x, 0)``, in place in ``x`` where the backend can (unmatched back
        projectors have negative lobes; the RL update must stay >= 0)."""

    def extrapolate(self, x: Array, previous: Array, alpha: float) -> Array:
        """``max(x + alpha * (x - previous), 0)``, in place in ``previous``."""

    def zero_where(self, x: Array, support: Array) -> Array:
        """``x`` set to 0 where ``support == 0``, in place in ``x`` where the backend can
        (non-circulant RL: the voxels that are not estimated start at 0)."""

    def mean(self, x: Array) -> float:
        """The mean of ``x`` (C-contiguous), summed in float64 where the device can."""

    def update_norms(self, x: Array, y: Array, previous_change: Array | None = None):
        """Sums for the step ``d = x * (y - 1)``: returns ``(sum d*d, sum x*x, sum d*p)``
        with ``p = previous_change`` (0.0 when it is None), as Python floats."""

    def tv_factor(self, x: Array, weight: float) -> Array:
        """``1 / (1 - weight * div(grad x / |grad x|))`` (a new array): the total-variation
        term of RLTV, with forward differences for the gradient, backward differences for
        the divergence (its adjoint) and periodic ends."""

    def all_finite(self, x: Array) -> bool:
        """True when no element of ``x`` is NaN or infinite."""

    def memory(self) -> MemoryInfo:
        """Free and total memory of the device, in bytes."""


#: smallest smoothing of |grad x| in RLTV: its square (1e-36) is a normal float32, so an
#: all-zero estimate (an empty block) gets a zero divergence, not 0 / 0
TV_EPS_FLOOR = 1e-18


@runtime_checkable
class HostPlacement(Protocol):
    """Optional: the backend places a PSF on the grid itself (e.g. on the host, then one
    upload) instead of slice copies on the device (:func:`rlcore.boundary.place_psf`)."""

    def place_psf(self, psf: np.ndarray, grid_shape: tuple[int, ...], out: Array) -> Array:
        """The PSF (centre voxel ``n // 2``) wrapped around the grid origin, in ``out``."""


@runtime_checkable
class GridPlacement(Protocol):
    """Optional, for backends without an array namespace (OpenCL): the image embedded on
    a padded grid and the result cropped from it on the device, so only image-sized
    arrays cross the bus (:meth:`rlcore.boundary.Grid.embed` does it with ``xp``); the
    mean of the first estimate's fill comes from :meth:`Backend.mean`."""

    def embed(self, array: Array, grid: Any, fill: float | None) -> Array:
        """A new grid-sized array: ``array`` (image-sized, or grid-sized with the image
        in its region) in the grid's image region; outside it ``fill``, or the mirror
        (``fill`` None: reflect)."""

    def region_mask(self, grid: Any, out: Array, outside: float = 0.0) -> Array:
        """``M`` in ``out``: 1 in the image region of the grid, ``outside`` elsewhere."""

    def crop(self, array: Array, grid: Any) -> Array:
        """The image region of a grid-sized array, as a new image-sized array."""


@runtime_checkable
class RegionData(Protocol):
    """Optional: the RL ratio with the data held at the image's size, for the grids whose
    data is zero outside the image region (zero, non-circulant): the data then takes an
    image-sized array instead of a grid-sized one (one grid array less at a run's peak)."""

    def divide_region(self, data: Array, model: Array, guard: float, grid: Any) -> Array:
        """In ``model`` (grid-sized, returned): ``data / model`` in the grid's image region
        where ``model > guard`` (``data`` image-sized), 0 elsewhere."""


class SlicedRegionData:
    """:class:`RegionData` by slicing, for backends whose arrays are writable views
    (NumPy, CuPy): the outside zeroed slab by slab, the guarded division on the region's
    view in place."""

    def divide_region(self, data, model, guard, grid):
        ndim = len(grid.shape)
        for axis, (o, n, g) in enumerate(zip(grid.offset, grid.image_shape, grid.shape)):
            for low, high in ((0, o), (o + n, g)):
                if high > low:
                    model[(slice(None),) * axis + (slice(low, high),)
                          + (slice(None),) * (ndim - axis - 1)] = 0
        view = model[grid.region]
        self.divide_guarded(data, view, guard, out=view)
        return model


@runtime_checkable
class AsyncDownloads(Protocol):
    """Optional: downloads ordered by events on another thread (CuPy), so the block
    scheduler downloads one block's result while the next computes."""

    def record(self) -> Any:
        """An event marking the work queued so far."""

    def contiguous(self, array: Array) -> Array:
        """A C-contiguous copy (or the array itself when it is one)."""

    def to_host(self, array: Array, after: Any = None) -> np.ndarray:
        """Download once the event ``after`` has completed."""


@runtime_checkable
class PinnedTransfers(Protocol):
    """Optional: page-locked host buffers, so each block moves by one DMA (CuPy)."""

    def pinned_empty(self, nbytes: int) -> np.ndarray:
        """A page-locked host byte buffer of at least ``nbytes``."""

    def release_pinned(self, buffer: np.ndarray) -> None:
        """Give a buffer from :meth:`pinned_empty` back."""

    def upload(self, host: np.ndarray, pinned: bool = False) -> Array:
        """Upload (one DMA when ``pinned``)."""


@runtime_checkable
class FrameTransfers(Protocol):
    """Optional: the transfers of a series' frames overlapped with the iterations of the
    frame between them (CuPy; :func:`rlcore.pipeline.map_frames`). The device memory of
    an upload is taken on the computing thread (where every array freed so far has its
    work queued), the copy runs on another thread after an event marking that work."""

    def upload_target(self, host: np.ndarray) -> tuple[Array, Any]:
        """Device memory of ``host``'s shape and dtype, and an event after the work
        queued so far."""

    def upload_into(self, host: np.ndarray, out: Array, after: Any) -> Array:
        """``host`` into ``out`` once ``after`` has completed, not waiting for later work;
        returns ``out``."""

    def result_buffer(self, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
        """A float32 host array for a series' results, and whether it is page-locked."""

    def download_into(self, array: Array, host: np.ndarray, after: Any,
                      pinned: bool = False) -> np.ndarray:
        """``array`` (C-contiguous) into ``host`` (C-contiguous; page-locked where
        ``pinned``: one DMA) once ``after`` (from :meth:`AsyncDownloads.record`) has
        completed; returns ``host``."""


class BackendBase:
    """Optional base class: defaults for host backends and the composed operations.

    The defaults for the vector operations are written with the backend's array namespace
    ``self.xp`` (NumPy, CuPy or any array-API namespace); a backend overrides them to fuse
    passes or to work in place.
    """

    xp: Any = None

    def multiply_with_step(self, x, y, step):
        return x * y, x * (y - 1)

    def copy_into(self, src, dst):
        return self.xp.asarray(src, copy=True)

    def to_device_spectrum(self, host):
        return self.xp.asarray(host)

    def spectral_loss(self, spectrum, weight, target):
        xp = self.xp
        f64 = xp.float64
        re, im = xp.astype(xp.real(spectrum), f64), xp.astype(xp.imag(spectrum), f64)
        terms = (xp.astype(weight, f64) * (re * re + im * im)
                 - 2 * (re * xp.astype(xp.real(target), f64)
                        + im * xp.astype(xp.imag(target), f64)))
        return float(xp.sum(terms))

    def clip_negative(self, x):
        xp = self.xp
        return xp.where(x > 0, x, xp.zeros_like(x))

    def extrapolate(self, x, previous, alpha):
        xp = self.xp
        y = x + alpha * (x - previous)
        return xp.where(y > 0, y, xp.zeros_like(y))

    def mean(self, x):
        from rlcore.boundary import mean64

        return mean64(self.xp, x)

    def zero_where(self, x, support):
        xp = self.xp
        return xp.where(support != 0, x, xp.zeros_like(x))

    def update_norms(self, x, y, previous_change=None):
        xp = self.xp
        d = x * (y - 1)
        dot = 0.0
        if previous_change is not None:
            dot = float(xp.sum(xp.astype(d * previous_change, xp.float64)))
        return (float(xp.sum(xp.astype(d * d, xp.float64))),
                float(xp.sum(xp.astype(x * x, xp.float64))), dot)

    def tv_factor(self, x, weight):
        xp = self.xp
        eps = 1e-8 * float(xp.max(xp.abs(x))) + TV_EPS_FLOOR
        grads = [xp.roll(x, -1, axis=a) - x for a in range(x.ndim)]
        norm = xp.sqrt(sum(g * g for g in grads) + eps * eps)
        div = sum((g / norm) - xp.roll(g / norm, 1, axis=a) for a, g in enumerate(grads))
        return 1.0 / (1.0 - weight * div)

    #: True when arrays live in host memory (numpy, array-api-strict): checks then run on
    #: the caller's array; False for device backends, which upload first and check there.
    on_host = True

    def activate(self):
        """Context in which the backend computes: selects its device, and turns its
        library's out-of-memory errors into :class:`rlcore.errors.DeviceOutOfMemoryError`."""
        import contextlib

        return contextlib.nullcontext()

    def upload(self, host):
        """The caller's host array on the device, in its own dtype (checks follow there)."""
        return host

    def fast_length(self, n: int) -> int:
        """Smallest length >= ``n`` the backend's FFT handles fast (padded grids use it):
        5-smooth, as ``scipy.fft.next_fast_len(n, real=True)``."""
        import scipy.fft

        return scipy.fft.next_fast_len(int(n), real=True)

    def apply_otf(self, x, otf, *, conjugate=False, work=None, out=None):
        shape = tuple(x.shape)
        spectrum = self.rfftn(x, out=work)
        spectrum = self.multiply_spectrum(spectrum, otf, conjugate=conjugate)
        return self.irfftn(spectrum, shape, out=out)
