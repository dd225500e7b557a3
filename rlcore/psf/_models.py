"""Generated PSFs: a Gaussian, and theoretical widefield and confocal PSFs (one, or a
stack at several depths) through psfmodels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rlcore.psf._centring import center
from rlcore.psf._common import _shape, normalize


def gaussian(shape: Sequence[int], sigma: float | Sequence[float]) -> np.ndarray:
    """A sampled Gaussian PSF, centre voxel ``n // 2``, sum 1.

    Parameters
    ----------
    shape : tuple of int
        Output shape in voxels, e.g. ``(Z, Y, X)``.
    sigma : float or tuple of float
        Standard deviation per axis, in voxels (> 0).

    Returns
    -------
    ndarray, float32, ``shape``

    Raises
    ------
    ValueError
        Non-positive shape or sigma, or a sigma count other than 1 or one per axis.
    """
    shape = _shape(shape)
    given = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    if given.ndim != 1 or given.size not in (1, len(shape)):
        raise ValueError(f"sigma: give one value or one per axis ({len(shape)}), got "
                         f"{given.size}: {given.tolist()}")
    sig = np.broadcast_to(given, (len(shape),))
    if not (np.isfinite(sig).all() and (sig > 0).all()):
        raise ValueError(f"sigma: must be positive, got {sigma}")
    g = np.ones((), np.float64)
    for axis, (n, s) in enumerate(zip(shape, sig)):
        profile = np.exp(-0.5 * ((np.arange(n) - n // 2) / s) ** 2)
        g = np.multiply.outer(g, profile) if axis else profile
    return normalize(g)


def _optics(na: float, wavelength: float, ni: float, voxel_size: Sequence[float]) -> None:
    if not 0 < na < ni:
        raise ValueError(f"na: must be in (0, ni={ni}), got {na}")
    if not 0.1 < wavelength < 2:
        raise ValueError(f"wavelength: in microns, expected 0.1..2, got {wavelength}")
    if len(voxel_size) != 3 or min(voxel_size) <= 0:
        raise ValueError(f"voxel_size: (z, y, x) in microns, positive, got {voxel_size}")


def widefield(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    *,
    na: float,
    wavelength: float,
    ni: float = 1.515,
    ns: float | None = None,
    model: str = "vectorial",
) -> np.ndarray:
    """Theoretical widefield PSF (Gibson-Lanni / vectorial model, through ``psfmodels``).

    Parameters
    ----------
    shape : (Z, Y, X)
        Output shape in voxels; Y and X must be equal and odd-sized shapes are preferred.
    voxel_size : (z, y, x)
        Voxel size in microns (y must equal x).
    na : float
        Numerical aperture.
    wavelength : float
        Emission wavelength in microns.
    ni : float, default 1.515
        Refractive index of the immersion medium.
    ns : float, optional
        Refractive index of the sample (default: ``ni``, no spherical aberration).
    model : {"vectorial", "scalar", "gaussian"}
        psfmodels' model (Aguet et al. 2009 vectorial; Gibson & Lanni scalar).

    Returns
    -------
    ndarray, float32, ``shape``: centre voxel ``n // 2``, sum 1.

    Raises
    ------
    ImportError
        psfmodels is not installed (``pip install 'rlcore[psf]'``).
    ValueError
        Inconsistent shape, voxel size or optics.
    """
    psfmodels = _psfmodels()
    shape = _shape(shape)
    _optics(na, wavelength, ni, voxel_size)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"shape: (Z, Y, X) with Y == X expected, got {shape}")
    if abs(voxel_size[1] - voxel_size[2]) > 1e-9:
        raise ValueError(f"voxel_size: y and x must be equal, got {voxel_size}")
    psf = psfmodels.make_psf(shape[0], shape[1], dxy=voxel_size[2], dz=voxel_size[0],
                             NA=na, wvl=wavelength, ni=ni, ni0=ni, ns=ns or ni, model=model)
    return center(normalize(psf))


def confocal(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    *,
    na: float,
    excitation: float,
    emission: float,
    ni: float = 1.515,
    ns: float | None = None,
    pinhole_au: float = 1.0,
) -> np.ndarray:
    """Theoretical confocal PSF (excitation x pinhole-filtered emission, ``psfmodels``).

    Parameters are those of :func:`widefield`, with excitation and emission wavelengths in
    microns and the pinhole diameter in Airy units.

    Returns
    -------
    ndarray, float32, ``shape``: centre voxel ``n // 2``, sum 1.

    Raises
    ------
    ImportError, ValueError
        As :func:`widefield`.
    """
    psfmodels = _psfmodels()
    shape = _shape(shape)
    _optics(na, emission, ni, voxel_size)
    psf = psfmodels.confocal_psf(shape[0], shape[1], dxy=voxel_size[2], dz=voxel_size[0],
                                 NA=na, ex_wvl=excitation, em_wvl=emission, ni=ni, ni0=ni,
                                 ns=ns or ni, pinhole_au=pinhole_au)
    return center(normalize(psf))


def widefield_depths(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    depths: Sequence[float],
    *,
    centered: bool = False,
    **optics: Any,
) -> np.ndarray:
    """Theoretical widefield PSFs of point sources at several depths below the coverslip:
    the strata of a depth-variant PSF (:func:`rlcore.deconvolve`'s ``psf_depths``).

    The Gibson & Lanni (1989) model as psfmodels implements it (Li, Xue & Blu 2017; the
    vectorial extension of Aguet et al. 2009): the optical path difference of a source at
    depth ``pz`` in a sample of refractive index ``ns`` seen through immersion ``ni``
    (psfmodels' particle position ``pz`` and ``ns``); the objective is used as designed
    otherwise (coverslip and working distance at psfmodels' defaults). Wherever
    ``ns != ni`` the PSF changes with depth: spherical aberration and a focal shift.

    Parameters
    ----------
    shape : (Z, Y, X)
        Shape of each PSF in voxels, Y == X, both odd (the source on voxel ``n // 2``).
    voxel_size : (z, y, x)
        Voxel size in microns (y == x); z is the focus step.
    depths : sequence of float
        Depths of the sources below the coverslip, microns (psfmodels' ``pz``), >= 0.
    centered : bool, default False
        False: each PSF's voxel ``n // 2`` is the source's own depth, so the focal shift
        stays in the PSFs and the estimate is in the sample's depths (the image's z axis
        is the focus position, psfmodels' ``zv``). True: each PSF's peak moved onto
        voxel ``n // 2`` (:func:`center`), as a measured bead PSF would be centred: the
        focal shift is then left out of the model (the estimate keeps the image's
        apparent depths).
    **optics
        The optics, keywords of :func:`widefield`: ``na`` and ``wavelength`` (microns),
        ``ns`` (the sample's refractive index: water 1.33, vitreous ice 1.31, tissue
        ~1.36-1.4), all three required; ``ni`` (default 1.515) and ``model`` (default
        ``"vectorial"``; ``"scalar"``: Gibson & Lanni's scalar model).

    Returns
    -------
    ndarray, float32, ``(K, Z, Y, X)``
        One PSF per depth, each summing to 1. Pass it with ``psf_depths`` = the depths in
        voxels of the image's z axis: ``(depths - z0) / voxel_size[0]``, ``z0`` the depth
        of the image's first plane.

    Raises
    ------
    ImportError
        psfmodels is not installed (``pip install 'rlcore[psf]'``).
    TypeError
        An optics keyword missing or unknown.
    ValueError
        Inconsistent shape, voxel size, optics or depths.

    References
    ----------
    - S. F. Gibson, F. Lanni, JOSA A 8 (1991) 1601 (and JOSA A 6 (1989) 1357).
    - J. Li, F. Xue, T. Blu, JOSA A 34 (2017) 1029.
    - F. Aguet et al., Opt. Express 17 (2009) 6829.
    - C. Preza, J.-A. Conchello, JOSA A 21 (2004) 1593 (the strata model the stack is
      for).

    Examples
    --------
    >>> import numpy as np, rlcore
    >>> depths = np.array([0.0, 10.0, 20.0])  # microns below the coverslip
    >>> psfs = rlcore.psf.widefield_depths((9, 15, 15), (0.5, 0.2, 0.2), depths, na=1.2,
    ...                                    wavelength=0.6, ns=1.33, model="scalar")
    >>> psfs.shape, psfs.dtype
    ((3, 9, 15, 15), dtype('float32'))
    """
    psfmodels = _psfmodels()
    o = _optics_keywords(optics, ("na", "wavelength", "ns"), {"ni": 1.515,
                                                               "model": "vectorial"})
    shape, pz = _depth_args(shape, voxel_size, depths, o, o["wavelength"])

    def one(z):
        return psfmodels.make_psf(z, shape[1], dxy=voxel_size[2], pz=z[len(z) // 2],
                                  NA=o["na"], wvl=o["wavelength"], ni=o["ni"], ni0=o["ni"],
                                  ns=o["ns"], model=o["model"])

    return _depth_stack(one, shape, voxel_size, pz, centered)


def confocal_depths(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    depths: Sequence[float],
    *,
    centered: bool = False,
    **optics: Any,
) -> np.ndarray:
    """Theoretical confocal PSFs at several depths below the coverslip (excitation x
    pinhole-filtered emission, each the Gibson & Lanni model as psfmodels implements it):
    :func:`widefield_depths` for a confocal.

    ``optics`` are the keywords of :func:`confocal`: ``na``, ``excitation``, ``emission``
    (microns) and ``ns``, required; ``ni`` (default 1.515) and ``pinhole_au`` (default 1).

    Returns
    -------
    ndarray, float32, ``(K, Z, Y, X)``: one PSF per depth, each summing to 1.

    Raises
    ------
    ImportError, TypeError, ValueError
        As :func:`widefield_depths`.
    """
    psfmodels = _psfmodels()
    o = _optics_keywords(optics, ("na", "excitation", "emission", "ns"),
                         {"ni": 1.515, "pinhole_au": 1.0})
    shape, pz = _depth_args(shape, voxel_size, depths, o, o["emission"])

    def one(z):
        return psfmodels.confocal_psf(z, shape[1], dxy=voxel_size[2], pz=z[len(z) // 2],
                                      NA=o["na"], ex_wvl=o["excitation"],
                                      em_wvl=o["emission"], ni=o["ni"], ni0=o["ni"],
                                      ns=o["ns"], pinhole_au=o["pinhole_au"])

    return _depth_stack(one, shape, voxel_size, pz, centered)


def _optics_keywords(optics: dict, required: tuple, defaults: dict) -> dict:
    """The optics keywords of :func:`widefield_depths` / :func:`confocal_depths`, with
    their defaults.

    Raises
    ------
    TypeError
        A required keyword missing, or an unknown one.
    """
    missing = [k for k in required if k not in optics]
    unknown = sorted(set(optics) - set(required) - set(defaults))
    if missing or unknown:
        raise TypeError(f"optics: {'missing ' + ', '.join(missing) if missing else ''}"
                        f"{'; ' if missing and unknown else ''}"
                        f"{'unknown ' + ', '.join(unknown) if unknown else ''}; the optics "
                        f"are {', '.join(required)} (required) and {', '.join(defaults)}")
    return {**defaults, **optics}


def _depth_args(shape, voxel_size, depths, optics, wavelength):
    """The checked shape and depths of :func:`widefield_depths` and
    :func:`confocal_depths`."""
    shape = _shape(shape)
    _optics(optics["na"], wavelength, optics["ni"], voxel_size)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] % 2 == 0:
        raise ValueError(f"shape: (Z, Y, X) with Y == X, odd, expected, got {shape}")
    if abs(voxel_size[1] - voxel_size[2]) > 1e-9:
        raise ValueError(f"voxel_size: y and x must be equal, got {voxel_size}")
    if not 1.0 <= optics["ns"] <= 2.0:
        raise ValueError(f"ns: the sample's refractive index, 1..2, got {optics['ns']}")
    pz = np.asarray(depths, dtype=np.float64)
    if pz.ndim != 1 or len(pz) < 1 or not np.all(np.isfinite(pz)) or np.any(pz < 0):
        raise ValueError(f"depths: a sequence of depths below the coverslip, microns, >= 0, "
                         f"got {depths!r}")
    return shape, pz


def _depth_stack(one, shape, voxel_size, pz, centered):
    """``one(zv)`` (psfmodels at the focus positions ``zv``, the source at the middle
    one) for each depth, normalised (and centred), stacked as float32."""
    offsets = (np.arange(shape[0]) - shape[0] // 2) * float(voxel_size[0])
    out = []
    for z in pz:
        p = normalize(np.asarray(one(z + offsets), np.float64))
        out.append(center(p) if centered else p)
    return np.stack(out).astype(np.float32)


def _psfmodels() -> Any:
    try:
        import psfmodels
    except ImportError as exc:
        raise ImportError("theoretical PSFs need psfmodels: pip install 'rlcore[psf]'") from exc
    return psfmodels
