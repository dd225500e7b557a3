"""A PSF brought to another voxel size (the public face of :mod:`rlcore._resample`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def resample(
    psf: np.ndarray,
    from_voxel_size: Sequence[float],
    to_voxel_size: Sequence[float],
    *,
    shape: Sequence[int] | None = None,
    average: Sequence[int] | None = None,
) -> np.ndarray:
    """The PSF resampled from its voxel size to another (the image's).

    Each axis is resampled on its own (the interpolation is separable) by the quintic
    spline through the PSF's voxels (:func:`scipy.ndimage.map_coordinates`, order
    :data:`rlcore._resample.SPLINE_ORDER`, prefiltered; beyond the PSF's faces its edge
    values continue). The PSF's voxel ``n // 2`` lands on the output's voxel ``m // 2``
    on every axis, so a PSF centred by rlcore's convention (:func:`centered`) stays
    centred. An axis made finer is sampled at the new positions. An axis made coarser is
    sampled too when it is a focus axis (z: each plane of a stack is the PSF at one focus
    position), and averaged when it is a camera axis (``average``, by default Y and X:
    a pixel integrates the light over its area, so a pixel of width ``b`` is one of
    width ``a`` averaged over a further ``sqrt(b**2 - a**2)``). That choice is measured:
    psfmodels' PSFs (pixel-integrated in Y and X, point samples in z) generated at 0.1 um
    and coarsened to 0.3 um in z are matched exactly by sampling (relative L2 0.0000)
    and to 5.4% by averaging over the new voxel; coarsened from 0.065 to 0.1 um in Y and
    X, to 0.4% by this average and to 3.5% by sampling (bench/results/psf-resample.md).
    Negative values, the spline's ringing around a sharp peak, are clipped to 0; the
    result is then scaled to the input's sum.

    Parameters
    ----------
    psf : ndarray, shape ``(Z, Y, X)`` or ``(Y, X)``
        The PSF, real, finite, with a positive sum; its centre on voxel ``n // 2``. Not
        modified.
    from_voxel_size : sequence of float
        The PSF's voxel size, microns per axis: ``(z, y, x)``, or ``(y, x)`` for 2-D.
    to_voxel_size : sequence of float
        The voxel size to resample to (the image's), microns per axis, as
        ``from_voxel_size``.
    shape : tuple of int, optional
        Output shape in voxels, its centre on voxel ``m // 2``. Default: on each axis the
        odd length ``m`` with ``(m - 1) * to`` nearest ``(n - 1) * from`` (the same
        physical extent); an axis whose voxel size does not change keeps its length and
        its values.
    average : sequence of int, optional
        The axes that are pixel integrals, averaged when made coarser (default: the last
        two, Y and X); ``()`` samples every axis.

    Returns
    -------
    ndarray, float32, ``shape``
        The resampled PSF: >= 0, no NaN, its sum the input's, a new array (also when the
        voxel sizes are equal: then the input's values as float32).

    Raises
    ------
    TypeError
        ``psf`` not a real numeric array.
    ValueError
        ``psf`` not 2-D or 3-D, empty, with NaN/inf or a sum <= 0; a voxel size not one
        positive, finite number per axis; ``shape`` or ``average`` not of the PSF's
        axes.

    Notes
    -----
    Measured against psfmodels' widefield PSFs generated at the target voxel size
    (NA 1.4 oil, 0.52 um; bench/results/psf-resample.md): z from 0.1 to 0.3 um, 0.0000
    relative L2; xy from 0.065 to 0.1 um, 0.004; z from 0.3 to 0.1 um, 0.025 (0.3 um
    is coarser than this objective's axial Nyquist step, 0.28 um, so the finer PSF is
    not in the coarse samples; at NA 1.2 in water 0.002). The centres of the
    resampled and the generated PSF agree within 0.001 voxel.

    References
    ----------
    - M. Unser, "Splines: a perfect fit for signal and image processing", IEEE Signal
      Processing Magazine 16 (1999) 22-38 (the B-spline interpolation of scipy.ndimage).
    - S. F. Gibson, F. Lanni, JOSA A 8 (1991) 1601 (the model of the measurements).

    Examples
    --------
    A PSF of a bead stack taken at 0.1 um z-steps, for an image at 0.3 um:

    >>> import numpy as np, rlcore
    >>> psf = rlcore.psf.gaussian((31, 15, 15), (6.0, 1.5, 1.5))
    >>> coarse = rlcore.psf.resample(psf, (0.1, 0.1, 0.1), (0.3, 0.1, 0.1))
    >>> coarse.shape, coarse.dtype
    ((11, 15, 15), dtype('float32'))
    >>> round(float(coarse.sum()), 4)
    1.0
    >>> [round(c, 3) for c in rlcore.psf.center_of(coarse)]
    [5.0, 7.0, 7.0]
    """
    from rlcore._resample import resample as _resample

    return _resample(psf, from_voxel_size, to_voxel_size, shape=shape, average=average)
