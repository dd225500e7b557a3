"""Grids per boundary mode, and the PSF placed on a grid.

RL runs with circular (FFT) convolutions on a *grid*. The boundary mode decides the grid
and what the image and first estimate hold outside the image region:

``"periodic"``
    grid = image shape; the object wraps around (as RedLionfish, and as cudaDecon without
    padding). Cheapest; ringing where opposite edges differ.
``"zero"``
    grid >= image + PSF - 1 on each axis (rounded up to a fast FFT length); image, estimate
    and so the object are zero outside the image region. This is linear convolution with
    zero padding: ``H x`` equals ``scipy.signal.fftconvolve(x, psf, mode="same")`` on the
    image for odd PSF sizes, and scikit-image's ``richardson_lucy`` model.
``"reflect"``
    the same larger grid, filled by mirroring the image about its edges (half-sample
    symmetric, as ``numpy.pad(mode="symmetric")``); both the data and the first estimate
    are extended, and the result is the image region.
``"non-circulant"``
    Bertero & Boccacci (2005): the object lives on the same larger grid (the image in its
    middle), so light from beyond the field of view is modelled; the data term uses the
    measured voxels only (the data is zero outside them and the ratio there is 0), and
    every update is normalised by ``H^T M``, ``M`` the measured-voxel mask. The first
    estimate outside the image is the image's mean.
``"non-circulant-half"``
    the same model on a grid of image + (P + 1) / 2 per axis instead of image + P - 1
    (deconwolf's ``--bq 1``): the PSF's reach from either face of the image still lands
    outside the image, but the voxels beyond the two opposite faces are shared (the grid
    wraps through them), so objects beyond both faces are modelled by one band. Smaller
    grid, less memory and time; its error is in ``bench/results/boundaries-half.md``.

PSF placement convention: the PSF's centre voxel is index ``n // 2`` on each axis of the
PSF array; it is moved to grid index 0 (wrapping), so a PSF that is a single 1 at
``n // 2`` is the identity operator for every size, odd or even. For odd sizes this is the
centring of ``scipy.signal.fftconvolve(mode="same")``; for even sizes SciPy's "same" mode
centres at ``(n - 1) // 2`` instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

__all__ = ["BOUNDARIES", "DEFAULT_BOUNDARY", "FACE_BOUNDARY", "GRID_TAIL", "Grid", "make_grid",
           "place_psf", "psf_extent", "is_noncirculant", "mean64"]

BOUNDARIES = ("periodic", "zero", "reflect", "non-circulant", "non-circulant-half")

#: The default boundary of every face: the Python API, :class:`rlcore.Deconvolver`, the
#: CLI, ``batch``, napari and the RedLionfish compat (the scikit-image drop-in keeps
#: scikit-image's "zero"). Microscope data has objects cut by the field of view, where
#: the periodic wrap moves and rings what lies near a face; "periodic" is the fast
#: choice where nothing touches the edges (bench/results/boundaries-half.md,
#: bench/results/redlionfish.md: bead positions near the faces).
DEFAULT_BOUNDARY = "non-circulant-half"
#: the faces' boundary: the same as every other default (kept for callers of this name)
FACE_BOUNDARY = DEFAULT_BOUNDARY


def is_noncirculant(mode: str) -> bool:
    """The non-circulant model (Bertero & Boccacci 2005), on a full or half extension."""
    return mode.startswith("non-circulant")


@dataclass(frozen=True)
class Grid:
    """Where the image sits on the FFT grid.

    Attributes
    ----------
    mode : str
        Boundary mode (one of :data:`BOUNDARIES`).
    image_shape, shape : tuple of int
        Image shape and grid shape, in voxels, ``(Z, Y, X)`` order.
    offset : tuple of int
        Grid index of the image's first voxel.
    """

    mode: str
    image_shape: tuple[int, ...]
    shape: tuple[int, ...]
    offset: tuple[int, ...]

    @property
    def region(self) -> tuple[slice, ...]:
        """Index of the image region on the grid (works for any array kind)."""
        return tuple(slice(o, o + n) for o, n in zip(self.offset, self.image_shape))

    @property
    def padded(self) -> bool:
        return self.shape != self.image_shape

    def embed(self, image: Any, *, estimate: bool = False, xp: Any = np,
              fill: float | None = None) -> Any:
        """An image-shaped float32 array on the grid, in the namespace ``xp`` of ``image``
        (so a GPU array stays on its device): itself (periodic), zero-padded (zero;
        non-circulant data), mirror-extended (reflect), or filled with its mean outside
        the image (non-circulant first estimate, ``estimate=True``)."""
        if not self.padded:
            return image
        fill = self.outside(estimate, fill, lambda: mean64(xp, image))
        if fill is None:  # reflect
            widths = [
                (o, g - n - o) for o, n, g in zip(self.offset, self.image_shape, self.shape)
            ]
            if not hasattr(xp, "pad"):  # the array API standard has no pad: via the host
                raise NotImplementedError("reflect needs xp.pad")
            return xp.pad(image, widths, mode="symmetric")
        out = xp.full(self.shape, fill, dtype=xp.float32)
        out[self.region] = image
        return out

    def outside(self, estimate: bool, fill: float | None,
                mean: Callable[[], float]) -> float | None:
        """The value the grid holds outside the image: None for reflect (the mirror),
        the image's mean (``mean()``) or ``fill`` for a non-circulant first estimate
        (``estimate=True``), else 0."""
        if self.mode == "reflect":
            return None
        if estimate and is_noncirculant(self.mode):
            return float(mean()) if fill is None else float(fill)
        return 0.0

    def mask(self, xp: Any = np) -> Any:
        """``M``: 1 on the measured voxels (the image region), 0 elsewhere on the grid."""
        m = xp.zeros(self.shape, dtype=xp.float32)
        m[self.region] = 1
        return m


def mean64(xp: Any, image: Any) -> float:
    """The mean, accumulated in float64 without a float64 copy where the namespace can."""
    try:
        return float(xp.mean(image, dtype=xp.float64))
    except TypeError:  # array API namespaces without the keyword
        return float(xp.mean(xp.astype(image, xp.float64)))


#: the PSF's light a padded grid may leave out of its padding, relative to its sum: the
#: grid is sized by the PSF's extent (:func:`psf_extent`), not by its array, so a PSF array
#: with empty margins (a Gaussian in a generous box, a cleaned bead stack) costs no larger
#: transforms; the few light left beyond the extent wraps around the grid, a change of the
#: order of float32 rounding
GRID_TAIL = 1e-7


def psf_extent(psf: Any, tail: float = GRID_TAIL) -> tuple[int, ...]:
    """The PSF's extent, voxels per axis: the smallest box centred on voxel ``n // 2``
    (``2 r + 1`` long, at most the array's length) outside which, on each axis, at most
    ``tail / ndim`` of the PSF's sum lies (so at most ``tail`` outside the box).

    Parameters
    ----------
    psf : ndarray
        The normalised, non-negative PSF (:func:`rlcore.validate.as_psf`).
    tail : float, default :data:`GRID_TAIL`
        Fraction of the sum allowed outside.
    """
    p = np.abs(np.asarray(psf, dtype=np.float64))
    total = float(p.sum())
    if total <= 0 or p.ndim == 0:
        return tuple(int(n) for n in p.shape)
    out = []
    for axis, n in enumerate(p.shape):
        profile = p.sum(axis=tuple(a for a in range(p.ndim) if a != axis))
        c = n // 2
        cum = np.concatenate([[0.0], np.cumsum(profile)])
        width = n
        for r in range(0, n):
            lo, hi = max(c - r, 0), min(c + r + 1, n)
            if total - (cum[hi] - cum[lo]) <= tail / p.ndim * total:
                width = min(2 * r + 1, n)
                break
        out.append(int(width))
    return tuple(out)


def make_grid(image_shape: tuple[int, ...], psf_shape: tuple[int, ...], mode: str,
              fast_len: Callable[[int], int] | None = None) -> Grid:
    """Grid for ``mode`` (see module docstring); ``psf_shape`` already fits the image.

    ``fast_len(n)`` gives the smallest FFT-friendly length >= ``n`` for the backend
    (:meth:`rlcore.protocol.BackendBase.fast_length`); default ``scipy.fft.next_fast_len``
    for real transforms (5-smooth).

    Raises
    ------
    ValueError
        ``mode`` is not one of :data:`BOUNDARIES`.
    """
    if mode not in BOUNDARIES:
        raise ValueError(f"boundary: must be one of {BOUNDARIES}, got {mode!r}")
    if mode == "periodic":
        return Grid(mode, tuple(image_shape), tuple(image_shape), (0,) * len(image_shape))
    if mode == "non-circulant-half":
        # the half extension's result depends on its grid (how wide the shared band is
        # before the grid wraps), so its grid is the same on every backend, of lengths
        # every FFT library handles fast
        fast_len = shared_fast_length
    elif fast_len is None or mode == "reflect":
        # so does reflect's (how far the mirror extends); zero and non-circulant give the
        # same result on any grid >= image + PSF - 1, so each backend pads to the lengths
        # its FFT handles fastest
        def fast_len(n: int) -> int:
            return scipy.fft.next_fast_len(n, real=True)
    if mode == "non-circulant-half":
        shape = tuple(fast_len(n + (p + 1) // 2) if p > 1 else n
                      for n, p in zip(image_shape, psf_shape))
    else:
        shape = tuple(fast_len(n + p - 1) for n, p in zip(image_shape, psf_shape))
    if mode == "zero":
        offset = (0,) * len(shape)
    else:  # reflect, non-circulant: the image in the middle, room on both sides
        offset = tuple((g - n) // 2 for g, n in zip(shape, image_shape))
    return Grid(mode, tuple(image_shape), shape, offset)


def shared_fast_length(n: int) -> int:
    """The smallest length >= ``n`` that is even and 2^a times an odd 7-smooth factor of at
    most 75 (``n`` itself when <= 2): fast on pocketfft, cuFFT and VkFFT alike. SciPy's
    5-smooth rule took 1080 = 2^3 3^3 5 for 1056, where an R2C + C2R pair of cuFFT on
    (96, n, n) costs 25.6 ps per voxel against 19.6 at 1120 = 2^5 5 7, so the larger grid
    ran faster (``bench/results/cufft-lengths-h200.json``)."""
    n = int(n)
    if n <= 2:
        return max(n, 1)
    m = n + (n % 2)
    while True:
        odd = m
        while odd % 2 == 0:
            odd //= 2
        rest = odd
        for p in (3, 5, 7):
            while rest % p == 0:
                rest //= p
        if odd <= 75 and rest == 1:
            return m
        m += 2


def place_psf(psf: Any, grid_shape: tuple[int, ...], out: Any = None) -> Any:
    """Zero-pad ``psf`` to ``grid_shape`` with its centre voxel (``n // 2``) at index 0.

    PSF index ``i`` goes to grid index ``(i - n // 2) mod g`` on each axis: two contiguous
    slabs per axis, so ``2**ndim`` slice copies, which any array library can do on its
    own device (the PSF is never built grid-sized on the host for a GPU).

    Parameters
    ----------
    psf : array, shape no larger than ``grid_shape`` on any axis
        The PSF, float32, in the library of ``out``.
    grid_shape : tuple of int
        Grid shape in voxels.
    out : array, optional
        A float32 array of ``grid_shape`` in the PSF's library to place into (it is
        zeroed first); default: a new ``numpy`` array.

    Returns
    -------
    array, float32, shape ``grid_shape``
        The PSF wrapped around the grid origin, ready for ``rfftn`` (its OTF).
    """
    if out is None:
        psf = np.asarray(psf, dtype=np.float32)
        placed = np.zeros(grid_shape, dtype=np.float32)
    else:
        placed = out
        placed[...] = 0
    per_axis = []
    for n, g in zip(psf.shape, grid_shape):
        c = n // 2  # (source slice, destination slice) for i >= c and for i < c
        pieces = [(slice(c, n), slice(0, n - c))]
        if c:
            pieces.append((slice(0, c), slice(g - c, g)))
        per_axis.append(pieces)
    for combo in itertools.product(*per_axis):
        placed[tuple(d for _, d in combo)] = psf[tuple(s for s, _ in combo)]
    return placed
