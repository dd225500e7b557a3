"""The public functions: :func:`deconvolve` and :func:`convolve` (signatures, conventions
and docstrings; each body builds one checked request and hands it to its route)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlcore import _arrays
from rlcore._request import Request
from rlcore._run.dispatch import run
from rlcore.autostop import AUTO_PADDED_PHASES, AUTO_PHASES
from rlcore.deconvolver import GUARD_RELATIVE, NONCIRCULANT_GUARD, Deconvolver, RunInfo
from rlcore.validate import as_image

__all__ = ["deconvolve", "convolve", "block_plan", "RunInfo", "AUTO_PHASES", "AUTO_PADDED_PHASES",
           "GUARD_RELATIVE", "NONCIRCULANT_GUARD"]


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
    request = Request.from_public(
        iterations, backend=backend, device=device, boundary=boundary, init=init,
        callback=callback, progress=progress, accelerate=accelerate,
        back_projector=back_projector, tv=tv, tol=tol, return_info=return_info,
        block_shape=block_shape, overlap=overlap, max_memory=max_memory, out=out,
        max_iterations=max_iterations, gain=gain, offset=offset, channel_axis=channel_axis)
    return run(request, image, psf)


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
    if _arrays.kind(image) == "dask":
        raise TypeError("image: convolve takes in-memory arrays; pass numpy.asarray(image) "
                        "or image.compute() (deconvolve takes dask arrays)")
    be = Request(0, backend=backend, device=device).select_backend(image)
    if isinstance(image, (str, bytes)) or not hasattr(image, "shape"):
        image = as_image(image, clip_negative=False)[0]  # array-likes converted, checked
    with Deconvolver(psf, tuple(image.shape), 0, backend=be, boundary=boundary) as model:
        return model.convolve(image, adjoint=adjoint)


def block_plan(image: Any, psf: Any, iterations: int | str = 10, **options: Any) -> Any:
    """The backend and the plan of blocks :func:`deconvolve` would use with the same
    arguments, without running (for one frame of a series; ``iterations="auto"`` counts
    ``max_iterations``): the CLI's ``--dry-run``, and any UI that shows the plan first.

    Parameters
    ----------
    image : array, shape ``(..., Z, Y, X)``
        Only its shape is read.
    psf : array
    iterations : int or "auto", default 10
    **options
        Any keyword of :func:`deconvolve`.

    Returns
    -------
    backend : Backend
        The backend the run would choose.
    plan : rlcore.blocks.BlockPlan
        Block cores, overlaps, grids and the memory per block (one block when nothing
        asks for blocks and the image fits).

    Raises
    ------
    TypeError, ValueError
        As :func:`deconvolve`; ``max_memory`` too small for any block.
    """
    from rlcore._run.blocked import plan_for

    return plan_for(Request.from_public(iterations, **options), image, psf)
