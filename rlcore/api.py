"""Public entry points: argument checking, conventions, backend choice, then the iteration."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import array_api_compat
import numpy as np

from rlcore import _arrays, backprojector, registry
from rlcore.boundary import is_noncirculant, make_grid
from rlcore.deconvolver import (
    GUARD_RELATIVE,
    NONCIRCULANT_GUARD,
    Deconvolver,
    RunInfo,
    RunOptions,
    Variant,
    finish,
    on_grid,
    source,
)
from rlcore.errors import DeviceOutOfMemoryError
from rlcore.iteration import Convolution
from rlcore.validate import as_image, as_psf, check_iterations, to_numpy

__all__ = ["deconvolve", "convolve", "RunInfo", "GUARD_RELATIVE", "NONCIRCULANT_GUARD"]

logger = logging.getLogger(__name__)


def _reject_dask(array: Any, name: str) -> None:
    if _arrays.kind(array) == "dask":
        raise TypeError(
            f"{name}: convolve takes in-memory arrays; pass numpy.asarray(image) or "
            "image.compute() (deconvolve takes dask arrays)"
        )


def _select_backend(backend: str, device: Any, image: Any) -> Any:
    kind = _arrays.kind(image)
    like = image if kind not in ("numpy", "dask") else None
    return registry.get_backend(backend, device=device, like=like)


#: the phases of ``iterations="auto"`` with its defaults (measured in bench/iterations.py,
#: results in bench/results/iterations.md), the second from the first's best estimate:
#: (1) the Wiener-Butterworth back projector (alpha = 0.05), no acceleration, until the
#: held-out loss stops improving: most of the restoration in 2-15 updates (on the
#: widefield sets 5-18% below plain RL's best error); (2) the matched back projector with
#: momentum, which keeps its first update (the loss of a Wiener-Butterworth estimate is
#: not comparable with a matched one's, AutoStop.build's ``first``) and goes on while the
#: loss still falls; when the first phase's first update already overshoots, the second
#: starts from the first estimate. Kept first update: on the (48, 96, 96) sets (alpha 0.1)
#: auto went from -0.3% .. +6.3% against plain RL's best to -17.1% .. +2.2% (EPFL bars
#: +6.3% -> -0.4%, going on for 51 updates), and at (96, 192, 192) under the measured PSF
#: from +5.7%/+17.4% to -1.0%/+2.0%: 1-3 matched updates after a Wiener-Butterworth
#: estimate took 3-14% off the error there. alpha: 0.1 took 6-20 updates on the widefield
#: sets where 0.05 takes 3-10 at the same errors (+0.9% against +2.2% on the small
#: blocks); 0.03 came within 3% too, and 0.01 overshot at the first update on the
#: widefield sets. Momentum in the first phase landed 11% above the best on the bars.
AUTO_PHASES = ((False, backprojector.check("wiener-butterworth", alpha=0.05)),
               ("momentum", backprojector.check("matched")))
#: the phase of ``iterations="auto"`` on padded grids (every boundary but periodic): with
#: "non-circulant-half" the Wiener-Butterworth phase first stopped after 1 update on the
#: widefield sets (the loss then weighed the estimate beyond the image too); with the
#: loss on the image region, Wiener-Butterworth then momentum still landed worse than
#: momentum alone on the EPFL bars (+16.4% against +2.0% above the half extension's
#: best) and the widefield set at 1000 photons (+24.6% against +11.4%;
#: bench/results/iterations.md)
AUTO_PADDED_PHASES = (("momentum", backprojector.check("matched")),)


def _auto_phases(accelerate: Any, back_projector: Any,
                 boundary: str = "periodic") -> tuple[tuple[Any, Any], ...]:
    """The phases of ``iterations="auto"``: :data:`AUTO_PHASES` (periodic) or
    :data:`AUTO_PADDED_PHASES` (padded grids) when both are "auto"; else one phase with
    what was given (a matched back projector defaults to momentum, an unmatched one to
    no acceleration; acceleration alone to the matched one)."""
    if (_is_auto(accelerate) or accelerate is None) and _is_auto(back_projector):
        return AUTO_PHASES if boundary == "periodic" else AUTO_PADDED_PHASES
    bp = backprojector.check("matched" if _is_auto(back_projector) else back_projector)
    if _is_auto(accelerate) or accelerate is None:
        accelerate = "momentum" if bp.matched else False
    return ((accelerate, bp),)


def _run_auto(image, psf, *, backend, device, boundary, init, callback, progress,
              accelerate, back_projector, tv, max_iterations, gain, offset, return_info,
              blocked):
    """``iterations="auto"``: the held-out split of :mod:`rlcore.autostop`, in phases."""
    from rlcore import autostop

    max_iterations, gain, offset = autostop.check_auto(max_iterations, gain, offset)
    kind = _arrays.kind(image)
    if kind == "dask" or any(v is not None for v in blocked.values()):
        raise ValueError("iterations: 'auto' runs on a whole image in memory; for blocks, "
                         "Dask arrays or out= pass an int (e.g. the count RunInfo reported "
                         "for a representative crop)")
    if isinstance(image, (str, bytes)):
        as_image(image)
    host = to_numpy(image, "image")
    y, _, _ = as_image(host, clip_negative=False)
    y = np.asarray(y)
    phases = _auto_phases(accelerate, back_projector, boundary)
    variants = [Variant.checked(y.ndim, accelerate=a, back_projector=b, tv=tv)
                for a, b in phases]
    be = _select_backend(backend, device, image)
    result, counts, loss, info, best, held = None, [], None, None, None, None
    pad = autostop.pad_mask(y)  # constant padding: no noise to split there
    with be.activate():
        # the noise model (host) while the first phase is planned (OTF, kernels: on a GPU
        # the device's work)
        with ThreadPoolExecutor(1, thread_name_prefix="rlcore-noise") as pool:
            fitting = pool.submit(autostop.fit_noise, y, gain, offset, pad)
            plan = Deconvolver(psf, y.shape, max_iterations, backend=be, boundary=boundary,
                               variant=variants[0])
            fit = fitting.result()
        checked = autostop.check(y, plan.psf, offset, pad)
        if checked.fallback:  # the split's assumption fails: a fixed count of plain RL
            import warnings

            n = min(autostop.FALLBACK_ITERATIONS, max_iterations)
            with warnings.catch_warnings():  # the PSF was checked (and warned of) above
                warnings.simplefilter("ignore", UserWarning)
                plan = Deconvolver(psf, y.shape, n, backend=be, boundary=boundary)
            data = _like(_subtract_offset_host(y, np.float32(offset)), image)
            with _progress(progress, n, "Richardson-Lucy (auto: fallback)", callback) as step:
                result, info = plan.run(data, init=init, return_info=True, release=True,
                                        callback=lambda k, _n: step(k, n))
            rule = (f"{n} plain updates, fallback: {checked.fallback}; the held-out split "
                    "needs independent noise per voxel and measured data")
            logger.warning("iterations='auto': %s", rule)
            info = RunInfo(n, n < max_iterations, info.backend, info.device, boundary,
                           info.grid_shape, stop_rule=rule, stop_value=None)
            return (result, info) if return_info else result
        # on the device where the backend draws random numbers (then CuPy arrays)
        train, test, method = autostop.split(y, gain=gain, offset=offset, backend=be,
                                             fit=fit, pad=pad)
        like = _like(train, image) if isinstance(train, np.ndarray) else train
        rival = len(phases) > 1  # the chain's rival: its last phase from the image
        # the phases' loss as measured on bench/iterations.py's sets; the rival's
        # corrected for the periodic model's mismatch at the image's faces (below)
        held = autostop.HeldOut.of(plan, test)
        weight = 1.0 if boundary == "periodic" else autostop.PADDED_OUT_OF_BAND
        with _progress(progress, max_iterations, "Richardson-Lucy (auto)", callback) as step:
            for i, ((_, bp), variant) in enumerate(zip(phases, variants)):
                left = max_iterations - sum(counts)
                if left <= 0:
                    break
                if i > 0:  # the first phase was planned above
                    plan = (plan.rematched(variant, left)  # the last one's OTF and buffers
                            if bp.matched and boundary == "periodic" else
                            Deconvolver(psf, y.shape, left, backend=be, boundary=boundary,
                                        variant=variant))
                last = i == len(phases) - 1
                # each phase stops at its first update that does not improve (patience 1:
                # along one method's updates the loss is smooth; 2, 3 and 5 chose the
                # same update in 30 traced phases, bench/results/iterations.md); a later
                # phase keeps its first update (AutoStop.build's ``first``)
                stop = autostop.AutoStop.build(plan, held, out_of_band=weight * bp.matched,
                                               patience=1, first=0 if best is None else 1)
                done = sum(counts)
                # a later phase starts from the last one's best grid estimate (so what a
                # padded grid holds beyond the image carries over)
                estimate, info = plan.run(
                    like, init=init, grid_estimate=best, monitor=stop, return_info=True,
                    release=last and not rival,
                    callback=lambda k, _n, done=done: step(done + k, max_iterations))
                if stop.best_k == 0:
                    if result is not None:
                        break  # this phase did not improve on the last one's estimate
                    counts.append(0)  # its first update overshot: the next phase starts
                    loss = stop.best_loss  # from the first estimate again
                    continue
                result, loss, best = estimate, stop.best_loss, stop.best
                counts.append(stop.best_k)
                if stop.since < stop.patience:
                    break  # max_iterations reached
            beaten = None
            if rival and counts and counts[0] > 0:
                # the last phase alone, from the first estimate: where the first phase's
                # first update already overshoots (objects no sharper than a few plain
                # updates make), the held-out loss prefers it (bench/results/realdata.md)
                (_, bp), variant = phases[-1], variants[-1]
                plan = (plan.rematched(variant, max_iterations) if boundary == "periodic"
                        else Deconvolver(psf, y.shape, max_iterations, backend=be,
                                         boundary=boundary, variant=variant))
                # its loss: the test part corrected for the periodic model's mismatch at
                # the image's faces (autostop.boundary_mismatch)
                corrected = autostop.HeldOut.of(plan, test, train=train)
                stop = autostop.AutoStop.build(plan, corrected,
                                               out_of_band=weight * bp.matched, patience=1)
                # the two compared in the band only (beyond it the test part says nothing,
                # and the chain's first phase recovers sharp objects' detail there)
                judge = autostop.AutoStop.build(plan, corrected, out_of_band=0.0)
                estimate, rival_info = plan.run(
                    like, init=init, monitor=stop, return_info=True, release=False,
                    callback=lambda k, _n: step(k, max_iterations))
                # the rival's estimate must be nearer to the truth than the chain's by
                # RIVAL_MARGIN of their distance (autostop.AutoStop.margin)
                nearer = judge.margin(best, stop.best) if stop.best_k > 0 else 0.0
                if nearer > autostop.RIVAL_MARGIN:
                    beaten = (counts, nearer)
                    result, loss, info, counts = estimate, stop.best_loss, rival_info, [
                        0] * (len(phases) - 1) + [stop.best_k]
    total = sum(counts)
    logger.info("iterations='auto': stopped at %s updates (held-out loss %.6g), %s split",
                "+".join(map(str, counts)), loss, method)
    if total == 0:  # no update helps: the image itself (all of its photons)
        plain = np.clip(y - np.float32(offset), 0, None).astype(np.float32)
        result = _like(plain, image)
    elif _arrays.kind(result) != _arrays.kind(image):  # a device split's: NumPy in, out
        result = _like(np.asarray(be.to_host(result)), image)
    names = " + ".join(f"{n} {_phase_name(*phases[i])}" for i, n in enumerate(counts)
                       if n or not beaten) if total else ""
    if beaten:
        was = " + ".join(f"{n} {_phase_name(*phases[i])}" for i, n in enumerate(beaten[0]))
        names += (f" from the image (its boundary-corrected held-out loss nearer than {was} "
                  f"by {beaten[1]:.2f} of their distance)")
    note = checked.note()
    info = RunInfo(total, total < max_iterations, info.backend, info.device, boundary,
                   info.grid_shape, stop_rule=f"held-out band loss, {method} split; "
                   f"{names or 'no update'}" + (f"; {note}" if note else ""),
                   stop_value=loss)
    return (result, info) if return_info else result


def _phase_name(accelerate: Any, bp: Any) -> str:
    words = [bp.kind if bp.matched else f"{bp.kind} (alpha {bp.alpha:g})"]
    if accelerate:
        words.append("biggs-andrews" if accelerate is True else str(accelerate))
    return " ".join(words)


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == "auto"


def _defaults(accelerate: Any, back_projector: Any) -> tuple[Any, Any]:
    """``accelerate`` and ``back_projector`` of a fixed count with "auto" resolved: plain
    RL (no acceleration, the matched back projector)."""
    if _is_auto(accelerate) or accelerate is None:
        accelerate = False
    if _is_auto(back_projector):
        back_projector = "matched"
    return accelerate, backprojector.check(back_projector)


def _like(host: np.ndarray, image: Any) -> Any:
    """``host`` as an array of the caller's kind (CuPy, array API; NumPy unchanged)."""
    kind = _arrays.kind(image)
    if kind == "cupy":
        import cupy

        return cupy.asarray(host)
    if kind == "array_api":
        return array_api_compat.array_namespace(image).asarray(host)
    return host


def _subtract_offset(image: Any, offset: Any) -> Any:
    """``max(image - offset, 0)`` in the image's own kind (numpy, CuPy, Dask, array API)."""
    from rlcore import autostop

    offset = autostop.check_offset(offset)
    kind = _arrays.kind(image)
    if kind == "numpy":
        return _subtract_offset_host(np.asarray(image), np.float32(offset))
    if kind == "dask":
        return (image.astype(np.float32) - np.float32(offset)).clip(0, None)
    xp = array_api_compat.array_namespace(image)
    shifted = xp.astype(image, xp.float32) - offset
    return xp.where(shifted > 0, shifted, xp.zeros_like(shifted))


def _subtract_offset_host(y: np.ndarray, offset: np.float32) -> np.ndarray:
    """``max(y - offset, 0)`` as one new float32 array, written in place (no temporaries)
    and, for large arrays, by several threads (:func:`rlcore.validate.in_row_slabs`): the
    two-temporary form took 80 ms on 33 M voxels, more than a 30-update GPU run (H200,
    scripts/gpu_auto_speed.py's sets)."""
    from rlcore.validate import in_row_slabs

    if y.ndim == 0:  # refused later, as every 0-d image
        return np.maximum(np.float32(y) - offset, np.float32(0))
    out = np.empty(y.shape, np.float32)

    def part(lo: int, hi: int) -> None:
        np.subtract(y[lo:hi], offset, out=out[lo:hi], casting="unsafe")
        np.maximum(out[lo:hi], np.float32(0), out=out[lo:hi])

    in_row_slabs(y, part)
    return out


def _run_series(image: Any, psf: Any, iterations: Any, channel_axis: Any,
                kw: dict) -> Any:
    """Channels (one PSF each) and frames (axes beyond the PSF's), or None when the image
    is one frame. Frames of one PSF share one :class:`Deconvolver` when they run whole in
    memory; otherwise (auto, blocks, Dask) each frame is one :func:`_run`."""
    from rlcore import series

    if isinstance(image, (str, bytes)) or not hasattr(image, "shape"):
        return None
    ndim = len(image.shape)
    if channel_axis is not None:
        axis = series.check_channel_axis(channel_axis, ndim)
        psfs = series.split_channels(psf, int(image.shape[axis]))
        if kw.get("out") is not None:
            raise ValueError("out: not available with channel_axis; write each channel's "
                             "result yourself")
        infos = []

        def one_channel(channel, channel_psf):
            result = _run(channel, channel_psf, iterations, **dict(kw, return_info=True))
            infos.append(result[1])
            return result[0]

        result = series.map_channels(image, psfs, axis, one_channel)
        return (result, infos[0]) if kw.get("return_info") else result
    frame_ndim = series.psf_ndim(psf)
    if series.is_psf_sequence(psf):
        raise ValueError("psf: a sequence of PSFs needs channel_axis= (one PSF per channel)")
    if frame_ndim == 0 or frame_ndim >= ndim:
        return None
    if kw.get("out") is not None:
        raise ValueError("out: not available for images with more axes than the PSF; "
                         "deconvolve frame by frame into your own output")
    frames = int(np.prod(image.shape[:ndim - frame_ndim]))
    shape = tuple(int(n) for n in image.shape[ndim - frame_ndim:])
    whole = (not isinstance(iterations, str) and _arrays.kind(image) != "dask"
             and kw.get("block_shape") is None and kw.get("max_memory") is None
             and not isinstance(kw.get("device"), (list, tuple)))
    callback, info = kw.get("callback"), None
    if not whole:
        frame_kw = dict(kw, progress=False, return_info=False)
        result = series.map_frames(image, frame_ndim,
                                   lambda f: _run(f, psf, iterations, **frame_kw))
        info = RunInfo(iterations if isinstance(iterations, int) else 0, False,
                       str(kw.get("backend")), str(kw.get("device")), kw["boundary"], shape,
                       frames=frames)
        return (result, info) if kw.get("return_info") else result
    iterations = check_iterations(iterations)
    accelerate, back = _defaults(kw.get("accelerate", False),
                                 kw.get("back_projector", "matched"))
    variant = Variant.checked(len(shape), accelerate=accelerate, back_projector=back,
                              tv=kw.get("tv", 0.0), tol=kw.get("tol"))
    first = image[(0,) * (ndim - frame_ndim) + (Ellipsis,)]
    be = _select_backend(kw["backend"], kw.get("device"), first)
    offset = kw.get("offset", 0.0)
    with be.activate():
        plan = Deconvolver(psf, shape, iterations, backend=be, boundary=kw["boundary"],
                           variant=variant)
        done = [0]
        total = iterations * frames

        def counted(k: int, n: int) -> None:
            done[0] += 1
            if callback is not None:
                callback(done[0], total)

        with _progress(kw.get("progress", False), total, f"RL, {frames} frames",
                       None) as step:
            def run_frame(frame):
                if offset:
                    frame = _subtract_offset(frame, offset)
                return plan.run(frame, init=kw.get("init", "image"),
                                callback=lambda k, n: (counted(k, n), step(k, n)),
                                guard=kw.get("guard"),
                                clip_negative=kw.get("clip_negative", True))

            result = series.map_frames(image, frame_ndim, run_frame)
    info = RunInfo(iterations, False, be.name, be.device, kw["boundary"], plan.grid.shape,
                   frames=frames)
    return (result, info) if kw.get("return_info") else result


def _run(
    image: Any,
    psf: Any,
    iterations: int,
    *,
    backend: str,
    device: Any,
    boundary: str,
    init: Any,
    callback: Callable[[int, int], object] | None,
    progress: bool,
    guard: float | None,
    clip_negative: bool = True,
    accelerate: Any = False,
    back_projector: Any = "matched",
    tv: float = 0.0,
    tol: float | None = None,
    return_info: bool = False,
    observe: Callable[[int, Any], object] | None = None,
    block_shape: Any = None,
    overlap: Any = "auto",
    max_memory: int | None = None,
    out: Any = None,
    max_iterations: int = 200,
    gain: float | None = None,
    offset: float = 0.0,
    channel_axis: int | None = None,
) -> Any:
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: must be callable(iteration, total), got {callback!r}")
    kw = dict(backend=backend, device=device, boundary=boundary, init=init,
              callback=callback, progress=progress, guard=guard,
              clip_negative=clip_negative, accelerate=accelerate,
              back_projector=back_projector, tv=tv, tol=tol, return_info=return_info,
              observe=observe, block_shape=block_shape, overlap=overlap,
              max_memory=max_memory, out=out, max_iterations=max_iterations, gain=gain,
              offset=offset)
    series_result = _run_series(image, psf, iterations, channel_axis, kw)
    if series_result is not None:
        return series_result
    if _is_auto(iterations):
        return _run_auto(image, psf, backend=backend, device=device, boundary=boundary,
                         init=init, callback=callback, progress=progress,
                         accelerate=accelerate, back_projector=back_projector, tv=tv,
                         max_iterations=max_iterations, gain=gain, offset=offset,
                         return_info=return_info,
                         blocked=dict(block_shape=block_shape, max_memory=max_memory,
                                      out=out))
    iterations = check_iterations(iterations)
    accelerate, back_projector = _defaults(accelerate, back_projector)
    if offset:
        image = _subtract_offset(image, offset)
    ndim = max(len(image.shape) if hasattr(image, "shape") else int(np.ndim(image)), 1)
    options = RunOptions(boundary, Variant.checked(ndim, accelerate=accelerate,
                                                   back_projector=back_projector, tv=tv,
                                                   tol=tol),
                         guard=guard, clip_negative=clip_negative)
    if _arrays.kind(image) == "dask" and out is None:  # with out=: blocks read from it
        return _run_dask(image, psf, iterations, backend=backend, device=device,
                         block_shape=block_shape, overlap=overlap, max_memory=max_memory,
                         init=init, return_info=return_info, options=options,
                         callback=callback, progress=progress)
    blocked = dict(block_shape=block_shape, overlap=overlap, max_memory=max_memory, out=out)
    if isinstance(device, (list, tuple)):  # several devices: blocks spread over them
        bes = [_select_backend(backend, d, image) for d in device]
        if not bes:
            raise ValueError("device: an empty list; give one device or several")
        with bes[0].activate():
            result, info = _run_blocked(bes, image, psf, iterations, init, callback,
                                        progress, blocked, options)
        return (result, info) if return_info else result
    be = _select_backend(backend, device, image)
    with be.activate():
        if block_shape is None and max_memory is None and out is None:
            try:
                result, info = _run_on(be, image, psf, iterations, options, init=init,
                                       callback=callback, progress=progress, observe=observe)
            except DeviceOutOfMemoryError as exc:
                logger.warning("deconvolve: out of memory unblocked on %s (%s); retrying in "
                               "blocks", be.device, exc)
                result, info = _retry_in_blocks(be, image, psf, iterations, init, callback,
                                                progress, overlap, options)
        else:
            result, info = _run_blocked(be, image, psf, iterations, init, callback, progress,
                                        blocked, options)
    return (result, info) if return_info else result


@contextlib.contextmanager
def _progress(show: bool, total: int, desc: str, callback: Callable | None):
    """The per-update step: advances a tqdm bar (when ``show``) and calls ``callback``."""
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="it")

    def step(k: int, n: int) -> None:
        if bar is not None:
            bar.update(1)
        if callback is not None:
            callback(k, n)

    try:
        yield step
    finally:
        if bar is not None:
            bar.close()


def _blocked_input(image: Any, init: Any, options: RunOptions) -> tuple[Any, tuple[int, ...]]:
    if not (isinstance(init, str) and init == "image"):
        raise ValueError(f"init: blocked runs start from the image, got {init!r}")
    if options.variant.tol is not None:
        raise ValueError("tol: not available with blocks (blocks would stop at different "
                         "iterations); use a fixed iteration count")
    if not hasattr(image, "shape") or not hasattr(image, "__getitem__"):
        image = np.asarray(image)
    return image, tuple(int(n) for n in image.shape)


#: bytes read per slab when a whole-volume constant is computed from a sliceable source
_SLAB_BYTES = 64 << 20


def _pieces(image: Any):
    """Slices that cover a sliceable source with little memory each: its chunks (zarr:
    decoding a chunk-aligned piece holds no other chunk), else slabs along axis 0 of
    about ``_SLAB_BYTES``."""
    import itertools

    from rlcore.blocks import chunk_shape

    shape = tuple(int(n) for n in image.shape)
    chunks = chunk_shape(image)
    if not chunks:
        step = max(1, _SLAB_BYTES // max(1, int(np.prod(shape[1:])) * 4))
        chunks = (step,) + shape[1:]
    ranges = [range(0, n, c) for n, c in zip(shape, chunks)]
    for start in itertools.product(*ranges):
        yield tuple(slice(a, min(a + c, n)) for a, c, n in zip(start, chunks, shape))


def _whole_volume(image: Any, options: RunOptions) -> RunOptions:
    """The constants every block of a run shares, computed from the whole volume in one
    pass whatever holds it (NumPy, CuPy, Dask, zarr, memmap, any sliceable array), so a
    blocked run matches an unblocked one: the division's guard (``GUARD_RELATIVE`` x the
    maximum) and, non-circulant, the first estimate outside the image (the mean)."""
    need_guard = options.guard is None
    need_mean = is_noncirculant(options.boundary) and options.outside is None
    if not (need_guard or need_mean) or not int(np.prod(image.shape)):
        return options
    kind = _arrays.kind(image)
    if kind == "dask":
        import dask

        top, total = dask.compute(image.max(), image.sum(dtype=np.float64))
        top, total = float(top), float(total)
    elif isinstance(image, np.ndarray) or kind == "cupy":
        top, total = float(image.max()), float(image.sum(dtype=np.float64))
    elif kind == "array_api":
        xp = array_api_compat.array_namespace(image)
        top, total = float(xp.max(image)), float(xp.sum(xp.astype(image, xp.float64)))
    else:  # zarr, memmap, lazy readers: one stored chunk, or a slab along axis 0, at a time
        top, total = -np.inf, 0.0
        for piece in _pieces(image):
            part = np.asarray(image[piece], dtype=np.float32)
            top, total = max(top, float(part.max())), total + float(part.sum(dtype=np.float64))
    if need_guard:
        options = replace(options, guard=GUARD_RELATIVE * max(top, 0.0))
    if need_mean:
        options = replace(options, outside=total / int(np.prod(image.shape)))
    return options


def _run_blocked(bes, image, psf, iterations, init, callback, progress, blocked, options,
                 max_memory=None):
    from rlcore.scheduler import run_blocked

    be = bes[0] if isinstance(bes, list) else bes
    image, shape = _blocked_input(image, init, options)
    h = as_psf(psf, shape)
    from rlcore.blocks import chunk_shape

    chunks = (chunk_shape(image), chunk_shape(blocked.get("out")))
    p = block_plan(shape, h.shape, iterations, be, options=options,
                   block_shape=blocked["block_shape"], overlap=blocked["overlap"],
                   max_memory=max_memory or blocked["max_memory"], chunks=chunks)
    logger.info("deconvolve: blocks: %s", p)
    options = _whole_volume(image, options)
    with _progress(progress, iterations * p.n_blocks, f"RL, {p.n_blocks} blocks",
                   callback) as step:
        result = run_blocked(bes, image, h, iterations, p, callback=step,
                             out=blocked.get("out"), options=options)
    info = RunInfo(iterations, False, be.name, be.device, options.boundary, p.grid_shape,
                   p)
    if blocked.get("out") is None:  # CuPy in, CuPy out (array API likewise)
        result = _like(result, image)
    return result, info


def block_plan(image_shape: tuple[int, ...], psf_shape: tuple[int, ...], iterations: int,
               backend: Any, *, options: RunOptions | None = None, block_shape: Any = None,
               overlap: Any = "auto", max_memory: int | None = None,
               chunks: tuple = (None, None)) -> Any:
    """The :class:`rlcore.blocks.BlockPlan` a blocked :func:`deconvolve` uses (the one
    place it is made: runs, Dask and the CLI's ``--dry-run`` all call this).

    ``psf_shape`` is the PSF's shape after cropping to the image; ``backend`` a backend
    object (its memory model, free memory and FFT lengths size the blocks); ``options``
    the run's (boundary and variant; default plain periodic RL); ``chunks`` the chunk
    shapes of a chunked source and ``out`` (zarr), counted in the memory; the other
    arguments as in :func:`deconvolve`.

    Raises
    ------
    ValueError
        Bad block arguments, or ``max_memory`` too small for any block.
    """
    from rlcore import blocks
    from rlcore.deconvolver import memory_per_voxel

    options = options or RunOptions()
    block_shape = block_shape or "auto"
    return blocks.plan(tuple(image_shape), tuple(psf_shape), block_shape=block_shape,
                       overlap=overlap, max_memory=max_memory, boundary=options.boundary,
                       iterations=iterations,
                       bytes_per_voxel=memory_per_voxel(backend, options.variant,
                                                        options.boundary),
                       free_memory=backend.memory().free if block_shape == "auto" else None,
                       host=backend.on_host, fast_len=backend.fast_length, chunks=chunks)


def _retry_in_blocks(be, image, psf, iterations, init, callback, progress, overlap, options):
    """After an out-of-memory error: blocks for half the free memory, then smaller."""
    free = be.memory().free
    for fraction in (0.5, 0.25, 0.125, 0.0625, 0.03125):
        budget = int(free * fraction)
        try:
            result, info = _run_blocked(be, image, psf, iterations, init, callback, progress,
                                        dict(block_shape="auto", overlap=overlap,
                                             max_memory=budget, out=None), options, budget)
        except DeviceOutOfMemoryError as exc:
            logger.warning("deconvolve: blocks for %.0f MiB also ran out of memory (%s)",
                           budget / 2**20, exc)
            continue
        except ValueError:  # no plan fits in so little memory
            break
        logger.warning("deconvolve: computed in blocks after the out-of-memory error: %s",
                       info.blocks)
        return result, info
    raise DeviceOutOfMemoryError(
        f"out of memory on {be.device}, unblocked and in blocks down to "
        f"{free * 0.03125 / 2**20:.0f} MiB per block; use a smaller block_shape or another "
        "backend")


def _run_dask(image, psf, iterations, *, backend, device, block_shape, overlap, max_memory,
              init, return_info, options: RunOptions, callback=None, progress=False):
    from rlcore.registry import get_backend
    from rlcore.scheduler import run_dask

    _blocked_input(image, init, options)
    shape = tuple(int(n) for n in image.shape)
    h = as_psf(psf, shape)
    be = get_backend(backend, device=device)  # checks the name here, not in the workers
    p = None
    if block_shape is not None or max_memory is not None:
        p = block_plan(shape, h.shape, iterations, be, options=options,
                       block_shape=block_shape, overlap=overlap, max_memory=max_memory)
    elif overlap != "auto":
        p = block_plan(shape, h.shape, iterations, be, options=options,
                       block_shape=tuple(max(c) for c in image.chunks), overlap=overlap)
    options = _whole_volume(image, options)
    result = run_dask(image, h, iterations, p, backend=backend, device=device,
                      options=options, callback=callback, progress=progress)
    if return_info:
        info = RunInfo(iterations, False, backend, str(device), options.boundary,
                       p.grid_shape if p else tuple(max(c) for c in image.chunks), p)
        return result, info
    return result


def _run_on(be, image, psf, iterations, options: RunOptions, *, init, callback, progress,
            observe=None):
    """One unblocked run on backend ``be`` through a :class:`Deconvolver`."""
    if isinstance(image, (str, bytes)) or not hasattr(image, "shape"):
        image = as_image(image)[0]  # array-likes converted (and checked) once
    shape = tuple(int(n) for n in image.shape)
    if not shape or 0 in shape:
        as_image(image)  # raises, naming the image
    plan = options.plan(psf, shape, iterations, be)
    with _progress(progress, iterations, "Richardson-Lucy", callback) as step:
        return options.run(plan, image, init=init, callback=step, observe=observe,
                           return_info=True, release=True)


def deconvolve(
    image: Any,
    psf: Any,
    iterations: int | str = 10,
    *,
    backend: str = "auto",
    boundary: str = "periodic",
    init: Any = "image",
    callback: Callable[[int, int], object] | None = None,
    progress: bool = False,
    device: Any = None,
    accelerate: Any = "auto",
    back_projector: Any = "auto",
    tv: float = 0.0,
    tol: float | None = None,
    return_info: bool = False,
    block_shape: Any = None,
    overlap: Any = "auto",
    max_memory: int | None = None,
    out: Any = None,
    max_iterations: int = 200,
    gain: float | None = None,
    offset: float = 0.0,
    channel_axis: int | None = None,
) -> Any:
    """Richardson-Lucy deconvolution of a 2-D or 3-D image.

    Runs ``iterations`` updates of ``x <- x * H^T(image / H x)`` (Richardson 1972; Lucy
    1974), with ``H`` the convolution by the PSF computed with real FFTs (OTF computed
    once) and ``H^T`` its exact adjoint (the correlation, conjugate OTF).

    Parameters
    ----------
    image : array, shape ``(Z, Y, X)`` or ``(Y, X)``, or a series ``(..., Z, Y, X)``
        The measured image, real dtype (integer or float). NumPy arrays, array-likes and
        arrays of any array-API library (array-api-strict, PyTorch, JAX) are accepted.
        Negative values are clipped to 0 with a warning. The image is never modified.
        Axes beyond the PSF's (time ``(T, Z, Y, X)``, ``(T, C, Z, Y, X)``) are frames:
        each frame is deconvolved as if alone (same result as one call per frame), all
        with one :class:`rlcore.Deconvolver` (one OTF); a Dask array gets one task per
        frame.
    psf : array, or a sequence of arrays with ``channel_axis``
        Point spread function, any real dtype, non-negative (negative values are clipped
        with a warning). Conventions: normalised to sum 1 internally; its centre voxel is
        index ``n // 2`` on each axis (for odd sizes the centring of
        ``scipy.signal.fftconvolve(mode="same")``); a PSF smaller than the image is
        zero-padded, a larger one centre-cropped to the image with a warning. Odd and even
        sizes are both exact. It may have fewer axes than the image (frames, above).
    iterations : int or "auto", default 10
        Number of RL updates (0 returns the first estimate). ``"auto"``: the count is
        chosen from the data (:mod:`rlcore.autostop`): the image is split into a training
        part (90% of the signal) and an independent test part (binomial thinning for
        photon counts, Gaussian fission with a fitted noise model otherwise), the
        training part is deconvolved while an in-band object-space error against the
        test part is tracked, and the estimate where it is smallest is returned
        (:attr:`RunInfo.iterations` and :attr:`RunInfo.stop_value` report it), in two
        phases (:data:`AUTO_PHASES`): the Wiener-Butterworth back projector (alpha 0.05),
        then the matched one with momentum from its best estimate (at least one update);
        on padded grids (every ``boundary`` but "periodic") the second alone
        (:data:`AUTO_PADDED_PHASES`, out-of-band weight
        :data:`rlcore.autostop.PADDED_OUT_OF_BAND`);
        ``back_projector`` or ``accelerate`` given: one phase with them. Not with blocks,
        ``out=`` or Dask arrays (pass an int there). The split is seeded: a run repeats
        exactly on the same backend; backends that draw random numbers on their device
        (CuPy) make another split of the same photons than the host's (NumPy, OpenCL), so
        their result differs from NumPy's as two splits do (errors within 2.5% of each
        other on the bench's sets, bench/results/iterations.md).
    backend : str, default ``"auto"``
        ``"auto"`` picks the fastest backend that works here for this kind of array (see
        :func:`rlcore.available_backends`); or a name such as ``"numpy"``, ``"array_api"``.
    boundary : str, default ``"periodic"``
        One of "periodic", "zero", "reflect", "non-circulant", "non-circulant-half": how
        the image continues beyond its edges (:mod:`rlcore.boundary`): circular
        wrap-around on the image grid; zero outside (linear convolution, on a grid padded
        by the PSF size); mirrored (same padded grid); or unknown (Bertero & Boccacci
        2005: the object is estimated on the padded grid from the measured voxels only,
        each update normalised by ``H^T M``; "non-circulant-half" on a grid padded by
        half the PSF, deconwolf's ``--bq 1``: bench/results/boundaries-half.json).
        Measured (bench/results/variants.md,
        docs/boundaries.png): where an object is cut by the volume's edges,
        "non-circulant" has the lowest error in the outer band of PSF half-width on the
        EPFL bars phantom (0.66 vs 0.77 periodic, 0.88 zero), but not on every object (on
        dense noisy random blocks periodic did better after 50 iterations), and it costs
        the larger grid (2.2-2.4x per iteration for a (64, 256, 256) image, 32^3 PSF).
        The EPFL bars data set itself was made by circular convolution (a fitted forward
        model leaves an RMS residual of 979 with "periodic", 1677 with "zero"), so there
        "periodic" is the exact model. So "periodic" stays the default: cheapest, and what
        RedLionfish users compare against; use "non-circulant" for objects cut by the
        edges of the field.
    init : {"image", "flat"}, float or array, default ``"image"``
        First estimate: the image itself, its mean everywhere, a constant, or an array of
        the image's shape.
    callback : callable, optional
        ``callback(iteration, total)`` after every update, iteration counting from 1.
        Raising an exception in it stops the run (the exception propagates). In blocks
        (and for a dask array, while the lazy result is computed) it counts the updates
        of all blocks: ``total = iterations x blocks``.
    progress : bool, default False
        Show a tqdm progress bar.
    device : object or list, optional
        Backend-specific device choice (for ``"numpy"``: the number of threads; CuPy: the
        GPU index; OpenCL: index or name). A list of devices (``[0, 1]``) computes in
        blocks, one thread per device.
    accelerate : {"auto", False, True, "biggs-andrews", "momentum"}, default "auto"
        ``"auto"``: False (``iterations="auto"``: its phases, :data:`AUTO_PHASES`).
        ``True`` or ``"biggs-andrews"``: Biggs & Andrews (1997) vector extrapolation (as
        cudaDecon); step clipped to [0, 1], two more grid-sized buffers.
        ``"momentum"``: deconwolf's scaled heavy ball (Wernersson et al. 2024),
        ``x_k + (k - 1) / (k + 2) (x_k - x_{k-1})`` clipped to >= 0 before each update;
        one more grid-sized buffer. Both combine with every back projector. Measured
        reach: Notes.
    back_projector : {"auto", "matched", "wiener-butterworth", "otf-masked"} or BackProjector
        The kernel of the back projection (``"auto"`` is ``"matched"``; with
        ``iterations="auto"`` its phases, :data:`AUTO_PHASES`). ``"matched"``:
        the exact adjoint ``H^T``
        (classic RL). ``"wiener-butterworth"``: Guo et al. 2020; ``"otf-masked"``:
        PetaKit5D's OMW (Ruan et al. 2024); both reach their best in a few updates
        instead of tens, and clip the update at 0. Parameters (Wiener ``alpha``,
        Butterworth ``beta`` and ``order``, OTF ``support``) through
        :func:`rlcore.backprojector.check`, e.g.
        ``back_projector=rlcore.backprojector.check("wiener-butterworth", alpha=0.05)``;
        formulas, defaults and ranges in :mod:`rlcore.backprojector`. One more half
        spectrum of device memory.
    tv : float, default 0
        Total-variation weight of RLTV (Dey et al. 2006): each update is divided by
        ``1 - tv * div(grad x / |grad x|)``. Valid range ``[0, 1 / (2 * ndim))`` (the
        divergence term is bounded by ``2 * ndim``, so the denominator stays positive);
        useful values are about 1e-4 to 1e-2 (the term is scale-free, so the data's
        intensity scale does not change the choice). 0 disables it.
    tol : float, optional
        Stop early when the relative change made by an update,
        ``||x_{k+1} - x_k|| / ||x_k||``, falls below ``tol`` (in (0, 1)).
    return_info : bool, default False
        Also return a :class:`RunInfo` (iterations actually done, whether ``tol``
        stopped the run, backend, device, grid shape, blocks).
    block_shape : None, "auto" or tuple of int, default None
        Compute in blocks (:mod:`rlcore.blocks`): the core of each block in voxels
        ``(Z, Y, X)`` (the result voxels it produces; the overlap is added around it), or
        "auto" to size blocks from ``max_memory`` or the backend's free memory. None: one
        block, unless the backend runs out of memory, when the run is retried in blocks
        (logged as a warning; ``RunInfo.blocks`` says so). For a dask array, None keeps
        its chunks as the block cores.
    overlap : "auto", int or tuple of int, default "auto"
        Halo of each block in voxels per side; "auto" is 1.5 PSF extents, growing with
        the square root of ``iterations`` beyond 10 (:func:`rlcore.blocks.auto_overlap`;
        measured seam error in :mod:`rlcore.blocks` and bench/results/blocks.md).
    max_memory : int, optional
        Bytes one block's run may use (implies blocks, sized automatically).
    out : array, optional
        Blocked runs only (implies blocks): the result is written into it core by core
        (a float32 NumPy array, ``numpy.memmap`` or zarr array of the image's shape), so
        neither input nor output needs to fit in memory (``image`` may be any sliceable
        array: memmap, zarr). ``out`` is returned. A zarr or h5py ``out`` carries the
        attribute ``rlcore_complete``: False while blocks are written, True when all are,
        so a run that was stopped is recognisable (it does not resume: run it again).
    max_iterations : int, default 200
        ``iterations="auto"``: the most updates it may run.
    gain : float, optional
        ``iterations="auto"``: camera gain in image units per photon. Default: the data
        are taken as photon counts when they are integers whose fitted noise grows like
        counts' (gain 0.6-1.6), else the noise model ``var = gain * (y - offset) +
        read^2`` is fitted from the image (:func:`rlcore.autostop.noise_model`).
    offset : float, default 0
        The image's zero level (camera offset, background) in image units, subtracted
        before deconvolving (values below it become 0). With ``iterations="auto"`` the
        split is made on the data as recorded and the offset removed from both parts,
        which keeps photon counts' statistics.
    channel_axis : int, optional
        Axis of ``image`` that holds channels; ``psf`` is then one PSF per channel (a
        sequence) or one PSF for all. Each channel is deconvolved with its own PSF and
        its frames share one plan.

    Returns
    -------
    array, float32, shape ``image.shape``
        The estimate. NumPy (or array-like) in gives NumPy out; an array-API array gives
        an array of the same library; a ``dask.array`` gives a lazy ``dask.array``
        (``map_overlap`` over the blocks; any Dask scheduler, ``dask.distributed`` too),
        unless ``out`` is given: then the blocks are read from the dask array and
        computed in this process, one at a time, within ``max_memory``, into ``out``.
        Never contains NaN or infinity.
    info : RunInfo
        Only with ``return_info=True``: ``(result, info)`` is returned.

    Raises
    ------
    TypeError
        ``image``/``psf`` of complex, boolean, object or string dtype; ``iterations`` not
        an int or "auto"; ``callback`` not callable; ``block_shape``/``overlap`` not ints;
        ``back_projector``, ``accelerate``, ``max_iterations``, ``gain``, ``offset``,
        ``channel_axis`` of the wrong type.
    ValueError
        Empty arrays, NaN/inf values, PSF with a different number of axes or a sum <= 0,
        negative ``iterations``, unknown ``boundary``, ``init``, ``backend``,
        ``back_projector`` or ``accelerate``, ``tv`` outside ``[0, 1 / (2 * ndim))``,
        ``tol`` outside (0, 1); ``tol`` or an ``init`` other than "image" with blocks;
        ``max_memory`` too small for any block; ``iterations="auto"`` with blocks, ``out``
        or Dask; a PSF with more axes than the image; ``channel_axis`` out of range or a
        PSF count that differs from the channels.
    rlcore.errors.DeviceOutOfMemoryError
        Out of memory even in the smallest blocks.
    rlcore.errors.BackendUnavailableError
        The named backend cannot run here.
    rlcore.errors.NumericalError
        The result would not be finite (extreme data).

    Notes
    -----
    How many iterations (bench/results/iterations.md, docs/iterations.png; 9 ground-truth
    sets, NRMSE after least-squares scaling): plain RL's best lies at 7-200 updates;
    ``iterations="auto"`` landed from 18% below that best (widefield PSF) to 0.9% above it
    (small blocks whose best is at 7 plain updates), within 4.3% of the best of its first
    phase's method, 0.6-5.8x faster (median 1.9x) on a 2-core CPU at (48, 96, 96) and
    3.7-10.1x (median 5.5x) at (96, 192, 192). Momentum reaches plain RL's best in
    1.4-4.2x fewer updates at about the cost of a plain update (1.02x on an H200); the
    Wiener-Butterworth back projector reaches its best in 2-50 updates, 7-17% below
    plain RL's best error under a widefield PSF, within +1.4% of it under the measured LLS
    PSF (alpha 0.1); the OTF-masked one in 1-5, and it degrades fast after its best (use
    1-3 updates).

    The division is guarded: the ratio ``image / (H x)`` is 0 wherever
    ``H x <= 1e-6 * max(image)`` (:data:`GUARD_RELATIVE`), so every value stays finite and
    the result scales exactly with the image. With ``boundary="periodic"`` the total flux
    of the estimate equals the image's after every update.

    References
    ----------
    W. H. Richardson, "Bayesian-based iterative method of image restoration", JOSA 62
    (1972) 55-59. L. B. Lucy, "An iterative technique for the rectification of observed
    distributions", AJ 79 (1974) 745. M. Bertero, P. Boccacci, "A simple method for the
    reduction of boundary effects in the Richardson-Lucy approach to image
    deconvolution", A&A 437 (2005) 369-374, eq. (4).

    Examples
    --------
    >>> import numpy as np, rlcore
    >>> image = np.zeros((16, 32, 32), np.float32); image[8, 16, 16] = 100.0
    >>> psf = np.ones((3, 3, 3))
    >>> blurred = rlcore.convolve(image, psf)
    >>> result = rlcore.deconvolve(blurred, psf, iterations=20)
    >>> result.shape, result.dtype
    ((16, 32, 32), dtype('float32'))
    >>> bool(result[8, 16, 16] > blurred[8, 16, 16])
    True
    """
    return _run(
        image, psf, iterations, backend=backend, device=device, boundary=boundary,
        init=init, callback=callback, progress=progress, guard=None,
        accelerate=accelerate, back_projector=back_projector, tv=tv, tol=tol,
        return_info=return_info,
        block_shape=block_shape, overlap=overlap, max_memory=max_memory, out=out,
        max_iterations=max_iterations, gain=gain, offset=offset, channel_axis=channel_axis,
    )


def convolve(
    image: Any,
    psf: Any,
    *,
    adjoint: bool = False,
    boundary: str = "periodic",
    backend: str = "auto",
    device: Any = None,
) -> Any:
    """Apply the forward model ``H`` (or its adjoint ``H^T``) that :func:`deconvolve` uses.

    Useful to simulate a blurred image, and to check the adjoint:
    ``<H x, y> == <x, H^T y>`` for every ``x``, ``y``.

    Parameters
    ----------
    image : array, shape ``(Z, Y, X)`` or ``(Y, X)``
        Real values (signed values allowed here).
    psf : array
        As in :func:`deconvolve` (normalised to sum 1, centre voxel ``n // 2``).
    adjoint : bool, default False
        Apply ``H^T`` (correlation, conjugate OTF) instead of ``H``.
    boundary : {"periodic", "zero"}, default ``"periodic"``
        ``"periodic"``: circular on the image grid. ``"zero"``: linear convolution with
        zeros outside the image (for odd PSF sizes equal to
        ``scipy.signal.fftconvolve(image, psf, mode="same")``).
    backend, device
        As in :func:`deconvolve`.

    Returns
    -------
    array, float32, shape ``image.shape``

    Raises
    ------
    TypeError, ValueError
        As :func:`deconvolve`, and ``boundary="reflect"`` (not a linear operator with an
        adjoint on the image).
    """
    if boundary not in ("periodic", "zero"):
        raise ValueError(f"boundary: convolve supports 'periodic' and 'zero', got {boundary!r}")
    _reject_dask(image, "image")
    be = _select_backend(backend, device, image)
    with be.activate():
        x, xp, _ = as_image(source(be, image), clip_negative=False)
        shape = tuple(x.shape)
        h = as_psf(psf, shape)
        grid = make_grid(shape, h.shape, boundary, fast_len=be.fast_length)
        operator = Convolution(be, h, grid.shape)
        data = on_grid(be, grid, x)
        out = operator.adjoint(data) if adjoint else operator.forward(data)
        return finish(be, grid, out, image, xp)
