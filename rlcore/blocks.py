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

Overlap rule (``overlap="auto"``, :func:`auto_overlap`): on every split axis, the PSF's
extent along that axis times ``1.5 * max(1, sqrt(iterations / 10))``, per side. Why: a
core voxel's first update needs ``H x`` within the PSF's reach, which needs ``x`` within
twice the reach (one PSF extent), so with one extent the first update is exact; later
updates carry the error at the cut faces inwards, spreading like a random walk (by about
the square root of the iteration count). Measured seam error (interior rel. L2, blocked vs
unblocked), sparse bright objects, Gaussian PSF (5, 7, 7), 10 / 50 iterations, overlap
in PSF extents 1 / 1.5 / 2 / 3: periodic 3.1e-3 / 1.4e-4 / 4.9e-5 / 6.2e-7 and
1.2e-2 / 1.4e-3 / 6.8e-4 / 3.4e-5; zero 1.1e-2 / 8.4e-4 / 1.9e-4 / 6.9e-7 and
3.2e-2 / 6.5e-3 / 2.1e-3 / 6.8e-5; so the rule (1.5 extents at 10 iterations, 3.35 at 50)
stays under 1e-3. On the real LLS stack: ``bench/results/blocks.md``. The overlap follows
the PSF *array*: crop a measured PSF to where it has light (:func:`rlcore.psf.crop`) to
keep blocks small.
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

__all__ = ["BlockPlan", "Block", "plan", "blocks_of", "read_block", "write_core",
           "auto_overlap", "chunk_io_bytes", "chunk_shape"]

logger = logging.getLogger(__name__)

#: fraction of the free device memory an automatic plan uses
MEMORY_FRACTION = 0.8
#: bytes per block voxel besides the backend's buffers, on a GPU: the next block (uploaded
#: while this one computes) and the last result (downloaded meanwhile)
EXTRA_BYTES = 8.0
#: the same in host memory (numpy and other host backends): the block read, the next one
#: read meanwhile, the first estimate's copy and the core being written (zarr re-encodes
#: whole chunks); measured on zarr -> zarr runs (bench/results/blocks-memory.md): 38.7
#: bytes per block voxel in all with the numpy backend's 20, hence 16 and not 8
HOST_EXTRA_BYTES = 16.0


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
        grid, plus :data:`HOST_EXTRA_BYTES` (host backends) or :data:`EXTRA_BYTES`
        (devices) per block voxel (blocks in flight), plus the chunked stores' decoding
        (:func:`chunk_io_bytes`).
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
    #: "reflect": the unblocked run's mirror-extended grid (shape, offset), which the
    #: blocks read from (wrapped) so that they compute the same model; else None
    extended: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    @property
    def wraps(self) -> bool:
        """Blocks read past the volume (wrapped) and run periodic: "periodic", "reflect"."""
        return self.boundary in ("periodic", "reflect")

    @property
    def block_boundary(self) -> str:
        """The boundary each block's own run uses."""
        return "periodic" if self.wraps else self.boundary

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


def auto_overlap(psf_shape: tuple[int, ...], iterations: int = 10,
                 image_shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The automatic overlap in voxels per side: ``ceil(psf_extent * 1.5 *
    max(1, sqrt(iterations / 10)))`` on each axis (see the module docstring), at most the
    image's length on that axis (a halo longer than the volume adds nothing: with it the
    block already sees every voxel the unblocked run does, so a huge iteration count
    cannot make a block grow without bound)."""
    scale = 1.5 * max(1.0, math.sqrt(max(int(iterations), 0) / 10.0))
    halo = [int(math.ceil(p * scale)) for p in psf_shape]
    if image_shape is not None:
        halo = [min(h, int(n)) for h, n in zip(halo, image_shape)]
    return tuple(halo)


def _grid(block: tuple[int, ...], psf: tuple[int, ...], boundary: str,
          fast_len: Callable[[int], int]) -> tuple[int, ...]:
    """The FFT grid of one block's run (:func:`rlcore.boundary.make_grid`'s rule; a
    wrapped block is its own periodic grid)."""
    from rlcore.boundary import make_grid

    if boundary in ("periodic", "reflect"):
        return block
    psf = tuple(min(p, b) for p, b in zip(psf, block))
    return make_grid(block, psf, boundary, fast_len).shape


def plan(
    image_shape: tuple[int, ...],
    psf_shape: tuple[int, ...],
    *,
    block_shape: Any = "auto",
    overlap: Any = "auto",
    max_memory: int | None = None,
    boundary: str = "periodic",
    iterations: int = 10,
    bytes_per_voxel: float = 20.0,
    free_memory: int | None = None,
    host: bool = True,
    fast_len: Callable[[int], int] | None = None,
    chunks: tuple[tuple[int, ...] | None, tuple[int, ...] | None] = (None, None),
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
        Halo in voxels per side. ``"auto"``: :func:`auto_overlap` (module docstring).
    max_memory : int, optional
        Bytes one block's run may use. Default: :data:`MEMORY_FRACTION` of
        ``free_memory``.
    boundary : str
        Boundary mode of the run (decides the grid of each block).
    iterations : int, default 10
        RL updates of the run (the automatic overlap grows with them).
    bytes_per_voxel : float
        The backend's memory model (``Backend.buffers_per_voxel``).
    free_memory : int, optional
        Free bytes of the device (``Backend.memory().free``); needed when ``block_shape``
        is "auto" and ``max_memory`` is None.
    host : bool, default True
        The backend computes in host memory: :data:`HOST_EXTRA_BYTES` per block voxel,
        else :data:`EXTRA_BYTES`.
    fast_len : callable, optional
        The backend's FFT-friendly length (``Backend.fast_length``).
    chunks : (tuple or None, tuple or None)
        Chunk shapes of the source and of ``out`` when they are chunked stores (zarr):
        their decoding is counted per block (:func:`chunk_io_bytes`).

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
    extra = HOST_EXTRA_BYTES if host else EXTRA_BYTES
    per_voxel = bytes_per_voxel + extra

    if isinstance(overlap, str):
        if overlap != "auto":
            raise ValueError(f"overlap: 'auto' or voxels (int or tuple), got {overlap!r}")
        halo = auto_overlap(psf_shape, iterations, image_shape)
    else:
        halo = _tuple(overlap, ndim, "overlap")
        if min(halo) < 0:
            raise ValueError(f"overlap: must be >= 0 voxels, got {overlap!r}")

    extended = None
    if boundary == "reflect":  # blocks of the unblocked run's mirror-extended grid
        from rlcore.boundary import make_grid

        g = make_grid(image_shape, psf_shape, "reflect")
        extended = (g.shape, g.offset)

    def make(cores: tuple[int, ...]) -> BlockPlan:
        counts = tuple(-(-n // c) for n, c in zip(image_shape, cores))
        # an axis whose every block would span the whole volume is not split
        reach = (lambda n, c, h: c + 2 * h >= n) if boundary in ("periodic", "reflect") \
            else (lambda n, c, h: h >= n - c)
        counts = tuple(1 if reach(n, c, h) else k
                       for n, c, h, k in zip(image_shape, cores, halo, counts))
        over = tuple(0 if k == 1 else h for k, h in zip(counts, halo))
        cores = tuple(n if k == 1 else c for n, k, c in zip(image_shape, counts, cores))
        if boundary == "periodic":
            block = tuple(c + 2 * o for c, o in zip(cores, over))
        elif boundary == "reflect":  # an unsplit axis is the whole extended grid
            block = tuple(g if k == 1 else c + 2 * o
                          for c, o, k, g in zip(cores, over, counts, extended[0]))
        else:
            block = tuple(min(c + 2 * o, n) for c, o, n in zip(cores, over, image_shape))
        grid = _grid(block, psf_shape, boundary, fast)
        memory = int(math.prod(grid) * bytes_per_voxel + math.prod(block) * extra
                     + chunk_io_bytes(block, *chunks))
        return BlockPlan(image_shape, psf_shape, cores, over, counts, block, grid, memory,
                         boundary, extended)

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
        # cores no smaller than the overlap: smaller ones compute mostly halo (and Dask's
        # map_overlap needs chunks at least as deep as the overlap)
        options = [a for a in range(ndim)
                   if -(-image_shape[a] // (counts[a] + 1)) >= max(1, halo[a])]
        if not options:
            smallest = make(tuple(max(1, h) for h in halo)).memory_bytes
            raise ValueError(
                f"max_memory: {_size(max_memory)} is too small for blocks with "
                f"overlap {halo} (a PSF of {psf_shape}); the smallest plan needs about "
                f"{_size(smallest)} per block at {per_voxel:.0f} bytes per voxel: pass "
                f"max_memory >= {smallest}")
        axis = max(options, key=lambda a: candidate.block_shape[a])
        counts[axis] += 1


def _size(nbytes: float) -> str:
    """Bytes in the unit that shows them: '195 KiB', '12.5 MiB', '3.0 GiB'."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= factor:
            value = nbytes / factor
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{nbytes:.0f} bytes"


def _fft_friendly(found: BlockPlan, make: Callable[[tuple[int, ...]], BlockPlan],
                  max_memory: int, fast: Callable[[int], int]) -> BlockPlan:
    """Resize each split core a little so that its block length is FFT-friendly, keeping
    the number of blocks (periodic and reflect blocks are their own FFT grid; a length
    with a large prime factor, such as 1070 = 2 x 5 x 107, measured 2x slower in cuFFT).
    Tries the next friendly length up, then down; keeps what fits ``max_memory``."""
    if not found.wraps:
        return found
    cores = list(found.core_shape)
    for a, (n, c, o, k) in enumerate(zip(found.image_shape, found.core_shape,
                                         found.overlap, found.counts)):
        if k == 1:
            continue
        up = fast(c + 2 * o)
        down = next((m for m in range(c + 2 * o, 2 * o, -1) if fast(m) == m), None)
        for length in (up, down):
            if length is not None and length > 2 * o and \
                    -(-n // (length - 2 * o)) == k:
                trial = list(cores)
                trial[a] = length - 2 * o
                if make(tuple(trial)).memory_bytes <= max_memory:
                    cores = trial
                    break
    return make(tuple(cores))


def blocks_of(p: BlockPlan) -> Iterator[Block]:
    """The blocks of a plan, in C order of the block grid."""
    per_axis = []
    for axis, (n, c, o, k) in enumerate(zip(p.image_shape, p.core_shape, p.overlap,
                                            p.counts)):
        entries = []
        for i in range(k):
            start, stop = i * c, min(n, (i + 1) * c)
            lo, hi = start - o, stop + o
            if p.boundary == "reflect" and k == 1:  # the whole extended axis
                off = p.extended[1][axis]
                lo, hi = -off, p.extended[0][axis] - off
            elif not p.wraps:
                lo, hi = max(0, lo), min(n, hi)
            else:  # a short last core still reads a full block: one FFT plan for all
                hi = lo + c + 2 * o
            entries.append((i, (lo, hi), slice(start, stop), slice(start - lo, stop - lo)))
        per_axis.append(entries)
    for combo in itertools.product(*per_axis):
        yield Block(tuple(e[0] for e in combo), tuple(e[1] for e in combo),
                    tuple(e[2] for e in combo), tuple(e[3] for e in combo))


def _indices(lo: int, hi: int, n: int, axis: int, p: BlockPlan | None) -> np.ndarray:
    """Image indices of the block's voxels lo..hi-1 on one axis: wrapped (periodic), or
    for reflect wrapped on the extended grid and mirrored back (half-sample symmetric,
    as ``numpy.pad(mode="symmetric")``)."""
    v = np.arange(lo, hi)
    if p is not None and p.boundary == "reflect":
        g, off = p.extended[0][axis], p.extended[1][axis]
        w = (v + off) % g - off
        w = np.mod(w, 2 * n)
        return np.where(w >= n, 2 * n - 1 - w, w)
    return v % n


def _runs(idx: np.ndarray) -> list[tuple[slice, slice, bool]]:
    """Split an index array into runs of step +1 or -1: (source slice, destination slice,
    reversed), so that any array library reads them as plain slices."""
    out, i = [], 0
    while i < idx.size:
        j = i + 1
        step = int(idx[j] - idx[i]) if j < idx.size else 1
        if step not in (1, -1):
            step = 1
        while j < idx.size and idx[j] - idx[j - 1] == step:
            j += 1
        a, b = int(idx[i]), int(idx[j - 1])
        out.append((slice(min(a, b), max(a, b) + 1), slice(i, j), step == -1))
        i = j
    return out


#: threads that read one large block (page faults and copies spread over cores)
READ_THREADS = 8
_READ_POOL: list = []


def _read_pool():
    """Threads shared by every block read of the process: one core each, at most 32, so
    that the readers of several GPUs (8 slabs each) do not queue behind one another."""
    if not _READ_POOL:
        from concurrent.futures import ThreadPoolExecutor

        from rlcore._system import usable_cpus

        n = max(1, min(32, usable_cpus()))
        _READ_POOL.append(ThreadPoolExecutor(n, thread_name_prefix="rlcore-block-read"))
    return _READ_POOL[0]


def _host(data: Any) -> np.ndarray:
    """Host float32 values of a slice of any array kind (CuPy: ``.get()``)."""
    if not isinstance(data, np.ndarray) and hasattr(data, "get") and \
            type(data).__module__.startswith("cupy"):
        data = data.get()
    return np.asarray(data, dtype=np.float32)


def read_block(image: Any, block: Block, p: BlockPlan | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
    """The block's voxels from ``image`` (NumPy, memmap, zarr, h5py, CuPy: anything
    sliceable) as a new contiguous float32 array; ranges past the volume are wrapped
    around (periodic) or read from the mirror-extended grid (reflect, when the plan ``p``
    is given). Large blocks are read by several threads, in slabs along axis 0. ``out``:
    a float32 array of the block's shape to read into (e.g. page-locked memory)."""
    shape = tuple(image.shape)
    if out is None:
        out = np.empty(block.shape, np.float32)
    pieces = [_runs(_indices(lo, hi, n, a, p))
              for a, ((lo, hi), n) in enumerate(zip(block.source, shape))]
    # split axis-0 runs into slabs, so that a block read in one piece still uses threads,
    # and at the source's chunk boundaries (zarr), so that no read spans two chunks
    slabs = max(1, min(READ_THREADS, out.nbytes // (16 << 20)))
    stored = chunk_shape(image)
    chunk = stored[0] if stored else None
    first = []
    for src, dst, flip in pieces[0]:
        n = dst.stop - dst.start
        step = max(1, -(-n // slabs))
        cuts = set(range(0, n, step)) | {n}
        if chunk:
            cuts |= {(k - src.start) if not flip else (src.stop - k)
                     for k in range(src.start - src.start % chunk + chunk, src.stop, chunk)}
        cuts = sorted(c for c in cuts if 0 <= c <= n)
        for i, j in zip(cuts[:-1], cuts[1:]):
            a = src.stop - j if flip else src.start + i
            first.append((slice(a, a + j - i), slice(dst.start + i, dst.start + j), flip))
    pieces[0] = first

    def copy(combo) -> None:
        data = _host(image[tuple(s for s, _, _ in combo)])
        flips = tuple(slice(None, None, -1) if r else slice(None) for _, _, r in combo)
        out[tuple(d for _, d, _ in combo)] = data[flips]

    combos = list(itertools.product(*pieces))
    # a chunked source decodes whole chunks: at most half the block's bytes in flight
    threads = _read_threads(stored, block.shape)
    if len(combos) == 1 or out.nbytes < (32 << 20) or threads == 1:
        for combo in combos:
            copy(combo)
    else:
        pool = _read_pool()
        for i in range(0, len(combos), threads):
            for f in [pool.submit(copy, c) for c in combos[i:i + threads]]:
                f.result()
    return out


def chunk_shape(array: Any) -> tuple[int, ...] | None:
    """Chunk lengths of a chunked store (zarr ``chunks``, Dask ``chunksize``), or None."""
    chunks = getattr(array, "chunks", None)
    if chunks and all(isinstance(c, int) for c in chunks):
        return tuple(chunks)
    size = getattr(array, "chunksize", None)
    return tuple(int(c) for c in size) if size else None


def _decoded_bytes(chunks: tuple[int, ...], block_shape: tuple[int, ...]) -> int:
    """float32 bytes of the chunks one axis-0 chunk row of a block read touches: a span of
    ``b`` voxels touches ``(b - 1) / c + 1`` chunks of length ``c`` on average over its
    alignment."""
    touched = [chunks[0]] + [b + c - 1 for b, c in zip(block_shape[1:], chunks[1:])]
    return 4 * math.prod(touched)


def _read_threads(chunks: tuple[int, ...] | None, block_shape: tuple[int, ...]) -> int:
    """Threads reading one block: :data:`READ_THREADS`; from a chunked store, as many as
    keep the decoded chunks in flight within half the block's own bytes."""
    if not chunks:
        return READ_THREADS
    return max(1, min(READ_THREADS, 4 * math.prod(block_shape)
                      // (2 * _decoded_bytes(chunks, block_shape))))


def chunk_io_bytes(block_shape: tuple[int, ...], source_chunks: tuple[int, ...] | None,
                   out_chunks: tuple[int, ...] | None) -> int:
    """Bytes a block's reading and writing hold besides the block itself, for chunked
    stores (zarr): the source chunks decoded at once by :func:`read_block`'s threads and
    the output chunks :func:`write_core` decodes and re-encodes for one axis-0 chunk row
    (the next block is read while a core is written). 0 for plain arrays."""
    total = 0
    if source_chunks:
        total += _read_threads(source_chunks, block_shape) * _decoded_bytes(source_chunks,
                                                                            block_shape)
    if out_chunks:
        total += 2 * _decoded_bytes(out_chunks, block_shape)
    return total


def write_core(out: Any, core: tuple[slice, ...], data: np.ndarray) -> None:
    """``out[core] = data``; into a chunked store (zarr) one axis-0 chunk row at a time,
    so that the chunks being re-encoded at once stay few."""
    stored = chunk_shape(out)
    if not stored or isinstance(out, np.ndarray):
        out[core] = data
        return
    start, stop = core[0].start, core[0].stop
    cuts = sorted({start, stop} | set(range(start - start % stored[0] + stored[0],
                                            stop, stored[0])))
    for a, b in zip(cuts[:-1], cuts[1:]):
        out[(slice(a, b),) + tuple(core[1:])] = data[a - start:b - start]
