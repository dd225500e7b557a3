"""``iterations="auto"`` (the route ``"auto"``): the held-out split of
:mod:`rlcore.autostop`, run in phases, each stopped where the held-out loss is smallest.

Why these phases and their parameters: bench/results/iterations.md.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from rlcore import _arrays
from rlcore._request import Request
from rlcore._run.common import like, progress
from rlcore.deconvolver import Deconvolver, RunSettings, Variant
from rlcore.validate import as_image, to_numpy

__all__ = ["run"]

logger = logging.getLogger(__name__)

def _phase_name(accelerate: Any, bp: Any) -> str:
    words = [bp.kind if bp.matched else f"{bp.kind} (alpha {bp.alpha:g})"]
    if accelerate:
        words.append("biggs-andrews" if accelerate is True else str(accelerate))
    return " ".join(words)


class _Phases:
    """The state carried from phase to phase: the PSF, the test part and the update
    budget, then the counts, the best estimate so far (the caller's kind and the grid's),
    its loss, and the last run's info."""

    def __init__(self, psf: Any, max_iterations: int) -> None:
        self.psf, self.max_iterations = psf, max_iterations
        self.test: Any = None
        self.counts: list[int] = []
        self.result: Any = None
        self.loss: Any = None
        self.best: Any = None
        self.info: Any = None
        self.held: Any = None


def run(request: Request, image: Any, psf: Any) -> Any:
    """Deconvolve ``image`` with the count chosen by the held-out loss."""
    from rlcore import autostop

    max_iterations, gain, offset = autostop.check_auto(request.max_iterations, request.gain,
                                                       request.offset)
    if _arrays.kind(image) == "dask" or request.blocking.asked:
        raise ValueError("iterations: 'auto' runs on a whole image in memory; for blocks, "
                         "Dask arrays or out= pass an int (e.g. the count RunInfo reported "
                         "for a representative crop)")
    if isinstance(image, (str, bytes)):
        as_image(image)
    y, _, _ = as_image(to_numpy(image, "image"), clip_negative=False)
    y = np.asarray(y)
    phases = autostop.phases(request.accelerate, request.back_projector, request.boundary)
    variants = [Variant.checked(y.ndim, accelerate=a, back_projector=b, tv=request.tv)
                for a, b in phases]
    be = request.select_backend(image)
    state = _Phases(psf, max_iterations)
    with be.activate():
        # the noise model (host) while the first phase is planned (on a GPU, the device's
        # work)
        with ThreadPoolExecutor(1, thread_name_prefix="rlcore-noise") as pool:
            fitting = pool.submit(autostop.fit_noise, y, gain, offset)
            deconvolver = Deconvolver(psf, y.shape, max_iterations, backend=be,
                                      boundary=request.boundary, variant=variants[0])
            fit = fitting.result()
        # on the device where the backend draws random numbers (then CuPy arrays)
        train, state.test, method = autostop.split(y, gain=gain, offset=offset, backend=be,
                                                   fit=fit)
        start = like(train, image) if isinstance(train, np.ndarray) else train
        with progress(request.progress, max_iterations, "Richardson-Lucy (auto)",
                      request.callback) as step:
            _run_phases(request, deconvolver, list(zip(phases, variants)), start, state,
                        step)
    return _answer(request, (image, y, offset), be, state, phases, method)


def _run_phases(request: Request, deconvolver: Deconvolver, phases: list, start: Any,
                state: _Phases, step: Any) -> None:
    """Each phase from the last one's best estimate, stopped at its first update that does
    not improve the held-out loss (patience 1); a later phase keeps its first update."""
    from rlcore import autostop

    boundary, max_iterations = request.boundary, state.max_iterations
    for i, ((_, bp), variant) in enumerate(phases):
        left = max_iterations - sum(state.counts)
        if left <= 0:
            break
        if i > 0:  # the first phase was planned by the caller
            deconvolver = (deconvolver.rematched(variant, left)  # the same OTF, buffers
                           if bp.matched and boundary == "periodic" else
                           Deconvolver(state.psf, deconvolver.shape, left,
                                       backend=deconvolver.backend, boundary=boundary,
                                       variant=variant))
        if state.held is None:  # the same PSF and grid in every phase
            state.held = autostop.HeldOut.of(deconvolver, state.test)
        weight = 1.0 if boundary == "periodic" else autostop.PADDED_OUT_OF_BAND
        stop = autostop.AutoStop.build(deconvolver, state.held,
                                       out_of_band=weight * bp.matched, patience=1,
                                       first=0 if state.best is None else 1)
        done = sum(state.counts)
        estimate, state.info = deconvolver.execute(start, RunSettings(
            init=request.init, grid_estimate=state.best, monitor=stop, return_info=True,
            release=i == len(phases) - 1,
            callback=lambda k, _n, done=done: step(done + k, max_iterations)))
        if stop.best_k == 0:
            if state.result is not None:
                break  # this phase did not improve on the last one's estimate
            state.counts.append(0)  # its first update overshot: the next phase starts
            state.loss = stop.best_loss  # from the first estimate again
            continue
        state.result, state.loss, state.best = estimate, stop.best_loss, stop.best
        state.counts.append(stop.best_k)
        if stop.since < stop.patience:
            break  # max_iterations reached


def _answer(request: Request, data: tuple, be: Any, state: _Phases, phases: tuple,
            method: str) -> Any:
    """The best estimate in the caller's kind, and its :class:`RunInfo`; ``data`` is the
    caller's image, its checked host copy and the offset."""
    image, y, offset = data
    total, max_iterations = sum(state.counts), state.max_iterations
    logger.info("iterations='auto': stopped at %s updates (held-out loss %.6g), %s split",
                "+".join(map(str, state.counts)), state.loss, method)
    result = state.result
    if total == 0:  # no update helps: the image itself (all of its photons)
        result = like(np.clip(y - np.float32(offset), 0, None).astype(np.float32), image)
    elif _arrays.kind(result) != _arrays.kind(image):  # a device split's: NumPy in, out
        result = like(np.asarray(be.to_host(result)), image)
    names = " + ".join(f"{n} {_phase_name(*phases[i])}" for i, n in enumerate(state.counts)
                       ) if total else ""
    info = state.info
    info = request.info(iterations=total, converged=total < max_iterations,
                        backend=info.backend, device=info.device, grid_shape=info.grid_shape,
                        stop_rule=f"held-out band loss, {method} split; "
                        f"{names or 'no update'}", stop_value=state.loss)
    return request.answer(result, info)
