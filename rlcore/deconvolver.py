"""Plan once, run many: :class:`Deconvolver` owns the checked options, the backend, the
grid, the OTF (and back projector), and runs RL on any number of images of one shape.

pycudadecon's ``RLContext`` is the model (the OTF and FFT plans for one shape, reused
across a time-lapse); here every option is checked once into frozen objects
(:class:`Variant`, :class:`rlcore.backprojector.BackProjector`), so a run only checks its
image. :func:`rlcore.deconvolve`, the block scheduler and Dask all run through it.
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcore import _arrays, backprojector, registry, series
from rlcore.boundary import Grid, is_noncirculant, make_grid
from rlcore.errors import NumericalError
from rlcore.iteration import Convolution, Options, richardson_lucy
from rlcore.protocol import GridPlacement, RegionData
from rlcore.validate import as_image, as_psf, check_iterations, check_kind, to_numpy

__all__ = ["Deconvolver", "RunInfo", "Variant", "GUARD_RELATIVE", "NONCIRCULANT_GUARD"]

logger = logging.getLogger(__name__)

#: Guard of the RL division, relative to the brightest image voxel: the ratio
#: ``image / (H x)`` is set to 0 where ``H x <= GUARD_RELATIVE * max(image)``, i.e. where the
#: model predicts less light than float32 rounding of the brightest voxel can resolve.
GUARD_RELATIVE = 1e-6

#: Non-circulant RL: voxels of the extended grid where ``H^T M <= NONCIRCULANT_GUARD`` (they
#: send less than this fraction of their light into the measured voxels) are not estimated
#: (their normalisation, and so their value, is 0). At 1e-3 the voxels just above it were
#: multiplied by up to 1000 in every update, which amplified float32 rounding: with
#: Biggs-Andrews, results of numpy and OpenCL differed by 1.1e-5 to 6.5e-5 (and a 1e-7
#: change of the data moved numpy's own result by up to 2.6e-5); at 1e-2, 4e-6 to 7e-6.
#: The error against the truth on the edge-cut phantoms of ``bench/boundaries.py`` moved
#: by -0.07% to +0.4% (bars, random blocks; 10 and 50 updates).
NONCIRCULANT_GUARD = 1e-2

ACCELERATIONS = ("biggs-andrews", "momentum")


def check_accelerate(accelerate: Any) -> str | None:
    """None (off), ``"biggs-andrews"`` or ``"momentum"`` from the public values."""
    if isinstance(accelerate, bool):
        return "biggs-andrews" if accelerate else None
    if accelerate is None:
        return None
    if isinstance(accelerate, str) and accelerate in ACCELERATIONS:
        return accelerate
    raise (TypeError if not isinstance(accelerate, str) else ValueError)(
        f"accelerate: must be False, True, 'biggs-andrews' or 'momentum', got {accelerate!r}")


@dataclass(frozen=True)
class Variant:
    """The update's variant, checked once (see :func:`rlcore.deconvolve` for each).

    Attributes
    ----------
    accelerate : {None, "biggs-andrews", "momentum"}
    back_projector : rlcore.backprojector.BackProjector
    tv : float
        RLTV weight in ``[0, 1 / (2 * ndim))``.
    tol : float or None
        Relative-change stop, in (0, 1).
    """

    accelerate: str | None = None
    back_projector: backprojector.BackProjector = field(
        default_factory=backprojector.BackProjector)
    tv: float = 0.0
    tol: float | None = None

    @classmethod
    def checked(cls, ndim: int, *, accelerate: Any = False, back_projector: Any = "matched",
                tv: Any = 0.0, tol: Any = None) -> Variant:
        """Check the public arguments.

        Raises
        ------
        TypeError, ValueError
            An argument of the wrong type or outside its range (the message names it).
        """
        acc = check_accelerate(accelerate)
        bp = backprojector.check(back_projector)
        if isinstance(tv, bool) or not isinstance(tv, numbers.Real):
            raise TypeError(f"tv: must be a number, got {tv!r}")
        limit = 1.0 / (2 * ndim)
        if not (0 <= tv < limit):
            raise ValueError(
                f"tv: must be in [0, {limit:.4g}) for {ndim}-D data (1 / (2 * ndim) keeps "
                f"the RLTV denominator positive), got {tv}; typical values are 1e-4 to 1e-2")
        if tol is not None:
            if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
                raise TypeError(f"tol: must be a number or None, got {tol!r}")
            if not (0 < tol < 1):
                raise ValueError(f"tol: must be in (0, 1), got {tol}")
        return cls(acc, bp, float(tv), tol)


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs besides its data, checked once and shared by every block,
    frame and Dask task of the run (never a dict).

    Attributes
    ----------
    boundary : str
        Boundary mode of each run (blocks: the plan's block boundary).
    variant : Variant
    guard : float or None
        Absolute guard of the division; None: :data:`GUARD_RELATIVE` x the run's maximum
        (blocks and Dask set the whole volume's, so blocks agree with an unblocked run).
    clip_negative : bool
        Clip negative image values with a warning (False for the scikit-image layer).
    outside : float or None
        Non-circulant first estimate beyond the image (blocks: the volume's mean).
    """

    boundary: str = "periodic"
    variant: Variant = field(default_factory=Variant)
    guard: float | None = None
    clip_negative: bool = True
    outside: float | None = None

    def plan(self, psf: Any, shape: tuple[int, ...], iterations: int,
             backend: Any) -> Deconvolver:
        """A :class:`Deconvolver` for one block or frame shape with these options."""
        return Deconvolver(psf, shape, iterations, backend=backend, boundary=self.boundary,
                           variant=self.variant)

    def run(self, plan: Deconvolver, data: Any, **kwargs: Any) -> Any:
        """``plan.run(data)`` with this run's guard, clipping and outside value."""
        return plan.run(data, guard=self.guard, clip_negative=self.clip_negative,
                        outside=self.outside, **kwargs)


@dataclass(frozen=True)
class RunInfo:
    """How a run went (:func:`rlcore.deconvolve` with ``return_info=True``).

    Attributes
    ----------
    iterations : int
        Updates made (fewer than asked when ``tol`` stopped the run).
    converged : bool
        True when the last update changed the estimate by less than ``tol``.
    backend, device : str
        Where it ran.
    boundary : str
        Boundary mode.
    grid_shape : tuple of int
        Shape of the FFT grid, voxels (larger than the image except for "periodic"); for
        a blocked run, the grid of the largest block.
    blocks : rlcore.blocks.BlockPlan or None
        How the image was cut into blocks, or None for an unblocked run. Set also when an
        unblocked run ran out of device memory and was retried in blocks.
    frames : int
        Frames deconvolved with one plan (1 unless the image has more axes than the PSF).
    stop_rule : str or None
        ``iterations="auto"``: the rule that chose the count and how the data were split
        (e.g. ``"held-out band loss, binomial split"``).
    stop_value : float or None
        The rule's value (held-out loss) at the chosen iteration.
    """

    iterations: int
    converged: bool
    backend: str
    device: str
    boundary: str
    grid_shape: tuple[int, ...]
    blocks: Any = None
    frames: int = 1
    stop_rule: str | None = None
    stop_value: float | None = None


def initial_estimate(init: Any, image: Any, xp: Any, shape: tuple[int, ...]) -> Any:
    """First estimate on the image region, float32, a new array (never the image itself).

    Raises
    ------
    ValueError
        An unknown name, a negative or non-finite constant, an array of another shape.
    """
    if isinstance(init, str):
        if init == "image":
            return xp.asarray(image, copy=True)
        if init == "flat":
            mean = float(xp.mean(image))
            return xp.full(shape, mean, dtype=xp.float32)
        raise ValueError(f"init: must be 'image', 'flat', a number or an array, got {init!r}")
    if isinstance(init, numbers.Real) and not isinstance(init, bool):
        if not np.isfinite(init) or init < 0:
            raise ValueError(f"init: a constant first estimate must be finite and >= 0, got {init}")
        return xp.full(shape, float(init), dtype=xp.float32)
    estimate, _, _ = as_image(init, "init")
    if tuple(estimate.shape) != tuple(shape):
        raise ValueError(
            f"init: shape {tuple(estimate.shape)} differs from the image {tuple(shape)}; "
            "pass a first estimate of the image's shape")
    return xp.asarray(estimate, copy=True)


def _embeds_on_device(backend: Any, grid: Grid) -> bool:
    """The backend's namespace can embed on the grid (reflect needs ``xp.pad``); else the
    embedding is made on the host (pyopencl, the array API standard)."""
    return backend.xp is not None and (grid.mode != "reflect" or hasattr(backend.xp, "pad"))


def on_grid(backend: Any, grid: Grid, array: Any, *, estimate: bool = False,
            fill: float | None = None) -> Any:
    """The array embedded on the grid and moved to the backend's device."""
    if not grid.padded:
        return backend.to_device(array)
    if _embeds_on_device(backend, grid):
        device = backend.to_device(array)
        return grid.embed(device, estimate=estimate, xp=backend.xp, fill=grid.outside(
            estimate, fill, lambda: backend.mean(device)))
    host = np.asarray(to_numpy(array, "image"), dtype=np.float32)
    if isinstance(backend, GridPlacement):  # the image crosses, the grid is made there
        image = backend.to_device(host)
        return backend.embed(image, grid, grid.outside(estimate, fill,
                                                       lambda: backend.mean(image)))
    return backend.to_device(grid.embed(host, estimate=estimate, fill=fill))


def source(be: Any, image: Any) -> Any:
    """The caller's array as the backend checks it: on a device backend, uploaded first
    (in its own dtype, so the checks run on the device and transfers move fewer bytes)."""
    if _arrays.kind(image) == "numpy" and not be.on_host:
        if isinstance(image, (str, bytes, os.PathLike)):
            return image  # as_image names the problem
        host = np.asarray(image)
        check_kind(host, "image")  # dtype and shape, before any transfer
        return be.upload(host)
    return image


def finish(backend: Any, grid: Grid, estimate: Any, image: Any, xp: Any) -> Any:
    """The image region of the estimate, checked finite, in the caller's array kind."""
    if not backend.all_finite(estimate if backend.xp is None else
                              estimate[grid.region] if grid.padded else estimate):
        raise NumericalError(
            "the estimate contains NaN or infinite values; the image or PSF is numerically "
            "extreme (check its range and background)")
    if backend.xp is None:  # no array namespace (pyopencl): checked on the device (the
        # whole grid), cropped there (or on the host) and downloaded
        if grid.padded and isinstance(backend, GridPlacement):
            result = np.asarray(backend.to_host(backend.crop(estimate, grid)))
        else:
            result = np.asarray(backend.to_host(estimate))
            result = result[grid.region] if grid.padded else result
    else:
        result = estimate[grid.region] if grid.padded else estimate
    kind = _arrays.kind(image)
    if kind == "numpy":
        return np.ascontiguousarray(backend.to_host(result), dtype=np.float32)
    if _arrays.kind(result) == kind:
        return result
    return xp.asarray(backend.to_host(result))


def memory_per_voxel(backend: Any, variant: Variant, boundary: str) -> float:
    """Device bytes per grid voxel of one run: the backend's buffers (image, estimate,
    work, OTF, spectrum work) plus the variant's: the back projector's half spectrum,
    the previous estimate (acceleration), the last step (Biggs-Andrews) and ``1 / H^T M``
    (non-circulant)."""
    extra = 4.0 if not variant.back_projector.matched else 0.0
    extra += 4.0 * (variant.accelerate is not None)
    extra += 4.0 * (variant.accelerate == "biggs-andrews")
    extra += 4.0 * is_noncirculant(boundary)
    return float(backend.buffers_per_voxel) + extra


class Deconvolver:
    """Richardson-Lucy for images of one shape: checked once, OTF computed once.

    Parameters
    ----------
    psf : array, ``len(shape)`` axes
        As in :func:`rlcore.deconvolve` (normalised to sum 1 internally, centre voxel at
        index ``n // 2`` on each axis, cropped to ``shape`` with a warning if larger).
    shape : tuple of int
        Image shape, ``(Z, Y, X)`` or ``(Y, X)``, voxels.
    iterations : int, default 10
        RL updates per run.
    backend : str or backend object, default ``"auto"``
        A registry name (:func:`rlcore.available_backends`) or a backend instance.
    device : object, optional
        Backend-specific device (numpy: thread count; CuPy: GPU index; OpenCL: index/name).
    boundary : str, default ``"periodic"``
        As in :func:`rlcore.deconvolve`.
    accelerate, back_projector, tv, tol
        As in :func:`rlcore.deconvolve`; or ``variant`` instead.
    variant : Variant, optional
        Already checked options (overrides the four above).
    like : array, optional
        An array of the kind the images will be (CuPy, array-API), for ``"auto"``.

    Raises
    ------
    TypeError, ValueError
        Any argument invalid (the message names it).
    rlcore.errors.BackendUnavailableError
        The named backend cannot run here.

    Notes
    -----
    Holds on the device: the OTF, one spectrum and one real work buffer, the back
    projector's spectrum when unmatched, and ``1 / H^T M`` for ``"non-circulant"``. Each
    run allocates the image and the estimate on the grid (and the acceleration buffers).
    Use it as a context manager, or call :meth:`close`, to free them at once.

    Examples
    --------
    >>> import numpy as np, rlcore
    >>> psf = rlcore.psf.gaussian((5, 9, 9), 1.5)
    >>> frames = np.random.default_rng(0).poisson(50, (3, 8, 32, 32)).astype(np.float32)
    >>> with rlcore.Deconvolver(psf, (8, 32, 32), iterations=5) as rl:
    ...     results = [rl.run(frame) for frame in frames]
    >>> results[0].shape, results[0].dtype
    ((8, 32, 32), dtype('float32'))
    """

    def __init__(self, psf: Any, shape: tuple[int, ...], iterations: int = 10, *,
                 backend: Any = "auto", device: Any = None, boundary: str = "periodic",
                 accelerate: Any = False, back_projector: Any = "matched", tv: Any = 0.0,
                 tol: Any = None, variant: Variant | None = None, like: Any = None):
        self.shape = tuple(int(n) for n in shape)
        if not self.shape or any(n < 1 for n in self.shape):
            raise ValueError(f"shape: must be positive lengths, got {shape!r}")
        self.iterations = check_iterations(iterations)
        self.variant = variant or Variant.checked(
            len(self.shape), accelerate=accelerate, back_projector=back_projector, tv=tv,
            tol=tol)
        if isinstance(backend, str):
            backend = registry.get_backend(backend, device=device, like=like)
        self.backend = backend
        self.psf = as_psf(psf, self.shape)
        self.grid = make_grid(self.shape, self.psf.shape, boundary,
                              fast_len=backend.fast_length)
        self.boundary = boundary
        bp = self.variant.back_projector
        self.back_kernel = None if bp.matched else backprojector.kernel(self.psf, bp)
        with backend.activate():
            self.operator = Convolution(backend, self.psf, self.grid.shape,
                                        back=self.back_kernel)
            self.normalization = self._normalization() if is_noncirculant(boundary) else None

    def _normalization(self) -> Any:
        """``1 / B M`` (``H^T M`` for the matched back projector), 0 where it is <=
        :data:`NONCIRCULANT_GUARD`: Bertero & Boccacci (2005), eq. (9)."""
        be, grid, op = self.backend, self.grid, self.operator
        if be.xp is not None:  # built in the operator's work buffer: one new array
            work = op.work
            work[...] = 0
            work[grid.region] = 1  # M
            weight = op.back_project(work, out=be.empty(grid.shape))
            work[...] = 1
            return be.divide_guarded(work, weight, NONCIRCULANT_GUARD, out=weight)
        if isinstance(be, GridPlacement):  # M, then the ones, made in the work buffer
            weight = op.back_project(be.region_mask(grid, op.work), out=be.empty(grid.shape))
            ones = be.region_mask(grid, op.work, outside=1.0)
            return be.divide_guarded(ones, weight, NONCIRCULANT_GUARD, out=weight)
        # no array namespace: M and the ones built on the host, uploaded
        weight = op.back_project(be.to_device(grid.mask(np)))
        ones = be.to_device(np.ones(grid.shape, dtype=np.float32))
        return be.divide_guarded(ones, weight, NONCIRCULANT_GUARD, out=weight)

    @property
    def bytes_per_voxel(self) -> float:
        """Device bytes per grid voxel of one run (the memory model blocks are sized by)."""
        return memory_per_voxel(self.backend, self.variant, self.boundary)

    def run(self, image: Any, *, init: Any = "image", callback: Callable | None = None,
            guard: float | None = None, clip_negative: bool = True,
            outside: float | None = None,
            observe: Callable[[int, Any], object] | None = None,
            monitor: Any = None, return_info: bool = False, release: bool = False,
            grid_estimate: Any = None) -> Any:
        """Deconvolve one image of :attr:`shape`.

        Parameters
        ----------
        image : array, :attr:`shape` or ``(..., *shape)``
            Real values; NumPy, CuPy, array-API (the result is of the same kind) or Dask
            (a series only: lazy, one task per frame). Leading axes are frames, each
            deconvolved as if alone, all with this plan.
        init : {"image", "flat"}, float or array, default "image"
            First estimate, as in :func:`rlcore.deconvolve`.
        callback : callable, optional
            ``callback(k, iterations)`` after each update.
        guard : float, optional
            Absolute guard of the division (default ``GUARD_RELATIVE * max(image)``).
        clip_negative : bool, default True
            Clip negative image values to 0 with a warning (False: refuse none, used by
            the scikit-image layer which clips itself).
        outside : float, optional
            Non-circulant first estimate beyond the image (default: the image's mean);
            blocks pass the whole volume's mean.
        monitor : callable, optional
            ``monitor(k, estimate, spectrum)`` before each update (see
            :class:`rlcore.iteration.Options`), and once more on the last estimate; when it
            has a ``best`` attribute that is not None (:class:`rlcore.autostop.AutoStop`),
            that grid array is the result.
        return_info : bool, default False
            Also return a :class:`RunInfo`.
        grid_estimate : array, optional
            Internal: the first estimate as an array of this plan's grid on its backend
            (another plan's :attr:`rlcore.autostop.AutoStop.best` on the same grid), copied;
            ``init`` is then ignored. Keeps what a padded grid holds beyond the image.
        release : bool, default False
            Free this plan's buffers (OTF, work buffers, normalisation; as :meth:`close`)
            once the updates are done, before the result is cropped and returned: for a
            plan used once (:func:`rlcore.deconvolve` does), so that the crop can reuse
            their memory. A memory pool may keep the freed blocks (CuPy's default pool
            does: its measured peak did not change). The plan cannot run again.

        Returns
        -------
        array, float32, :attr:`shape` (and a :class:`RunInfo` with ``return_info``)

        Raises
        ------
        ValueError
            The image's shape differs from :attr:`shape`; bad values (as deconvolve).
        rlcore.errors.NumericalError
            The result would not be finite.
        """
        be, grid = self.backend, self.grid
        if self.operator is None:
            raise RuntimeError("this Deconvolver is closed (close() or release=True); make "
                               "a new one")
        ndim = len(getattr(image, "shape", ()))
        if ndim > len(self.shape) and tuple(image.shape[-len(self.shape):]) == self.shape:
            if return_info or monitor is not None or not isinstance(init, str):
                raise ValueError("image: a series runs frame by frame; return_info, "
                                 "monitor and an init array take one frame")
            return series.map_frames(image, len(self.shape), lambda frame: self.run(
                frame, init=init, callback=callback, guard=guard,
                clip_negative=clip_negative, outside=outside))
        with be.activate():
            y, xp, peak = as_image(source(be, image), clip_negative=clip_negative)
            if tuple(y.shape) != self.shape:
                raise ValueError(f"image: shape {tuple(y.shape)} differs from the planned "
                                 f"{self.shape}; make a Deconvolver for this shape")
            from_image = isinstance(init, str) and init == "image"
            padded_image = grid.padded and from_image
            # the first estimate is a copy of the image made where the data lies: the
            # grid embedding on a padded grid, a device copy of the uploaded data else
            estimate0 = y if from_image else initial_estimate(init, y, xp, self.shape)
            if guard is None:
                guard = GUARD_RELATIVE * peak
            logger.info("deconvolve: backend=%s device=%s image=%s psf=%s grid=%s "
                        "boundary=%s iterations=%d guard=%.3g", be.name, be.device,
                        self.shape, self.psf.shape, grid.shape, self.boundary,
                        self.iterations, guard)
            # data zero outside the image (zero, non-circulant) stays image-sized where
            # the backend divides on the region (RegionData): one grid array less
            region = grid.padded and grid.mode != "reflect" and isinstance(be, RegionData)
            data = be.to_device(y) if region else on_grid(be, grid, y)
            if grid_estimate is not None:
                del estimate0, y
                estimate = be.copy_into(grid_estimate, be.empty(grid.shape))
            elif from_image and not grid.padded:
                del estimate0, y
                estimate = be.copy_into(data, be.empty(grid.shape))
            elif padded_image and (isinstance(be, GridPlacement) or
                                   _embeds_on_device(be, grid)):
                del estimate0, y  # from the data on the device: the upload is freed first
                # the image's mean is asked for only where the data is zero outside the
                # image (non-circulant): a grid's mean scaled by grid over image voxels
                scale = 1.0 if region else math.prod(grid.shape) / math.prod(grid.image_shape)
                fill = grid.outside(True, outside,
                                    lambda grid_data=data: be.mean(grid_data) * scale)
                inside = data if region else data[grid.region]
                estimate = be.embed(data, grid, fill) if isinstance(be, GridPlacement) \
                    else grid.embed(inside, estimate=True, xp=be.xp, fill=fill)
            else:
                estimate = on_grid(be, grid, estimate0, estimate=True, fill=outside)
                del estimate0, y  # on a padded grid, the image lives on in data
            if self.normalization is not None:  # voxels not estimated start at 0, so that
                # no update's step depends on how far the grid was rounded up
                estimate = be.zero_where(estimate, self.normalization)
            v = self.variant
            options = Options(accelerate=v.accelerate, tv=v.tv, tol=v.tol,
                              clip=self.back_kernel is not None,
                              normalization=self.normalization)
            if observe is not None:  # internal: the image region after each update
                options.observe = lambda k, x: observe(k, x[grid.region] if grid.padded else x)
            options.monitor = monitor
            options.region = grid if region else None
            estimate, done, converged = richardson_lucy(
                self.operator, data, estimate, self.iterations, guard, callback, options)
            del data  # before the result is cropped out of the grid
            if release:
                del options  # it holds the normalisation too
                self.close()
            if monitor is not None:
                monitor(done, estimate, None)  # the last estimate too
                if getattr(monitor, "best", None) is not None:
                    estimate = monitor.best
            result = finish(be, grid, estimate, image, xp)
        if not return_info:
            return result
        return result, RunInfo(done, converged, be.name, be.device, self.boundary,
                               grid.shape)

    __call__ = run

    def rematched(self, variant: Variant, iterations: int) -> Deconvolver:
        """This plan with the matched back projector and ``variant`` (its acceleration):
        the same PSF, grid, OTF and work buffers, so nothing is transformed or allocated
        (``iterations="auto"``'s second phase). Periodic grids only (elsewhere the
        normalisation depends on the back projector).

        Raises
        ------
        ValueError
            ``variant`` has an unmatched back projector, or the grid is not periodic.
        """
        if not variant.back_projector.matched or self.boundary != "periodic":
            raise ValueError("variant: rematched() takes the matched back projector on a "
                             "periodic grid; make a new Deconvolver otherwise")
        if self.operator is None:
            raise RuntimeError("this Deconvolver is closed; rematch it before it is closed")
        other = copy.copy(self)
        other.variant, other.iterations = variant, check_iterations(iterations)
        other.back_kernel = None
        other.operator = copy.copy(self.operator)
        other.operator.back = None
        return other

    def close(self) -> None:
        """Free the device buffers (OTF, work buffers, normalisation) now."""
        self.operator = None
        self.normalization = None

    def __enter__(self) -> Deconvolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
