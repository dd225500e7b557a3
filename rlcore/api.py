"""The public functions: :func:`deconvolve` and :func:`convolve` (signatures, conventions
and docstrings; each body builds one checked request and hands it to its route)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlcore import _arrays
from rlcore._request import Request
from rlcore._run.dispatch import run
from rlcore.autostop import AUTO_PADDED_PHASES, AUTO_PHASES
from rlcore.boundary import DEFAULT_BOUNDARY
from rlcore.deconvolver import GUARD_RELATIVE, NONCIRCULANT_GUARD, Deconvolver, RunInfo
from rlcore.validate import as_image

__all__ = ["deconvolve", "convolve", "block_plan", "RunInfo", "AUTO_PHASES",
           "AUTO_PADDED_PHASES", "GUARD_RELATIVE", "NONCIRCULANT_GUARD"]


def deconvolve(
    image: Any,
    psf: Any,
    iterations: int | str = 10,
    *,
    backend: str = "auto",
    boundary: str = DEFAULT_BOUNDARY,
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
    offset: float | str = 0.0,
    channel_axis: int | None = None,
    psf_depths: Any = None,
    psf_voxel_size: Any = None,
    voxel_size: Any = None,
) -> Any:
    """Richardson-Lucy deconvolution of a 2-D or 3-D image.

    Runs ``iterations`` updates of ``x <- x * H^T(image / H x)`` (Richardson 1972; Lucy
    1974), ``H`` the convolution by the PSF by real FFTs (the OTF computed once) and
    ``H^T`` its exact adjoint (correlation, the conjugate OTF).

    Parameters
    ----------
    image : array, shape ``(Z, Y, X)`` or ``(Y, X)``, or a series ``(..., Z, Y, X)``
        The measured image, real dtype. NumPy, array-likes, CuPy, any array-API library
        or Dask. Never modified; negative values are clipped to 0 with a warning. Axes
        beyond the PSF's are frames, each deconvolved as if alone, all with one plan.
    psf : array, or a sequence of arrays with ``channel_axis`` or ``psf_depths``
        Point spread function, real, non-negative. Normalised to sum 1 internally; its
        centre voxel is index ``n // 2`` on each axis (``scipy.signal.fftconvolve(mode=
        "same")`` for odd sizes; :func:`rlcore.psf.centered` moves a measured one there);
        zero-padded to the image, or centre-cropped with a warning.
    iterations : int or "auto", default 10
        RL updates (0 returns the first estimate), or "auto": the count is chosen from the
        data by a held-out split (:mod:`rlcore.autostop`), then run on the whole image
        (``callback`` and the progress bar count both runs); not with blocks, ``out`` or
        Dask.
    backend : str or backend object, default "auto"
        "auto" picks the fastest that works for this array (:func:`available_backends
        <rlcore.available_backends>`), or a name ("numpy", "cupy", "opencl", "array_api").
    boundary : {"non-circulant-half", "non-circulant", "periodic", "zero", "reflect"}
        How the image continues beyond its edges (:mod:`rlcore.boundary`): unknown and
        estimated from the measured voxels (Bertero & Boccacci 2005; "-half" on a grid
        padded by half the PSF, deconwolf's ``--bq 1``: the default of every face,
        :data:`rlcore.boundary.DEFAULT_BOUNDARY`), circular wrap ("periodic": the
        fastest, for objects that do not touch the edges), zero, or mirrored.
    init : {"image", "flat"}, float or array, default "image"
        First estimate: the image, its mean, a constant, or an array of its shape.
    callback : callable, optional
        ``callback(iteration, total)`` after every update (from 1; in blocks ``total =
        iterations x blocks``). An exception raised in it stops the run.
    progress : bool, default False
        Show a tqdm progress bar.
    device : object or list, optional
        The backend's device (numpy: threads; CuPy: GPU index; OpenCL: index or name). A
        list computes in blocks, one thread per device.
    accelerate : {"auto", False, True, "biggs-andrews", "momentum"}, default "auto"
        Vector extrapolation: Biggs & Andrews (1997) (``True``), or deconwolf's scaled
        heavy ball ("momentum", Wernersson et al. 2024). "auto": none (``iterations=
        "auto"``: its phases, :data:`rlcore.autostop.AUTO_PHASES`).
    back_projector : {"auto", "matched", "wiener-butterworth", "otf-masked"} or BackProjector
        The back projection's kernel: the exact adjoint (classic RL, what "auto" means
        for a fixed count), Wiener-Butterworth (Guo et al. 2020) or OTF-masked
        (PetaKit5D); parameters through :func:`rlcore.backprojector.check`.
    tv : float, default 0
        RLTV weight (Dey et al. 2006), in ``[0, 1 / (2 * ndim))``; 0 disables it.
    tol : float, optional
        Stop when an update changes the estimate by less than ``tol`` (relative L2, in
        (0, 1)).
    return_info : bool, default False
        Also return a :class:`rlcore.RunInfo`.
    block_shape : None, "auto" or tuple of int, default None
        Compute in blocks (:mod:`rlcore.blocks`) with these cores, voxels ``(Z, Y, X)``, or
        sized from ``max_memory`` or the free memory ("auto"). None: one block, retried in
        blocks when the device runs out of memory; a dask array keeps its chunks.
    overlap : "auto", int or tuple of int, default "auto"
        Halo of each block, voxels per side (:func:`rlcore.blocks.auto_overlap`).
    max_memory : int, optional
        Bytes one block's run may use (implies blocks).
    out : array, optional
        Write the result into it core by core (float32 NumPy, memmap or zarr of the
        image's shape; implies blocks, so ``image`` may be any sliceable array); returned.
        A zarr or h5py ``out`` carries ``rlcore_complete``, False until every block is in.
    max_iterations : int, default 200
        ``iterations="auto"``: the most updates it may run.
    gain : float, optional
        ``iterations="auto"``: camera gain, image units per photon (default: fitted, or
        photon counts when the data look like counts).
    offset : float or "auto", default 0
        The image's zero level (camera offset, background), image units, subtracted
        first (values below it become 0); "auto": estimated from the image
        (:func:`rlcore.background.estimate`; :attr:`RunInfo.offset` says the value).
        ``iterations="auto"`` splits the data as recorded and removes it from both.
    channel_axis : int, optional
        The axis of ``image`` that holds channels; ``psf`` is then one PSF per channel or
        one for all (with ``psf_depths``: one stack for all).
    psf_depths : sequence of float, optional
        A depth-variant PSF (the strata model of Preza & Conchello 2004): ``psf`` is then
        K >= 2 PSFs of one shape (a sequence, or a ``(K, Z, Y, X)`` array) and
        ``psf_depths`` their K depths, strictly increasing, in voxels along the image's
        first axis (z; plane 0 is depth 0, fractions and depths beyond the image allowed).
        ``H x = sum_k h_k * (w_k x)``, ``w_k`` linear between neighbouring depths and
        constant beyond the first and last; ``H^T`` its exact adjoint. Every backend and
        boundary, acceleration and ``tv``; the matched back projector only; blocks in this
        process and on Dask (``block_shape``, ``max_memory``, ``out``, Dask arrays; each
        block's plan holds only the strata that weigh on its planes; not
        ``"periodic"``); ``iterations="auto"`` (the held-out loss of the strata forward
        model, matched with momentum: :mod:`rlcore.autostop_strata`); a list of devices
        (the blocks spread over them, each block's plan at its planes' depths). Frames
        and ``channel_axis`` share the one stack. Padding planes weigh as the image's edge
        plane nearest to them around the grid. One update
        costs ``2 K + 2`` FFTs instead of 4; see docs/depth-variant.md.
    psf_voxel_size, voxel_size : sequence of float, optional
        The PSF's and the image's voxel sizes, microns per PSF axis (``(z, y, x)``), both
        or neither: when they differ the PSF (each PSF of a sequence or a depth stack) is
        first resampled to the image's by :func:`rlcore.psf.resample` (its sum and its
        centre voxel kept; :attr:`RunInfo.psf_resampled` says so). Neither: the PSF is
        taken as sampled at the image's voxel size.

    Returns
    -------
    array, float32, shape ``image.shape``
        The estimate, of the input's kind (NumPy for NumPy and array-likes, the same
        array-API library, a lazy ``dask.array`` for Dask unless ``out`` is given).
        Never NaN or infinite.
    info : RunInfo
        With ``return_info=True``: ``(result, info)``.

    Raises
    ------
    TypeError
        Complex, boolean, object or string dtypes; an argument of the wrong type
        (``iterations``, ``callback``, ``block_shape``, ``overlap``, ``accelerate``,
        ``back_projector``, ``max_iterations``, ``gain``, ``offset``, ``channel_axis``,
        ``psf_depths``).
    ValueError
        Empty arrays, NaN or inf; a PSF with more axes than the image or a sum <= 0; a
        value out of range or unknown (``iterations``, ``boundary``, ``init``,
        ``backend``, ``back_projector``, ``accelerate``, ``tv``, ``tol``, ``channel_axis``,
        the PSF count); ``tol`` or an ``init`` other than "image" with blocks;
        ``max_memory`` too small for any block; "auto" with blocks, ``out`` or Dask;
        ``psf_depths`` not K >= 2 finite increasing depths, the PSFs not one per depth of
        one shape, or with periodic blocks or an
        unmatched back projector; one of ``psf_voxel_size`` and ``voxel_size`` without
        the other, or not one positive number per PSF axis.
    rlcore.errors.DeviceOutOfMemoryError
        Out of memory even in the smallest blocks.
    rlcore.errors.BackendUnavailableError
        The named backend cannot run here.
    rlcore.errors.NumericalError
        The result would not be finite (extreme data).

    Notes
    -----
    The division is guarded: the ratio ``image / (H x)`` is 0 wherever ``H x <= 1e-6 *
    max(image)`` (:data:`GUARD_RELATIVE`), so every value stays finite and the result
    scales exactly with the image. With ``boundary="periodic"`` the estimate keeps the
    image's total flux after every update.

    Measured trade-offs (the bench results hold the numbers and the commands): how many
    iterations and what ``iterations="auto"`` gains, bench/results/iterations.md; the
    boundary modes' errors and costs, bench/results/variants.md and
    bench/results/boundaries-half.md; acceleration and the back projectors,
    bench/results/variants.md; block seams, bench/results/blocks.md.

    References
    ----------
    W. H. Richardson, JOSA 62 (1972) 55-59. L. B. Lucy, AJ 79 (1974) 745. M. Bertero,
    P. Boccacci, A&A 437 (2005) 369-374, eq. (4). D. S. C. Biggs, M. Andrews, Appl. Opt.
    36 (1997) 1766. N. Dey et al., Microsc. Res. Tech. 69 (2006) 260. M. Guo et al., Nat.
    Biotechnol. 38 (2020) 1337. C. Preza, J.-A. Conchello, JOSA A 21 (2004) 1593-1601.

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
        max_iterations=max_iterations, gain=gain, offset=offset, channel_axis=channel_axis,
        psf_depths=psf_depths, psf_voxel_size=psf_voxel_size, voxel_size=voxel_size)
    return run(request, image, psf)


def convolve(
    image: Any,
    psf: Any,
    *,
    adjoint: bool = False,
    boundary: str = "periodic",
    backend: str = "auto",
    device: Any = None,
    psf_depths: Any = None,
    psf_voxel_size: Any = None,
    voxel_size: Any = None,
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
    psf_depths : sequence of float, optional
        A depth-variant PSF, as in :func:`deconvolve`: ``psf`` is K PSFs at these depths
        (voxels along z) and ``H x = sum_k h_k * (w_k x)``, ``H^T`` its exact adjoint.
    psf_voxel_size, voxel_size : sequence of float, optional
        As in :func:`deconvolve`: the PSF resampled from the one to the other first.

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
    request, psf = Request.from_public(
        0, backend=backend, device=device, psf_depths=psf_depths,
        psf_voxel_size=psf_voxel_size, voxel_size=voxel_size).with_psf_resampled(psf)
    be = request.select_backend(image)
    if isinstance(image, (str, bytes)) or not hasattr(image, "shape"):
        image = as_image(image, clip_negative=False)[0]  # array-likes converted, checked
    with Deconvolver(psf, tuple(image.shape), 0, backend=be, boundary=boundary,
                     psf_depths=psf_depths) as model:
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
