"""The whole image in one run (the route ``"whole"``): one :class:`rlcore.Deconvolver`,
used once; retried in blocks when the device runs out of memory."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from rlcore._request import Request
from rlcore._run.common import progress
from rlcore.errors import DeviceOutOfMemoryError
from rlcore.validate import as_image

__all__ = ["run"]

logger = logging.getLogger(__name__)


def run(request: Request, image: Any, psf: Any) -> Any:
    """Deconvolve ``image`` unblocked on the request's backend."""
    from rlcore._run import blocked

    be = request.select_backend(image)
    with be.activate():
        try:
            result, info = _run_on(be, request, image, psf)
        except DeviceOutOfMemoryError as exc:
            logger.warning("deconvolve: out of memory unblocked on %s (%s); retrying in "
                           "blocks", be.device, exc)
            result, info = blocked.retry_in_blocks(be, request, image, psf)
    return request.answer(result, replace(info, offset=float(request.offset or 0.0),
                                                psf_resampled=request.psf_resampled))


def _run_on(be: Any, request: Request, image: Any, psf: Any) -> tuple[Any, Any]:
    """One unblocked run on backend ``be`` through a :class:`rlcore.Deconvolver`."""
    if isinstance(image, (str, bytes)) or not hasattr(image, "shape"):
        image = as_image(image)[0]  # array-likes converted (and checked) once
    shape = tuple(int(n) for n in image.shape)
    if not shape or 0 in shape:
        as_image(image)  # raises, naming the image
    recipe = request.recipe
    deconvolver = recipe.deconvolver(shape, be)
    with progress(request.progress, request.iterations, "Richardson-Lucy",
                  request.callback) as step:
        return recipe.run(deconvolver, image, callback=step, return_info=True, release=True)
