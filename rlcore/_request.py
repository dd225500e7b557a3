"""One checked request: the public arguments of :func:`rlcore.deconvolve` checked and
defaulted once, and the route a run takes decided once from the request and the image.

``deconvolve`` -> :meth:`Request.from_public` -> :func:`rlcore._run.run` -> the route's
runner (:mod:`rlcore._run`) -> the block scheduler or a :class:`rlcore.Deconvolver` ->
:func:`rlcore.iteration.richardson_lucy` -> the backend. Nothing below takes more than a
handful of parameters: the request carries them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rlcore import _arrays, backprojector, registry
from rlcore.boundary import DEFAULT_BOUNDARY
from rlcore.deconvolver import Recipe, RunInfo, RunSettings, Variant
from rlcore.validate import check_iterations

__all__ = ["Blocking", "Request", "ROUTES", "is_auto", "resolve_fixed"]

#: the routes, in the order they are decided (:meth:`Request.route`)
ROUTES = ("channels", "frames", "auto", "dask", "devices", "blocked", "whole")


def is_auto(value: Any) -> bool:
    """True for the string ``"auto"`` (and nothing else: arrays compare elementwise)."""
    return isinstance(value, str) and value == "auto"


def resolve_fixed(accelerate: Any, back_projector: Any) -> tuple[Any, Any]:
    """``accelerate`` and ``back_projector`` of a fixed count with "auto" resolved: plain
    RL (no acceleration, the matched back projector)."""
    if is_auto(accelerate) or accelerate is None:
        accelerate = False
    if is_auto(back_projector):
        back_projector = "matched"
    return accelerate, backprojector.check(back_projector)


@dataclass(frozen=True)
class Blocking:
    """How the caller asked for blocks (:func:`rlcore.deconvolve`'s block arguments)."""

    block_shape: Any = None
    overlap: Any = "auto"
    max_memory: int | None = None
    out: Any = None

    @property
    def asked(self) -> bool:
        """Blocks were asked for: a block shape, a memory cap or an ``out`` array."""
        return not (self.block_shape is None and self.max_memory is None
                    and self.out is None)


@dataclass(frozen=True)
class Request:
    """Everything one :func:`rlcore.deconvolve` call asked for, checked once.

    Built by :meth:`from_public`; the runners of :mod:`rlcore._run` read it and make
    narrower copies of it (a channel, a frame) with :func:`dataclasses.replace`.
    Internal callers set ``guard`` (an absolute division guard), ``clip_negative`` and
    ``observe`` (``observe(k, estimate)`` after every update).
    """

    iterations: int | str
    backend: Any = "auto"
    device: Any = None
    boundary: str = DEFAULT_BOUNDARY
    init: Any = "image"
    callback: Callable[[int, int], object] | None = None
    progress: bool = False
    accelerate: Any = "auto"
    back_projector: Any = "auto"
    tv: Any = 0.0
    tol: Any = None
    blocking: Blocking = field(default_factory=Blocking)
    max_iterations: Any = 200
    gain: Any = None
    offset: Any = 0.0
    channel_axis: Any = None
    psf_depths: Any = None
    #: the PSF's and the image's voxel sizes (both or neither): the PSF is resampled
    #: (:meth:`with_psf_resampled`); ``psf_resampled`` then says from which to which
    psf_voxel_size: Any = None
    voxel_size: Any = None
    psf_resampled: tuple | None = None
    return_info: bool = False
    guard: float | None = None
    clip_negative: bool = True
    observe: Callable[[int, Any], object] | None = None
    #: set by :func:`rlcore._run.run` for a fixed count: what every block, frame and Dask
    #: task of the run shares
    recipe: Recipe | None = None

    @classmethod
    def from_public(cls, iterations: Any, **public: Any) -> Request:
        """The request of :func:`rlcore.deconvolve`'s arguments (its keyword names; the
        block arguments ``block_shape``, ``overlap``, ``max_memory`` and ``out``).

        Raises
        ------
        TypeError
            ``callback`` not callable.
        ValueError
            One of ``psf_voxel_size`` and ``voxel_size`` without the other.
        """
        callback = public.get("callback")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: must be callable(iteration, total), got {callback!r}")
        given = [public.get(k) is not None for k in ("psf_voxel_size", "voxel_size")]
        if any(given) and not all(given):
            seen = "psf_voxel_size" if given[0] else "voxel_size"
            raise ValueError(f"psf_voxel_size and voxel_size: give both (the PSF is then "
                             f"resampled from psf_voxel_size to voxel_size) or neither (the "
                             f"PSF is used as sampled at the image's voxel size); got "
                             f"{seen}={public[seen]!r} alone")
        blocking = Blocking(**{k: public.pop(k) for k in ("block_shape", "overlap",
                                                           "max_memory", "out")
                               if k in public})
        return cls(iterations, blocking=blocking, **public)

    def with_psf_resampled(self, psf: Any) -> tuple[Request, Any]:
        """The request without its voxel sizes (``psf_resampled`` set when they differ)
        and the PSF resampled from ``psf_voxel_size`` to ``voxel_size``
        (:func:`rlcore.psf.resample`; each PSF of a sequence or a depth stack); both as
        given without voxel sizes.

        Raises
        ------
        ValueError
            A voxel size not one positive number per PSF axis; a PSF resample refuses.
        """
        if self.psf_voxel_size is None and self.voxel_size is None:
            return self, psf
        from rlcore import series
        from rlcore._resample import check_voxel_size, resample
        from rlcore.strata import strata_ndim
        from rlcore.validate import to_numpy

        stack = self.psf_depths is not None
        ndim = strata_ndim(psf) if stack else series.psf_ndim(psf)
        a = check_voxel_size(self.psf_voxel_size, ndim, "psf_voxel_size")
        b = check_voxel_size(self.voxel_size, ndim, "voxel_size")
        done = self.narrowed(psf_voxel_size=None, voxel_size=None)
        if a == b:
            return done, psf
        if series.is_psf_sequence(psf):
            psf = [resample(to_numpy(p, "psf"), a, b) for p in psf]
        elif stack:
            psf = np.stack([resample(p, a, b) for p in to_numpy(psf, "psf")])
        else:
            psf = resample(to_numpy(psf, "psf"), a, b)
        return done.narrowed(psf_resampled=(a, b)), psf

    # -- the route ------------------------------------------------------------------------
    def route(self, image: Any, psf: Any) -> str:
        """One of :data:`ROUTES`: how this request runs on ``image``.

        Raises
        ------
        ValueError
            ``out`` with channels or frames; a sequence of PSFs without ``channel_axis``
            or ``psf_depths``; ``psf_depths`` with what it cannot run with
            (:meth:`check_depth_variant`) or a PSF stack not of 3-D PSFs.
        """
        from rlcore import series
        from rlcore.strata import strata_ndim

        if self.psf_depths is not None:
            self.check_depth_variant(image)
        if not isinstance(image, (str, bytes)) and hasattr(image, "shape"):
            if self.channel_axis is not None:
                return "channels"
            if self.psf_depths is not None:
                frame_ndim = strata_ndim(psf)
            elif series.is_psf_sequence(psf):
                raise ValueError("psf: a sequence of PSFs needs channel_axis= (one PSF per "
                                 "channel) or psf_depths= (one PSF per depth)")
            else:
                frame_ndim = series.psf_ndim(psf)
            if 0 < frame_ndim < len(image.shape):
                if self.blocking.out is not None:
                    raise ValueError("out: not available for images with more axes than "
                                     "the PSF; deconvolve frame by frame into your own "
                                     "output")
                return "frames"
        if is_auto(self.iterations):
            return "auto"
        if _arrays.kind(image) == "dask" and self.blocking.out is None:
            return "dask"  # with out=: the blocks are read from it, in this process
        if isinstance(self.device, (list, tuple)):
            return "devices"
        return "blocked" if self.blocking.asked else "whole"

    def check_depth_variant(self, image: Any) -> None:
        """Refuse what a depth-variant PSF (``psf_depths``) cannot run with.

        Raises
        ------
        ValueError
            ``psf_depths`` not K >= 2 finite increasing depths
            (:func:`rlcore.strata.check_depths`).
        """
        from rlcore.strata import check_depths

        check_depths(self.psf_depths)

    # -- what the runners share -----------------------------------------------------------
    def checked_iterations(self) -> int:
        """The fixed count, checked."""
        return check_iterations(self.iterations)

    def variant(self, ndim: int) -> Variant:
        """The update's variant of a fixed count for ``ndim``-D frames ("auto" resolved)."""
        accelerate, back = resolve_fixed(self.accelerate, self.back_projector)
        return Variant.checked(ndim, accelerate=accelerate, back_projector=back,
                               tv=self.tv, tol=self.tol)

    def make_recipe(self, psf: Any, ndim: int) -> Recipe:
        """What every block, frame and Dask task of a fixed-count run shares."""
        depths = None
        if self.psf_depths is not None:
            from rlcore.strata import check_depths

            depths = check_depths(self.psf_depths)
        return Recipe(psf, self.checked_iterations(), self.boundary, self.variant(ndim),
                      self.settings(), psf_depths=depths)

    def settings(self) -> RunSettings:
        """The settings of each run (the callback is added where the step is known)."""
        return RunSettings(init=self.init, guard=self.guard,
                           clip_negative=self.clip_negative, observe=self.observe)

    def select_backend(self, image: Any, device: Any = None) -> Any:
        """The backend this request runs ``image`` on (``device``: one of several)."""
        kind = _arrays.kind(image)
        like = image if kind not in ("numpy", "dask") else None
        return registry.get_backend(self.backend,
                                    device=self.device if device is None else device,
                                    like=like)

    def info(self, **fields: Any) -> RunInfo:
        """A :class:`RunInfo` of this request (its boundary unless given)."""
        fields.setdefault("boundary", self.boundary)
        fields.setdefault("offset", float(self.offset) if self.offset else 0.0)
        fields.setdefault("psf_resampled", self.psf_resampled)
        return RunInfo(**fields)

    def answer(self, result: Any, info: RunInfo) -> Any:
        """What the caller gets: the result, or ``(result, info)`` with ``return_info``."""
        return (result, info) if self.return_info else result

    def narrowed(self, **changes: Any) -> Request:
        """A copy for a part of the run (a channel, a frame)."""
        return replace(self, **changes)


def image_ndim(image: Any) -> int:
    """Axes of the image (at least 1), before it is checked."""
    return max(len(image.shape) if hasattr(image, "shape") else int(np.ndim(image)), 1)
