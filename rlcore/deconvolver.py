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
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rlcore import _arrays, backprojector, pipeline, registry
from rlcore.boundary import DEFAULT_BOUNDARY, is_noncirculant, make_grid, psf_extent
from rlcore.iteration import Convolution, Options, StrataConvolution, richardson_lucy
from rlcore.placement import placement_for
from rlcore.strata import as_strata, grid_weights
from rlcore.validate import as_image, as_psf, check_iterations, check_kind

__all__ = ["Deconvolver", "RunInfo", "RunSettings", "Recipe", "Variant", "GUARD_RELATIVE",
           "NONCIRCULANT_GUARD"]

logger = logging.getLogger(__name__)

#: Guard of the RL division, relative to the brightest image voxel: the ratio
#: ``image / (H x)`` is set to 0 where ``H x <= GUARD_RELATIVE * max(image)``, i.e. where the
#: model predicts less light than float32 rounding of the brightest voxel can resolve.
GUARD_RELATIVE = 1e-6

#: Non-circulant RL: voxels of the extended grid where ``H^T M <= NONCIRCULANT_GUARD`` (they
#: send less than this fraction of their light into the measured voxels) are not estimated
#: (their normalisation, and so their value, is 0). Lower guards multiply the voxels just
#: above them by up to 1 / guard in every update, which amplifies float32 rounding
#: (bench/boundaries.py measured the choice).
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
class RunSettings:
    """How one run of a :class:`Deconvolver` goes, besides its image (its internal
    callers: blocks, frames, auto, the scikit-image layer; :meth:`Deconvolver.run` makes
    one from its public arguments).

    Attributes
    ----------
    init : {"image", "flat"}, float or array
        First estimate, as in :func:`rlcore.deconvolve`.
    guard : float or None
        Absolute guard of the division; None: :data:`GUARD_RELATIVE` x the image's
        maximum (blocks and Dask set the whole volume's, so blocks agree with an unblocked
        run).
    clip_negative : bool
        Clip negative image values with a warning (False for the scikit-image layer).
    outside : float or None
        Non-circulant first estimate beyond the image (default: the image's mean; blocks:
        the volume's).
    callback, observe
        As in :meth:`Deconvolver.run`.
    monitor : callable or None
        ``monitor(k, estimate, spectrum)`` before each update (see
        :class:`rlcore.iteration.Options`) and once more on the last estimate; when it has
        a ``best`` attribute that is not None (:class:`rlcore.autostop.AutoStop`), that
        grid array is the result.
    grid_estimate : array or None
        The first estimate as an array of the plan's grid on its backend (another plan's
        :attr:`rlcore.autostop.AutoStop.best` on the same grid), copied; ``init`` is then
        ignored. Keeps what a padded grid holds beyond the image.
    release : bool
        Free the plan's buffers once the updates are done (as :meth:`Deconvolver.close`).
    return_info : bool
        Also return a :class:`RunInfo`.
    """

    init: Any = "image"
    guard: float | None = None
    clip_negative: bool = True
    outside: float | None = None
    callback: Callable[[int, int], object] | None = None
    observe: Callable[[int, Any], object] | None = None
    monitor: Any = None
    grid_estimate: Any = None
    release: bool = False
    return_info: bool = False


@dataclass(frozen=True)
class Recipe:
    """What every block, frame and Dask task of one run shares: the PSF, the count, the
    boundary and variant of the plans it makes, and the settings of their runs.

    Attributes
    ----------
    psf : array
        The PSF (checked and cropped to the image by the caller where it sizes blocks).
    iterations : int
    boundary : str
        Boundary mode of each plan (blocks: the block plan's block boundary).
    variant : Variant
    settings : RunSettings
        Guard, clipping and outside value of every run (callbacks are added per run).
    psf_depths : tuple of float or None
        The strata depths of a depth-variant PSF (``psf`` its K PSFs), or None.
    """

    psf: Any
    iterations: int
    boundary: str = DEFAULT_BOUNDARY
    variant: Variant = field(default_factory=Variant)
    settings: RunSettings = field(default_factory=RunSettings)
    psf_depths: Any = None

    def deconvolver(self, shape: tuple[int, ...], backend: Any,
                    z_origin: int = 0) -> Deconvolver:
        """A :class:`Deconvolver` for one block or frame shape; ``z_origin``: the image
        plane of the block's first plane (a depth-variant PSF's depths are the image's:
        a block's plan weighs its planes at their depths in the image, and holds only
        the strata that weigh on its grid)."""
        depths = self.psf_depths
        if depths is not None and z_origin:
            depths = tuple(d - z_origin for d in depths)
        return Deconvolver(self.psf, shape, self.iterations, backend=backend,
                           boundary=self.boundary, variant=self.variant,
                           psf_depths=depths)

    @property
    def strata(self) -> int:
        """K, the PSFs of a depth-variant run (1 for one PSF): the most a block holds."""
        return 1 if self.psf_depths is None else len(self.psf_depths)

    def checked_psf(self, shape: tuple[int, ...]) -> Any:
        """The PSF (or a depth-variant run's ``(K, ...)`` stack) checked and cropped to an
        image of ``shape``, as each plan would check it."""
        if self.psf_depths is None:
            return as_psf(self.psf, shape)
        return as_strata(self.psf, self.psf_depths, shape)[0]

    def psf_extent(self) -> tuple[int, ...]:
        """The extent of :attr:`psf` (checked), voxels per axis: a stack's, the largest of
        its PSFs' on each axis."""
        if self.psf_depths is None:
            return psf_extent(self.psf)
        return tuple(int(n) for n in np.max([psf_extent(p) for p in self.psf], axis=0))

    def run(self, deconvolver: Deconvolver, data: Any, **changes: Any) -> Any:
        """``deconvolver`` on ``data`` with these settings (and ``changes`` to them)."""
        return deconvolver.execute(data, replace(self.settings, **changes))


@dataclass(frozen=True, kw_only=True)
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
        (e.g. ``"held-out band loss, binomial split; ..."``; with ``psf_depths``
        ``"held-out band loss of the strata forward model (K = 4), ..."``), then the
        updates of each phase.
    stop_value : float or None
        The rule's value (held-out loss) at the chosen iteration.
    offset : float
        The background subtracted from the image first, image units (``offset=``; the
        estimate with ``offset="auto"``).
    psf_resampled : tuple or None
        ``(psf_voxel_size, voxel_size)``, microns per axis, when the PSF was resampled
        from the one to the other (:func:`rlcore.psf.resample`); None otherwise.
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
    offset: float = 0.0
    psf_resampled: tuple | None = None


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


def memory_per_voxel(backend: Any, variant: Variant, boundary: str,
                     strata: int = 1) -> float:
    """Device bytes per grid voxel of one run: the backend's buffers (image, estimate,
    work, OTF, spectrum work) plus the variant's: the back projector's half spectrum,
    the previous estimate (acceleration), the last step (Biggs-Andrews) and ``1 / H^T M``
    (non-circulant); with ``strata`` K > 1 (:class:`rlcore.iteration.StrataConvolution`)
    K - 1 more OTFs, K weights, a real term and a spectrum sum, and the spectrum work
    buffer of its own (never sharing the real one's memory)."""
    extra = 4.0 if not variant.back_projector.matched else 0.0
    extra += 4.0 * (variant.accelerate is not None)
    extra += 4.0 * (variant.accelerate == "biggs-andrews")
    extra += 4.0 * is_noncirculant(boundary)
    if strata > 1:
        extra += 4.0 * (strata - 1) + 4.0 * strata + 4.0 + 4.0
        extra += 4.0 * (getattr(backend, "work_buffers", None) is not None)
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
    boundary : str, default ``"non-circulant-half"``
        As in :func:`rlcore.deconvolve`.
    accelerate, back_projector, tv, tol
        As in :func:`rlcore.deconvolve`; or ``variant`` instead.
    variant : Variant, optional
        Already checked options (overrides the four above).
    like : array, optional
        An array of the kind the images will be (CuPy, array-API), for ``"auto"``.
    psf_depths : sequence of float, optional
        A depth-variant PSF: ``psf`` is then K PSFs (a sequence, or a ``(K, *psf_shape)``
        array) at these K depths, voxels along axis 0 (z) of the image, as in
        :func:`rlcore.deconvolve` (the strata model; matched back projector only).

    Raises
    ------
    TypeError, ValueError
        Any argument invalid (the message names it).
    rlcore.errors.BackendUnavailableError
        The named backend cannot run here.

    Notes
    -----
    Holds on the device: the OTF, one spectrum and one real work buffer, the back
    projector's spectrum when unmatched, and ``1 / H^T M`` for ``"non-circulant"``; with
    ``psf_depths``, the OTFs and weights of the strata that weigh on the grid
    (:class:`rlcore.iteration.StrataConvolution`) instead of the OTF. Each
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
                 backend: Any = "auto", device: Any = None,
                 boundary: str = DEFAULT_BOUNDARY,
                 accelerate: Any = False, back_projector: Any = "matched", tv: Any = 0.0,
                 tol: Any = None, variant: Variant | None = None, like: Any = None,
                 psf_depths: Any = None):
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
        #: the strata depths (None: one PSF); :attr:`psf` is then the ``(K, ...)`` stack
        self.psf_depths = None
        if psf_depths is None:
            self.psf = as_psf(psf, self.shape)
            extent = psf_extent(self.psf)
        else:
            self.psf, self.psf_depths = as_strata(psf, psf_depths, self.shape)
            extent = tuple(np.max([psf_extent(p) for p in self.psf], axis=0))
        self.grid = make_grid(self.shape, extent, boundary, fast_len=backend.fast_length)
        self.boundary = boundary
        bp = self.variant.back_projector
        if psf_depths is not None and not bp.matched:
            raise ValueError(f"back_projector: {bp.kind!r} is built for one PSF; with "
                             "psf_depths pass back_projector='matched' (or 'auto')")
        self.back_kernel = None if bp.matched else backprojector.kernel(self.psf, bp)
        self.placement = placement_for(backend, self.grid)
        with backend.activate():
            self.operator = self._operator()
            #: strata (PSFs) the operator sums over: 1 for one PSF, else those of
            #: :attr:`psf_depths` that weigh on the grid
            self.strata = getattr(self.operator, "strata", 1)
            self.normalization = (self.placement.normalization(self.operator,
                                                               NONCIRCULANT_GUARD)
                                  if is_noncirculant(boundary) else None)

    def _operator(self) -> Convolution | StrataConvolution:
        """``H`` on the grid: the PSF's convolution, or the strata that weigh on the grid
        (a stratum whose weight is zero on every plane is left out; one left, its plain
        convolution)."""
        grid = self.grid
        if self.psf_depths is None:
            return Convolution(self.backend, self.psf, grid.shape, back=self.back_kernel)
        weights = grid_weights(self.psf_depths, grid)
        used = [k for k in range(len(weights)) if np.any(weights[k] > 0)]
        if len(used) == 1:
            return Convolution(self.backend, self.psf[used[0]], grid.shape)
        return StrataConvolution(self.backend, [self.psf[k] for k in used], weights[used],
                                 grid.shape)

    @property
    def bytes_per_voxel(self) -> float:
        """Device bytes per grid voxel of one run (the memory model blocks are sized by)."""
        return memory_per_voxel(self.backend, self.variant, self.boundary, self.strata)

    def run(self, image: Any, *, init: Any = "image", callback: Callable | None = None,
            observe: Callable[[int, Any], object] | None = None, return_info: bool = False,
            release: bool = False) -> Any:
        """Deconvolve one image of :attr:`shape` (or a series of them).

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
        observe : callable, optional
            ``observe(k, estimate)`` after update ``k``, with the estimate on the image
            region, float32, an array of the backend (valid during the call only; copy it
            to keep it): to watch the estimate converge (error curves against a ground
            truth, the benches' use). One frame only.
        return_info : bool, default False
            Also return a :class:`RunInfo`. One frame only.
        release : bool, default False
            Free this plan's buffers (as :meth:`close`) once the updates are done, before
            the result is cropped: for a plan used once, so that the crop can reuse their
            memory. The plan cannot run again.

        Returns
        -------
        array, float32, :attr:`shape` (and a :class:`RunInfo` with ``return_info``)

        Raises
        ------
        ValueError
            The image's shape differs from :attr:`shape`; bad values (as deconvolve);
            ``return_info``, ``observe`` or an ``init`` array with a series.
        RuntimeError
            The plan was closed.
        rlcore.errors.NumericalError
            The result would not be finite.
        """
        settings = RunSettings(init=init, callback=callback, observe=observe,
                               return_info=return_info, release=release)
        ndim = len(getattr(image, "shape", ()))
        if ndim > len(self.shape) and tuple(image.shape[-len(self.shape):]) == self.shape:
            if return_info or observe is not None or not isinstance(init, str):
                raise ValueError("image: a series runs frame by frame; return_info, "
                                 "observe and an init array take one frame")
            return pipeline.map_frames(self.backend, image, len(self.shape),
                                       lambda frame: self.execute(frame, settings))
        return self.execute(image, settings)

    def execute(self, image: Any, settings: RunSettings) -> Any:
        """Deconvolve one image of :attr:`shape` as ``settings`` say (the internal form of
        :meth:`run`: blocks, frames and auto set the guard, the outside value, a monitor).

        Raises
        ------
        As :meth:`run`.
        """
        be = self.backend
        if self.operator is None:
            raise RuntimeError("this Deconvolver is closed (close() or release=True); make "
                               "a new one")
        with be.activate():
            y, xp, peak = as_image(source(be, image), clip_negative=settings.clip_negative)
            if tuple(y.shape) != self.shape:
                raise ValueError(f"image: shape {tuple(y.shape)} differs from the planned "
                                 f"{self.shape}; make a Deconvolver for this shape")
            guard = GUARD_RELATIVE * peak if settings.guard is None else settings.guard
            logger.info("deconvolve: backend=%s device=%s image=%s psf=%s grid=%s "
                        "boundary=%s iterations=%d guard=%.3g", be.name, be.device,
                        self.shape, self.psf.shape, self.grid.shape, self.boundary,
                        self.iterations, guard)
            data, estimate = self._on_grid(y, xp, settings)
            del y
            estimate, done, converged = richardson_lucy(
                self.operator, data, estimate, self.iterations, guard, settings.callback,
                self._options(settings))
            del data  # before the result is cropped out of the grid
            if settings.release:
                self.close()
            monitor = settings.monitor
            if monitor is not None:
                monitor(done, estimate, None)  # the last estimate too
                if getattr(monitor, "best", None) is not None:
                    estimate = monitor.best
            result = self.placement.result(estimate, image, xp)
        if not settings.return_info:
            return result
        return result, RunInfo(iterations=done, converged=converged, backend=be.name,
                               device=be.device, boundary=self.boundary,
                               grid_shape=self.grid.shape)

    def _on_grid(self, y: Any, xp: Any, settings: RunSettings) -> tuple[Any, Any]:
        """The data and the first estimate on the grid; the first estimate is a copy of
        the image made where the data lies (the grid embedding on a padded grid, a device
        copy of the uploaded data else)."""
        be, grid, placement = self.backend, self.grid, self.placement
        init = settings.init
        from_image = isinstance(init, str) and init == "image"
        estimate0 = y if from_image else initial_estimate(init, y, xp, self.shape)
        data = placement.data(y)
        if settings.grid_estimate is not None:
            estimate = be.copy_into(settings.grid_estimate, be.empty(grid.shape))
        elif from_image and not grid.padded:
            estimate = be.copy_into(data, be.empty(grid.shape))
        elif from_image and placement.on_device:
            del estimate0  # from the data on the device: the upload is freed first
            estimate = placement.estimate_from_data(data, settings.outside)
        else:
            estimate = placement.on_grid(estimate0, estimate=True, fill=settings.outside)
        if self.normalization is not None:  # voxels not estimated start at 0, so that no
            # update's step depends on how far the grid was rounded up
            estimate = be.zero_where(estimate, self.normalization)
        return data, estimate

    def _options(self, settings: RunSettings) -> Options:
        """The iteration's options of one run (built once, never changed)."""
        v, grid, observe = self.variant, self.grid, settings.observe
        if observe is not None and grid.padded:
            watch = observe

            def observe(k: int, x: Any) -> None:  # the image region after each update
                watch(k, x[grid.region])

        return Options(accelerate=v.accelerate, tv=v.tv, tol=v.tol,
                       clip=self.back_kernel is not None, normalization=self.normalization,
                       monitor=settings.monitor, observe=observe,
                       region=grid if self.placement.region_data else None)

    def convolve(self, image: Any, adjoint: bool = False) -> Any:
        """``H image`` (or ``H^T image``) on this plan's grid, cropped to the image: the
        forward model of the runs (:func:`rlcore.convolve`).

        Raises
        ------
        ValueError
            The image's shape differs from :attr:`shape`; bad values.
        """
        be = self.backend
        with be.activate():
            x, xp, _ = as_image(source(be, image), clip_negative=False)
            if tuple(x.shape) != self.shape:
                raise ValueError(f"image: shape {tuple(x.shape)} differs from the planned "
                                 f"{self.shape}")
            data = self.placement.on_grid(x)
            op = self.operator
            out = op.adjoint(data) if adjoint else op.forward(data)
            return self.placement.result(out, image, xp)

    __call__ = run

    def recounted(self, iterations: int) -> Deconvolver:
        """This plan with another count: the same PSF, grid, variant, OTF and work buffers,
        so nothing is transformed or allocated (``iterations="auto"``'s run of the chosen
        count on the whole image).

        Raises
        ------
        TypeError, ValueError
            ``iterations`` not an int >= 0.
        RuntimeError
            The plan is closed.
        """
        if self.operator is None:
            raise RuntimeError("this Deconvolver is closed; recount it before it is closed")
        other = copy.copy(self)
        other.iterations = check_iterations(iterations)
        return other

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
        if self.psf_depths is not None:
            raise ValueError("psf_depths: rematched() takes one PSF; make a new Deconvolver")
        if not variant.back_projector.matched or self.boundary != "periodic":
            raise ValueError("variant: rematched() takes the matched back projector on a "
                             "periodic grid; make a new Deconvolver otherwise")
        if self.operator is None:
            raise RuntimeError("this Deconvolver is closed; rematch it before it is closed")
        other = self.recounted(iterations)
        other.variant, other.back_kernel = variant, None
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
