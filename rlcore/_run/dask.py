"""A Dask array in, a lazy Dask array out (the route ``"dask"``): ``map_overlap`` over
the blocks (:func:`rlcore.scheduler.run_dask`), on any Dask scheduler."""

from __future__ import annotations

from typing import Any

from rlcore._request import Request
from rlcore._run.blocked import block_plan, blocked_input, whole_volume
from rlcore.validate import as_psf

__all__ = ["run"]


def run(request: Request, image: Any, psf: Any) -> Any:
    """The lazy result of ``request`` on the dask array ``image``."""
    from rlcore.registry import get_backend
    from rlcore.scheduler import run_dask

    options, iterations, blocking = request.run_options, request.iterations, request.blocking
    blocked_input(image, request.init, options)
    shape = tuple(int(n) for n in image.shape)
    h = as_psf(psf, shape)
    be = get_backend(request.backend, device=request.device)  # the name checked here
    p = None
    if blocking.block_shape is not None or blocking.max_memory is not None:
        p = block_plan(shape, h.shape, iterations, be, options=options,
                       block_shape=blocking.block_shape, overlap=blocking.overlap,
                       max_memory=blocking.max_memory)
    elif blocking.overlap != "auto":
        p = block_plan(shape, h.shape, iterations, be, options=options,
                       block_shape=tuple(max(c) for c in image.chunks),
                       overlap=blocking.overlap)
    options = whole_volume(image, options)
    result = run_dask(image, h, iterations, p, backend=request.backend,
                      device=request.device, options=options, callback=request.callback,
                      progress=request.progress)
    info = request.info(iterations=iterations, converged=False, backend=request.backend,
                        device=str(request.device), boundary=options.boundary,
                        grid_shape=p.grid_shape if p else tuple(max(c) for c in image.chunks),
                        blocks=p)
    return request.answer(result, info)
