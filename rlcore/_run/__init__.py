"""The runners: one small module per route of :meth:`rlcore._request.Request.route`.

Each runner is ``run(request, image, psf) -> result`` (or ``(result, info)`` with
``request.return_info``); :func:`rlcore._run.dispatch.run` decides the route once and
calls it. Channels and frames hand each part back to it, with a narrowed request.
"""
