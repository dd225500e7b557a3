"""A Dask array in, a lazy Dask array out (the route ``"dask"``): ``map_overlap`` over
the blocks (:func:`rlcore.scheduler.run_dask`), on any Dask scheduler."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rlcore._request import Request
from rlcore._run.blocked import block_plan, blocked_input, whole_volume

__all__ = ["run"]


def run(request: Request, image: Any, psf: Any) -> Any:
    """The lazy result of ``request`` on the dask array ``image``."""
    from rlcore.registry import get_backend
    from rlcore.scheduler import run_dask

    recipe, blocking = request.recipe, request.blocking
    blocked_input(image, recipe)
    shape = tuple(int(n) for n in image.shape)
    recipe = replace(recipe, psf=replace(recipe, psf=psf).checked_psf(shape))
    be = get_backend(request.backend, device=request.device)  # the name checked here
    p = None
    if blocking.block_shape is not None or blocking.max_memory is not None:
        p = block_plan(shape, recipe, be, blocking)
    elif blocking.overlap != "auto":
        chunked = replace(blocking, block_shape=tuple(max(c) for c in image.chunks))
        p = block_plan(shape, recipe, be, chunked)
    recipe = whole_volume(image, recipe)
    # the workers make the backend chosen here (by name: each process makes its own)
    name = be.name if isinstance(request.backend, str) else be
    result = run_dask(image, recipe, p, backend=name, device=request.device,
                      callback=request.callback, progress=request.progress)
    info = request.info(iterations=recipe.iterations, converged=False, backend=be.name,
                        device=be.device,
                        grid_shape=p.grid_shape if p else tuple(max(c) for c in image.chunks),
                        blocks=p)
    return request.answer(result, info)
