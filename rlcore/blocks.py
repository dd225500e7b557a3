"""The block scheduler: RL on volumes larger than a device's memory, one block at a time.

The scheduler holds no RL logic. It cuts the image into *blocks*: each block's *core* is the
part of the result it produces, and the block is the core grown by an *overlap* (a halo of
voxels) on each side along every axis that is split. Each block is deconvolved on its own
by the unblocked code path (:func:`rlcore.deconvolve`'s), and only its core is kept
(merge by cropping to block centres).

Why it is (nearly) exact: one RL update mixes voxels within the PSF's extent (``H`` then
``H^T``), so the error made at a block's cut faces moves inwards with the iterations, but
decays fast; with the overlap at least the PSF's extent the cores differ from the unblocked
result by far less than the noise. Measured on the real lattice light-sheet stack
(``bench/results/blocks.md``): interior rel. L2 error of blocked vs unblocked, 10
iterations, default overlap, per boundary mode.

Edges of the volume: along an axis that is split, a block at the volume's own edge sees the
same boundary as the unblocked run: for ``"periodic"`` its overlap is read wrapped around
from the opposite side of the volume; for the other modes the block ends at the volume's
edge and its run uses the same ``boundary``. An axis that is not split is taken whole, with
no overlap, so it is exactly the unblocked run along that axis.

Overlap rule (``overlap="auto"``): on every split axis, the PSF's extent along that axis
(``psf_shape``), at most the image size. Iterations do not enter the rule: the seam error
measured at 10 and at 50 iterations stays under 1e-3 (``bench/results/blocks.md``).
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

__all__ = ["BlockPlan", "Block", "plan", "blocks_of", "read_block", "auto_overlap"]

logger = logging.getLogger(__name__)

#: fraction of the free device memory an automatic plan uses
MEMORY_FRACTION = 0.8
#: host bytes per block voxel besides the backend's buffers: the block read and the result
HOST_BYTES_PER_VOXEL = 8.0


@dataclass(frozen=True)
class Block:
    """One block: where its data come from and where its core goes.

    Attributes
    ----------
    index : tuple of int
        Block position in the block grid.
    source : tuple of (start, stop) per axis
        Voxel range read from the image, overlap included; for ``"periodic"`` it may run
        past the volume (read wrapped around).
    core : tuple of slice
        Where the block's core goes in the result.
    crop : tuple of slice
        The core within the block's own array.
    """

    index: tuple[int, ...]
    source: tuple[tuple[int, int], ...]
    core: tuple[slice, ...]
    crop: tuple[slice, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in self.source)


@dataclass(frozen=True)
class BlockPlan:
    """How an image will be cut (from :func:`plan`; nothing is computed).

    Attributes
    ----------
    image_shape, psf_shape : tuple of int
        Voxels, ``(Z, Y, X)``.
    core_shape : tuple of int
        Result voxels each block produces (the last block on an axis may be smaller).
    overlap : tuple of int
        Halo in voxels on each side of a core, per axis (0 on axes that are not split).
    counts : tuple of int
        Blocks per axis.
    block_shape : tuple of int
        Largest block read, overlap included: ``core + 2 * overlap`` (at most the image).
    grid_shape : tuple of int
        FFT grid of the largest block for the chosen boundary.
    memory_bytes : int
        Estimated memory of one block's run: the backend's bytes per grid voxel times the
        grid, plus the block read and its result on the host.
    boundary : str
        Boundary mode.
    """

    image_shape: tuple[int, ...]
    psf_shape: tuple[int, ...]
    core_shape: tuple[int, ...]
    overlap: tuple[int, ...]
    counts: tuple[int, ...]
    block_shape: tuple[int, ...]
    grid_shape: tuple[int, ...]
    memory_bytes: int
    boundary: str

    @property
    def n_blocks(self) -> int:
        return math.prod(self.counts)

    @property
    def blocked(self) -> bool:
        return self.n_blocks > 1

    @property
    def work_ratio(self) -> float:
        """Voxels computed over voxels of the image (the overlap's cost)."""
        total = sum(math.prod(b.shape) for b in blocks_of(self))
        return total / math.prod(self.image_shape)

    def __str__(self) -> str:
        return (f"{self.n_blocks} blocks {'x'.join(map(str, self.counts))} of core "
                f"{self.core_shape}, overlap {self.overlap}, block {self.block_shape}, "
                f"grid {self.grid_shape}, ~{self.memory_bytes / 2**20:.0f} MiB per block, "
                f"{self.work_ratio:.2f}x the voxels")


def _tuple(value: Any, ndim: int, name: str) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value),) * ndim
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: an int or a tuple of {ndim} ints, got {value!r}") from None
    if len(out) != ndim:
        raise ValueError(f"{name}: needs {ndim} values (one per axis), got {value!r}")
    return out


def _grid(block: tuple[int, ...], psf: tuple[int, ...], boundary: str,
          fast_len: Callable[[int], int]) -> tuple[int, ...]:
    if boundary == "periodic":
        return block
    return tuple(fast_len(b + min(p, b) - 1) for b, p in zip(block, psf))


def plan(
    image_shape: tuple[int, ...],
    psf_shape: tuple[int, ...],
    *,
    block_shape: Any = "auto",
    overlap: Any = "auto",
    max_memory: int | None = None,
    boundary: str = "periodic",
    bytes_per_voxel: float = 20.0,
    free_memory: int | None = None,
    host: bool = True,
    fast_len: Callable[[int], int] | None = None,
) -> BlockPlan:
    """Choose blocks for an image, without computing anything (for UIs and ``--dry-run``).

    Parameters
    ----------
    image_shape, psf_shape : tuple of int
        Voxels, ``(Z, Y, X)`` or ``(Y, X)``.
    block_shape : "auto" or tuple of int, default "auto"
        Core of each block in voxels (the result voxels it produces; the overlap is added
        around it). ``"auto"``: the largest cores whose run fits ``max_memory``, splitting
        the longest block axis first, with FFT-friendly block lengths.
    overlap : "auto", int or tuple of int, default "auto"
        Halo in voxels per side. ``"auto"``: the PSF's extent on each split axis (module
        docstring).
    max_memory : int, optional
        Bytes one block's run may use. Default: :data:`MEMORY_FRACTION` of
        ``free_memory``.
    boundary : str
        Boundary mode of the run (decides the grid of each block).
    bytes_per_voxel : float
        The backend's memory model (``Backend.buffers_per_voxel``).
    free_memory : int, optional
        Free bytes of the device (``Backend.memory().free``); needed when ``block_shape``
        is "auto" and ``max_memory`` is None.
    host : bool, default True
        The backend computes in host memory, so the block read and its result count too.
    fast_len : callable, optional
        The backend's FFT-friendly length (``Backend.fast_length``).

    Returns
    -------
    BlockPlan

    Raises
    ------
    ValueError
        ``max_memory`` too small for even the smallest block (the message gives the
        smallest that works), shapes or overlaps of the wrong length or negative.
    TypeError
        ``block_shape``/``overlap`` neither "auto" nor ints.
    """
    image_shape = tuple(int(n) for n in image_shape)
    psf_shape = tuple(min(int(p), n) for p, n in zip(psf_shape, image_shape))
    ndim = len(image_shape)
    fast = fast_len or (lambda n: scipy.fft.next_fast_len(int(n), real=True))
    per_voxel = bytes_per_voxel + (HOST_BYTES_PER_VOXEL if host else 0.0)

    if isinstance(overlap, str):
        if overlap != "auto":
            raise ValueError(f"overlap: 'auto' or voxels (int or tuple), got {overlap!r}")
        halo = psf_shape
    else:
        halo = _tuple(overlap, ndim, "overlap")
        if min(halo) < 0:
            raise ValueError(f"overlap: must be >= 0 voxels, got {overlap!r}")

    def make(cores: tuple[int, ...]) -> BlockPlan:
        counts = tuple(-(-n // c) for n, c in zip(image_shape, cores))
        over = tuple(0 if k == 1 else h for k, h in zip(counts, halo))
        cores = tuple(n if k == 1 else c for n, k, c in zip(image_shape, counts, cores))
        block = tuple(min(c + 2 * o, n) if boundary != "periodic" else c + 2 * o
                      for c, o, n in zip(cores, over, image_shape))
        grid = _grid(block, psf_shape, boundary, fast)
        memory = int(math.prod(grid) * bytes_per_voxel
                     + (math.prod(block) * HOST_BYTES_PER_VOXEL if host else 0))
        return BlockPlan(image_shape, psf_shape, cores, over, counts, block, grid, memory,
                         boundary)

    if not isinstance(block_shape, str):
        cores = _tuple(block_shape, ndim, "block_shape")
        if min(cores) < 1:
            raise ValueError(f"block_shape: every core length must be >= 1, got {block_shape}")
        return make(tuple(min(c, n) for c, n in zip(cores, image_shape)))
    if block_shape != "auto":
        raise ValueError(f"block_shape: None, 'auto' or a tuple of ints, got {block_shape!r}")
    if max_memory is None:
        if free_memory is None:
            raise ValueError("max_memory: give it (bytes), or the backend's free memory")
        max_memory = int(MEMORY_FRACTION * free_memory)
    if isinstance(max_memory, bool) or not isinstance(max_memory, numbers.Real) \
            or max_memory <= 0:
        raise ValueError(f"max_memory: a positive number of bytes, got {max_memory!r}")

    counts = [1] * ndim
    while True:
        cores = tuple(-(-n // k) for n, k in zip(image_shape, counts))
        candidate = make(cores)
        if candidate.memory_bytes <= max_memory:
            return _fft_friendly(candidate, make, max_memory, fast)
        # split the axis whose block is longest, among those whose core can still shrink
        options = [a for a in range(ndim) if cores[a] > max(1, halo[a] // 2)]
        if not options:
            smallest = make(tuple(max(1, h // 2) for h in halo)).memory_bytes
            raise ValueError(
                f"max_memory: {max_memory / 2**20:.0f} MiB is too small for blocks with "
                f"overlap {halo} (a PSF of {psf_shape}); the smallest plan needs about "
                f"{smallest / 2**20:.0f} MiB per block at {per_voxel:.0f} bytes per voxel")
        axis = max(options, key=lambda a: candidate.block_shape[a])
        counts[axis] += 1


def _fft_friendly(found: BlockPlan, make: Callable[[tuple[int, ...]], BlockPlan],
                  max_memory: int, fast: Callable[[int], int]) -> BlockPlan:
    """Shrink each split core a little so that its block length is FFT-friendly, when that
    needs no more blocks (periodic blocks are their own FFT grid)."""
    if found.boundary != "periodic":
        return found
    cores = list(found.core_shape)
    for a, (c, o, k) in enumerate(zip(found.core_shape, found.overlap, found.counts)):
        if k == 1:
            continue
        for length in range(c + 2 * o, 2 * o, -1):
            if fast(length) == length:
                if -(-found.image_shape[a] // (length - 2 * o)) == k:
                    cores[a] = length - 2 * o
                break
    better = make(tuple(cores))
    return better if better.memory_bytes <= max_memory else found


def blocks_of(p: BlockPlan) -> Iterator[Block]:
    """The blocks of a plan, in C order of the block grid."""
    per_axis = []
    for n, c, o, k in zip(p.image_shape, p.core_shape, p.overlap, p.counts):
        entries = []
        for i in range(k):
            start, stop = i * c, min(n, (i + 1) * c)
            lo, hi = start - o, stop + o
            if p.boundary != "periodic":
                lo, hi = max(0, lo), min(n, hi)
            entries.append((i, (lo, hi), slice(start, stop), slice(start - lo, stop - lo)))
        per_axis.append(entries)
    for combo in itertools.product(*per_axis):
        yield Block(tuple(e[0] for e in combo), tuple(e[1] for e in combo),
                    tuple(e[2] for e in combo), tuple(e[3] for e in combo))


def _segments(lo: int, hi: int, n: int) -> list[tuple[slice, slice]]:
    """(source slice in [0, n), destination slice in [0, hi - lo)) pieces of the wrapped
    range [lo, hi)."""
    out, pos = [], lo
    while pos < hi:
        start = pos % n
        length = min(hi - pos, n - start)
        out.append((slice(start, start + length), slice(pos - lo, pos - lo + length)))
        pos += length
    return out


def read_block(image: Any, block: Block) -> np.ndarray:
    """The block's voxels from ``image`` (NumPy, memmap, zarr, h5py: anything sliceable),
    wrapped around for ranges past the volume, as a new float32 array."""
    shape = tuple(image.shape)
    if all(0 <= lo and hi <= n for (lo, hi), n in zip(block.source, shape)):
        return np.asarray(image[tuple(slice(lo, hi) for lo, hi in block.source)],
                          dtype=np.float32).copy()
    out = np.empty(block.shape, np.float32)
    pieces = [_segments(lo, hi, n) for (lo, hi), n in zip(block.source, shape)]
    for combo in itertools.product(*pieces):
        out[tuple(d for _, d in combo)] = image[tuple(s for s, _ in combo)]
    return out


#: energy fraction of the PSF inside the window that sets the automatic overlap
OVERLAP_ENERGY = 0.999


def auto_overlap(psf: Any) -> tuple[int, ...]:
    """The automatic overlap for a PSF array: per axis, the full width (``2 r + 1``) of the
    centred window (centre ``n // 2``) that holds :data:`OVERLAP_ENERGY` of the PSF's
    sum along that axis; at most the PSF's extent. A PSF array with much empty margin
    (a measured bead stack) so gets the overlap its light needs, not its array size.
    """
    h = np.abs(np.asarray(psf, dtype=np.float64))
    total = h.sum()
    if not np.isfinite(total) or total <= 0:
        return tuple(h.shape)
    out = []
    for axis, n in enumerate(h.shape):
        marginal = h.sum(axis=tuple(a for a in range(h.ndim) if a != axis)) / total
        c = n // 2
        for r in range(n):
            if marginal[max(0, c - r):c + r + 1].sum() >= OVERLAP_ENERGY:
                break
        out.append(min(n, 2 * r + 1))
    return tuple(out)
