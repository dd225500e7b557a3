"""The dispatch: the route of a request decided once, its runner called."""


from __future__ import annotations

from typing import Any

from rlcore._request import Request

__all__ = ["run"]


def run(request: Request, image: Any, psf: Any) -> Any:
    """Run ``request`` on ``image`` with ``psf`` by the route it takes."""
    from rlcore._request import image_ndim, is_auto, resolve_fixed
    from rlcore._run import auto, blocked, dask, series, whole
    from rlcore._run.common import subtract_offset
    from rlcore.validate import as_image

    request, psf = request.with_psf_resampled(psf)  # psf_voxel_size= and voxel_size=
    if is_auto(request.offset):  # estimated once, from the whole image (every frame's)
        from rlcore.background import estimate

        if isinstance(image, (str, bytes)) or not hasattr(image, "shape"):
            image = as_image(image, clip_negative=False)[0]
        request = request.narrowed(offset=estimate(image))
    route = request.route(image, psf)
    if route == "channels":  # each part runs through run() again
        return series.run_channels(request, image, psf, run)
    if route == "frames":
        return series.run_frames(request, image, psf, run)
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
