"""The runners: one small module per route of :meth:`rlcore._request.Request.route`.

Each runner is ``run(request, image, psf) -> result`` (or ``(result, info)`` with
``request.return_info``); :func:`run` decides the route once and calls it. Channels and
frames call :func:`run` again for each part, with a narrowed request.
"""

from __future__ import annotations

from typing import Any

from rlcore._request import Request

__all__ = ["run"]


def run(request: Request, image: Any, psf: Any) -> Any:
    """Run ``request`` on ``image`` with ``psf`` by the route it takes."""
    from rlcore._request import image_ndim, resolve_fixed
    from rlcore._run import auto, blocked, dask, series, whole
    from rlcore._run.common import subtract_offset

    route = request.route(image, psf)
    if route == "channels":
        return series.run_channels(request, image, psf)
    if route == "frames":
        return series.run_frames(request, image, psf)
    if route == "auto":
        return auto.run(request, image, psf)
    iterations = request.checked_iterations()  # a fixed count from here on
    resolve_fixed(request.accelerate, request.back_projector)
    if request.offset:  # removed once, before any block
        image = subtract_offset(image, request.offset)
    request = request.narrowed(iterations=iterations,
                               recipe=request.make_recipe(psf, image_ndim(image)))
    runner = {"dask": dask.run, "devices": blocked.run_devices, "blocked": blocked.run,
              "whole": whole.run}[route]
    return runner(request, image, psf)
