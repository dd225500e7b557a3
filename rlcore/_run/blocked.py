"""Blocks in this process (the routes ``"blocked"`` and ``"devices"``), and the one place
a blocked run's plan of blocks and whole-volume constants are made."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from typing import Any

import array_api_compat
import numpy as np

from rlcore import _arrays
from rlcore._request import Blocking, Request
from rlcore._run.common import like, progress
from rlcore.boundary import is_noncirculant
from rlcore.deconvolver import GUARD_RELATIVE, Recipe
from rlcore.errors import DeviceOutOfMemoryError
from rlcore.strata import strata_ndim

__all__ = ["run", "run_devices", "retry_in_blocks", "block_plan", "plan_for", "whole_volume",
           "blocked_input"]

logger = logging.getLogger(__name__)

#: bytes read per slab when a whole-volume constant is computed from a sliceable source
_SLAB_BYTES = 64 << 20


def run(request: Request, image: Any, psf: Any) -> Any:
    """Deconvolve ``image`` in blocks on the request's backend."""
    be = request.select_backend(image)
    with be.activate():
        result, info = _run_blocked(be, request, image, psf)
    return request.answer(result, info)


def run_devices(request: Request, image: Any, psf: Any) -> Any:
    """Deconvolve ``image`` in blocks spread over several devices, one thread each."""
    bes = [request.select_backend(image, d) for d in request.device]
    if not bes:
        raise ValueError("device: an empty list; give one device or several")
    with bes[0].activate():
        result, info = _run_blocked(bes, request, image, psf)
    return request.answer(result, info)


def retry_in_blocks(be: Any, request: Request, image: Any, psf: Any) -> tuple[Any, Any]:
    """After an out-of-memory error: blocks for half the free memory, then smaller."""
    free = be.memory().free
    for fraction in (0.5, 0.25, 0.125, 0.0625, 0.03125):
        budget = int(free * fraction)
        retry = request.narrowed(blocking=Blocking(block_shape="auto",
                                                   overlap=request.blocking.overlap,
                                                   max_memory=budget))
        try:
            result, info = _run_blocked(be, retry, image, psf)
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


def blocked_input(image: Any, recipe: Recipe) -> tuple[Any, tuple[int, ...]]:
    """The image as a sliceable source and its shape; refuses what blocks cannot do.

    Raises
    ------
    ValueError
        ``init`` other than "image", or ``tol``, with blocks; ``"periodic"`` blocks of a
        depth-variant PSF.
    """
    init = recipe.settings.init
    if not (isinstance(init, str) and init == "image"):
        raise ValueError(f"init: blocked runs start from the image, got {init!r}")
    if recipe.psf_depths is not None and recipe.boundary == "periodic":
        raise ValueError("boundary: 'periodic' blocks wrap z around the volume, putting the "
                         "deepest planes beside the first with the first planes' PSF; with "
                         "psf_depths in blocks or on Dask use a padded boundary (the "
                         "default non-circulant-half)")
    if recipe.variant.tol is not None:
        raise ValueError("tol: not available with blocks (blocks would stop at different "
                         "iterations); use a fixed iteration count")
    if not hasattr(image, "shape") or not hasattr(image, "__getitem__"):
        image = np.asarray(image)
    return image, tuple(int(n) for n in image.shape)


def _run_blocked(bes: Any, request: Request, image: Any, psf: Any) -> tuple[Any, Any]:
    from rlcore.blocks import chunk_shape
    from rlcore.scheduler import run_blocked

    be = bes[0] if isinstance(bes, list) else bes
    recipe, blocking = request.recipe, request.blocking
    image, shape = blocked_input(image, recipe)
    recipe = replace(recipe, psf=replace(recipe, psf=psf).checked_psf(shape))
    chunks = (chunk_shape(image), chunk_shape(blocking.out))
    p = block_plan(shape, recipe, be, blocking, chunks)
    logger.info("deconvolve: blocks: %s", p)
    recipe = whole_volume(image, recipe)
    iterations = recipe.iterations
    with progress(request.progress, iterations * p.n_blocks, f"RL, {p.n_blocks} blocks",
                  request.callback) as step:
        result = run_blocked(bes, image, recipe, p, callback=step, out=blocking.out)
    info = request.info(iterations=iterations, converged=False, backend=be.name,
                        device=be.device, grid_shape=p.grid_shape, blocks=p)
    if blocking.out is None:  # CuPy in, CuPy out (array API likewise)
        result = like(result, image)
    return result, info


def block_plan(image_shape: tuple[int, ...], recipe: Recipe, backend: Any,
               blocking: Blocking, chunks: tuple = (None, None)) -> Any:
    """The :class:`rlcore.blocks.BlockPlan` of a blocked run (the one place it is made:
    runs, Dask and the CLI's ``--dry-run`` all come here).

    ``recipe.psf`` is the PSF cropped to the image; ``backend`` a backend object (its
    memory model, free memory and FFT lengths size the blocks); ``chunks`` the chunk
    shapes of a chunked source and of ``out`` (zarr), counted in the memory.

    Raises
    ------
    ValueError
        Bad block arguments, or ``max_memory`` too small for any block.
    """
    from rlcore import blocks
    from rlcore.deconvolver import memory_per_voxel

    block_shape = blocking.block_shape or "auto"  # grids sized as the runs size theirs
    return blocks.plan(tuple(image_shape), recipe.psf_extent(), block_shape=block_shape,
                       overlap=blocking.overlap, max_memory=blocking.max_memory,
                       boundary=recipe.boundary, iterations=recipe.iterations,
                       bytes_per_voxel=memory_per_voxel(backend, recipe.variant,
                                                        recipe.boundary, recipe.strata),
                       free_memory=backend.memory().free if block_shape == "auto" else None,
                       host=backend.on_host, fast_len=backend.fast_length, chunks=chunks)


def plan_for(request: Request, image: Any, psf: Any) -> tuple[Any, Any]:
    """The backend and the plan of blocks a blocked run of ``request`` would use on one
    frame of ``image`` (``iterations="auto"``: its ``max_iterations``): the CLI's
    ``--dry-run``."""
    request, psf = request.with_psf_resampled(psf)
    iterations = (request.max_iterations if isinstance(request.iterations, str)
                  else request.iterations)
    ndim = strata_ndim(psf) if request.psf_depths is not None else np.ndim(psf)
    shape = tuple(int(n) for n in image.shape)[-ndim:]
    request = request.narrowed(iterations=iterations)
    recipe = request.make_recipe(psf, len(shape))
    recipe = replace(recipe, psf=recipe.checked_psf(shape))
    be = request.select_backend(np.empty(0))
    return be, block_plan(shape, recipe, be, request.blocking)


def _pieces(image: Any):
    """Slices that cover a sliceable source with little memory each: its chunks (zarr:
    decoding a chunk-aligned piece holds no other chunk), else slabs along axis 0 of
    about ``_SLAB_BYTES``."""
    from rlcore.blocks import chunk_shape

    shape = tuple(int(n) for n in image.shape)
    chunks = chunk_shape(image)
    if not chunks:
        step = max(1, _SLAB_BYTES // max(1, int(np.prod(shape[1:])) * 4))
        chunks = (step,) + shape[1:]
    ranges = [range(0, n, c) for n, c in zip(shape, chunks)]
    for start in itertools.product(*ranges):
        yield tuple(slice(a, min(a + c, n)) for a, c, n in zip(start, chunks, shape))


def whole_volume(image: Any, recipe: Recipe) -> Recipe:
    """The constants every block of a run shares, computed from the whole volume in one
    pass whatever holds it (NumPy, CuPy, Dask, zarr, memmap, any sliceable array), so a
    blocked run matches an unblocked one: the division's guard (``GUARD_RELATIVE`` x the
    maximum) and, non-circulant, the first estimate outside the image (the mean)."""
    settings = recipe.settings
    need_guard = settings.guard is None
    need_mean = is_noncirculant(recipe.boundary) and settings.outside is None
    if not (need_guard or need_mean) or not int(np.prod(image.shape)):
        return recipe
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
        settings = replace(settings, guard=GUARD_RELATIVE * max(top, 0.0))
    if need_mean:
        settings = replace(settings, outside=total / int(np.prod(image.shape)))
    return replace(recipe, settings=settings)
