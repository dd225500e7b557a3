"""``iterations="auto"`` (the route ``"auto"``): the held-out split of
:mod:`rlcore.autostop`, run in phases, each stopped where the held-out loss is smallest.

Why these phases and their parameters: bench/results/iterations.md.
"""

from __future__ import annotations

import logging
import warnings
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
    """The state carried from phase to phase: the PSF (a depth-variant PSF's stack and
    its depths), the test part and the update budget, then the counts, the best estimate
    so far (the caller's kind and the grid's), its loss, and the last run's info."""

    def __init__(self, psf: Any, max_iterations: int, depths: Any = None) -> None:
        self.psf, self.max_iterations, self.depths = psf, max_iterations, depths
        self.test: Any = None
        self.counts: list[int] = []
        self.result: Any = None
        self.loss: Any = None
        self.best: Any = None
        self.info: Any = None
        self.held: Any = None
        self.beaten: Any = None  # (the chain's counts, the margin) when the rival won
        self.note = ""  # what the split left out (a small pad), for the stop rule
        self.plans: dict[int, Deconvolver] = {}  # each phase's plan, for the refit
        self.model = ""  # the forward model the loss is of, for the stop rule

    def held_out(self, deconvolver: Deconvolver, train: Any = None) -> Any:
        """The test part's band (:class:`rlcore.autostop.HeldOut`, or with psf_depths
        :class:`rlcore.autostop_strata.StrataHeldOut`); ``train`` corrects it for the
        periodic model's mismatch at the faces (None: not corrected)."""
        from rlcore import autostop, autostop_strata

        if self.depths is None:
            return autostop.HeldOut.of(deconvolver, self.test, train=train)
        held = autostop_strata.StrataHeldOut.of(deconvolver, self.test, train=train)
        self.model = f" of the strata forward model (K = {held.strata})"
        return held

    def stop(self, deconvolver: Deconvolver, out_of_band: float, first: int) -> Any:
        """The monitor of one phase: the held-out loss, patience 1."""
        from rlcore import autostop, autostop_strata

        kind = autostop.AutoStop if self.depths is None else autostop_strata.StrataStop
        return kind.build(deconvolver, self.held, out_of_band=out_of_band, patience=1,
                          first=first)


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
    state = _strata(psf, request.psf_depths, y.shape, max_iterations)
    phases = autostop.phases(request.accelerate, request.back_projector, request.boundary,
                             strata=state.depths is not None)
    variants = [Variant.checked(y.ndim, accelerate=a, back_projector=b, tv=request.tv)
                for a, b in phases]
    be = request.select_backend(image)
    with be.activate():
        pad = autostop.pad_mask_on(be, y)  # constant padding: no noise to split there
        # the noise model (host) while the first phase is planned (on a GPU, the device's
        # work)
        with ThreadPoolExecutor(1, thread_name_prefix="rlcore-noise") as pool:
            fitting = pool.submit(autostop.fit_noise, y, gain, offset, pad)
            deconvolver = _plan(request, state, y.shape, variants[0], be)
            fit = fitting.result()
        checked = autostop.check(y, deconvolver.psf, offset, pad, be)
        if checked.fallback:  # the split's assumption fails: a fixed count of plain RL
            return _fallback(request, (image, y, offset), be, checked.fallback, state)
        state.note = "; ".join(n for n in (state.note, checked.note()) if n)
        # on the device where the backend draws random numbers (then CuPy arrays)
        train, state.test, method = autostop.split(y, gain=gain, offset=offset, backend=be,
                                                   fit=fit, pad=pad)
        start = like(train, image) if isinstance(train, np.ndarray) else train
        # every phase's held-out loss; on a padded grid (the loss on the image's own
        # periodic grid) corrected for that model's mismatch at the faces, as the
        # periodic rival's (autostop.boundary_mismatch)
        corrected = train if deconvolver.grid.padded else None
        state.held = state.held_out(deconvolver, train=corrected)
        rival = len(phases) > 1  # the chain's rival: its last phase from the image
        with progress(request.progress, max_iterations, "Richardson-Lucy (auto)",
                      request.callback) as step:
            last = _run_phases(request, deconvolver, list(zip(phases, variants)), start,
                               state, step)
            if rival and state.counts and state.counts[0] > 0:
                _run_rival(request, last, (phases[-1], variants[-1]), (start, train), state,
                           step)
        del train, start, corrected
        # the split's parts and the training estimates, before the refit's buffers
        state.test = state.held = state.best = state.result = None
        _refit(request, (image, y, offset), state)
    return _answer(request, (image, y, offset), be, state, phases, method)


def _plan(request: Request, state: _Phases, shape: tuple[int, ...], variant: Variant,
          be: Any) -> Deconvolver:
    """The first phase's plan. A stratum run as one PSF (:func:`_strata`) is not warned of
    for its centring, as no PSF of ``psf_depths`` is (off-centre light, a deep PSF's focal
    shift, is part of the model: :func:`rlcore.strata.as_strata`)."""
    with warnings.catch_warnings():
        if request.psf_depths is not None:
            warnings.filterwarnings("ignore", message=r"psf: its centroid is")
        return Deconvolver(state.psf, shape, state.max_iterations, backend=be,
                           boundary=request.boundary, variant=variant,
                           psf_depths=state.depths)


def _strata(psf: Any, psf_depths: Any, shape: tuple[int, ...], max_iterations: int
            ) -> _Phases:
    """The phases' state with the PSF they run: one PSF as given; a depth-variant PSF's
    checked stack and depths; or, where only one of its strata weighs on the image's
    planes (the others' depths beyond the first or last stratum's side of the image),
    that stratum alone, run as one PSF (what the plan's operator is then), so the result
    is exactly that of ``iterations="auto"`` with it, Wiener-Butterworth phase included."""
    if psf_depths is None:
        return _Phases(psf, max_iterations)
    from rlcore.autostop_strata import image_strata
    from rlcore.strata import as_strata

    stack, depths = as_strata(psf, psf_depths, shape)  # checked (and refused) here
    used, _ = image_strata(depths, shape[0])
    if len(used) > 1:
        return _Phases(stack, max_iterations, depths)
    k = int(used[0])  # as given (checked as one PSF by the plan, as without psf_depths)
    state = _Phases(psf[k] if isinstance(psf, (list, tuple)) else to_numpy(psf, "psf")[k],
                    max_iterations)
    state.note = f"psf_depths: psf[{k}] alone weighs on the image's planes"
    return state


def _fallback(request: Request, data: tuple, be: Any, reason: str, state: _Phases) -> Any:
    """A fixed count of plain RL (:data:`rlcore.autostop_checks.FALLBACK_ITERATIONS`) where the
    held-out split cannot be trusted, with the reason in the stop rule."""
    from rlcore import autostop
    from rlcore._run.common import subtract_offset

    image, y, offset = data
    n = min(autostop.FALLBACK_ITERATIONS, state.max_iterations)
    with warnings.catch_warnings():  # the PSF was checked (and warned of) above
        warnings.simplefilter("ignore", UserWarning)
        deconvolver = Deconvolver(state.psf, y.shape, n, backend=be, boundary=request.boundary,
                                  psf_depths=state.depths)
    plain = like(subtract_offset(y, offset), image)
    with progress(request.progress, n, "Richardson-Lucy (auto: fallback)",
                  request.callback) as step:
        result, info = deconvolver.execute(plain, RunSettings(
            init=request.init, return_info=True, release=True,
            callback=lambda k, _n: step(k, n)))
    rule = (f"{n} plain updates, fallback: {reason}; the held-out split needs independent "
            "noise per voxel and measured data")
    logger.info("iterations='auto': %s", rule)
    info = request.info(iterations=n, converged=n < state.max_iterations,
                        backend=info.backend, device=info.device, grid_shape=info.grid_shape,
                        stop_rule=rule)
    return request.answer(result, info)


def _run_rival(request: Request, deconvolver: Deconvolver, phase: tuple, parts: tuple,
               state: _Phases, step: Any) -> None:
    """The chain's last phase alone, from the first estimate, stopped by the held-out loss
    corrected for the periodic model's mismatch at the image's faces; it replaces the
    chain's estimate when nearer by :data:`rlcore.autostop.RIVAL_MARGIN` of their distance
    (:meth:`rlcore.autostop.AutoStop.margin`; bench/results/realdata.md)."""
    from rlcore import autostop

    ((_, bp), variant), (start, train) = phase, parts
    boundary, max_iterations = request.boundary, state.max_iterations
    weight = 1.0 if boundary == "periodic" else autostop.PADDED_OUT_OF_BAND
    deconvolver = (deconvolver.rematched(variant, max_iterations) if boundary == "periodic"
                   else Deconvolver(state.psf, deconvolver.shape, max_iterations,
                                    backend=deconvolver.backend, boundary=boundary,
                                    variant=variant))
    corrected = autostop.HeldOut.of(deconvolver, state.test, train=train)
    stop = autostop.AutoStop.build(deconvolver, corrected, out_of_band=weight * bp.matched,
                                   patience=1)
    # the two compared in the band only (beyond it the test part says nothing)
    judge = autostop.AutoStop.build(deconvolver, corrected, out_of_band=0.0)
    estimate, info = deconvolver.execute(start, RunSettings(
        init=request.init, monitor=stop, return_info=True,
        callback=lambda k, _n: step(k, max_iterations)))
    nearer = judge.margin(state.best, stop.best) if stop.best_k > 0 else 0.0
    if nearer > autostop.RIVAL_MARGIN:
        state.beaten = (state.counts, nearer)
        state.result, state.loss, state.info = estimate, stop.best_loss, info
        state.counts = [0] * (len(state.beaten[0]) - 1) + [stop.best_k]
        state.plans = {len(state.counts) - 1: deconvolver}


def _run_phases(request: Request, deconvolver: Deconvolver, phases: list, start: Any,
                state: _Phases, step: Any) -> Deconvolver:
    """Each phase from the last one's best estimate, stopped at its first update that does
    not improve the held-out loss (patience 1); a later phase keeps its first update.
    Returns the last phase's deconvolver (for the rival); every phase's plan is kept in
    ``state.plans`` (not released: the refit runs them again)."""
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
                                       variant=variant, psf_depths=state.depths))
        weight = 1.0 if boundary == "periodic" else autostop.PADDED_OUT_OF_BAND
        stop = state.stop(deconvolver, weight * bp.matched, 0 if state.best is None else 1)
        done = sum(state.counts)
        state.plans[i] = deconvolver
        estimate, state.info = deconvolver.execute(start, RunSettings(
            init=request.init, grid_estimate=state.best, monitor=stop, return_info=True,
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
    return deconvolver


class _Final:
    """A monitor that refers to the run's last grid estimate (its final call's)."""

    best: Any = None

    def __call__(self, k: int, point: Any, spectrum: Any = None) -> bool:
        self.best = point
        return False


def _refit(request: Request, data: tuple, state: _Phases) -> None:
    """The chosen counts again, phase after phase, on the whole image: the split's
    training part holds a fraction (:data:`rlcore.autostop.DEFAULT_FRACTION`) of the
    photons, and the count chosen on it, run on all of them, gave a lower error on each
    of bench/realdata.py's and bench/iterations.py's sets (0.1-2.5%: as cross-validation
    refits on all the data once the parameter is chosen; bench/results/realdata.md).
    Each phase's plan is reused with its count (:meth:`Deconvolver.recounted`)."""
    from rlcore._run.common import subtract_offset

    image, y, offset = data
    plans, state.plans = state.plans, {}
    total = sum(state.counts)
    if total == 0:  # no update helps: the image itself (see _answer)
        return
    start = like(subtract_offset(y, offset), image)
    last = max(i for i, n in enumerate(state.counts) if n)
    grid, done = None, 0
    with progress(request.progress, total, "Richardson-Lucy (auto: whole image)",
                  request.callback) as step:
        for i, n in enumerate(state.counts):
            if n == 0:
                continue
            plan, final = plans[i], _Final()
            state.result = plan.recounted(n).execute(start, RunSettings(
                init=request.init, grid_estimate=grid, monitor=final, release=i == last,
                callback=lambda k, _n, done=done: step(done + k, total)))
            done += n
            if i < last:  # the next phase's first estimate (its plan may share buffers)
                be = plan.backend
                grid = be.copy_into(final.best, be.empty(tuple(plan.grid.shape)))


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
    beaten = state.beaten
    names = " + ".join(f"{n} {_phase_name(*phases[i])}" for i, n in enumerate(state.counts)
                       if n or not beaten) if total else ""
    if beaten:
        was = " + ".join(f"{n} {_phase_name(*phases[i])}" for i, n in enumerate(beaten[0]))
        names += (f" from the image (its boundary-corrected held-out loss nearer than {was} "
                  f"by {beaten[1]:.2f} of their distance)")
    info = state.info
    rule = f"held-out band loss{state.model}, {method} split; {names or 'no update'}"
    info = request.info(iterations=total, converged=total < max_iterations,
                        backend=info.backend, device=info.device, grid_shape=info.grid_shape,
                        stop_rule=rule + (f"; {state.note}" if state.note else ""),
                        stop_value=state.loss)
    return request.answer(result, info)
