"""Running a :class:`rlcore.blocks.BlockPlan`: block by block in this process, or as a lazy
``dask.array`` graph (``map_overlap``) on any Dask scheduler.

Each block goes through the same :class:`rlcore.deconvolver.Deconvolver` as an unblocked
run, one per block shape (so the OTF is computed once per shape, not once per block);
nothing here knows RL.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from rlcore.blocks import BlockPlan, auto_overlap, blocks_of, read_block, write_core
from rlcore.deconvolver import Deconvolver, Recipe
from rlcore.protocol import AsyncDownloads, PinnedTransfers

__all__ = ["run_blocked", "run_dask", "UpdateCounter"]

logger = logging.getLogger(__name__)

#: attribute of an ``out=`` array with attributes (zarr, h5py): False while a blocked run
#: writes it, True once every block is written; a run that stopped leaves it False (a
#: blocked run does not resume: run it again)
COMPLETE = "rlcore_complete"
#: attribute with the block plan that wrote the array
PLAN = "rlcore_plan"


def run_blocked(be: Any, image: Any, recipe: Recipe, p: BlockPlan, *, out: Any = None,
                callback: Callable[[int, int], object] | None = None) -> Any:
    """Deconvolve ``image`` block by block; returns the float32 result.

    ``be`` is one backend, or a list of backends (one per GPU): then one thread per backend
    computes every n-th block on its device. ``image`` is anything sliceable (NumPy,
    memmap, zarr, a lazy reader); ``out`` (optional) receives the result core by core
    (anything that takes ``out[slices] = block``: NumPy, memmap, zarr), else a new NumPy
    array is returned. Each worker reads its next block on a second thread while the
    current one computes. ``callback(k, total)`` counts updates over all blocks
    (``total = iterations * n_blocks``), from the worker threads (serialised by a lock).
    An ``out`` with attributes (zarr, h5py) gets :data:`COMPLETE` = False first and True
    when every block is written.
    """
    backends = list(be) if isinstance(be, (list, tuple)) else [be]
    if out is None:
        out = np.empty(p.image_shape, np.float32)
    _heap_returns_memory()
    marker = getattr(out, "attrs", None)  # zarr, h5py: a stopped run is seen as incomplete
    if marker is not None:
        marker[COMPLETE] = False
        marker[PLAN] = str(p)
    blocks = list(blocks_of(p))
    total = recipe.iterations * len(blocks)
    lock = threading.Lock()
    counter = [0]

    def step(k: int, _: int) -> None:
        with lock:
            counter[0] += 1
            if callback is not None:
                callback(counter[0], total)

    block_recipe = dataclasses.replace(recipe, boundary=p.block_boundary)
    mine = [blocks[w::len(backends)] for w in range(len(backends))]
    if len(backends) == 1:
        _worker(backends[0], _Source(image, p, out), block_recipe, mine[0], step)
    else:
        with ThreadPoolExecutor(len(backends), thread_name_prefix="rlcore-device") as pool:
            futures = [pool.submit(_worker, b, _Source(image, p, out), block_recipe, m, step)
                       for b, m in zip(backends, mine)]
            for f in futures:
                f.result()
    if marker is not None:
        marker[COMPLETE] = True
    return out


@dataclasses.dataclass(frozen=True)
class _Source:
    """Where blocks are read from and written to: the image, the plan, the output."""

    image: Any
    p: BlockPlan
    out: Any


def _worker(be: Any, source: _Source, recipe: Recipe, blocks: list, step: Callable) -> None:
    """Compute ``blocks`` on backend ``be``.

    A reader thread reads (and, for a device backend, uploads) the next block while this
    one computes; for a device backend a writer thread downloads the last result meanwhile
    (CuPy: on its own stream, after an event recorded when the result was computed), so
    transfers overlap compute.
    """
    if not blocks:
        return
    image, p, out = source.image, source.p, source.out
    deconvolvers: dict[tuple, Deconvolver] = {}

    def deconvolve_block(data, block):
        shape = tuple(int(n) for n in data.shape)
        # a depth-variant PSF: a plan per z position of the blocks (its planes' depths),
        # one kept at a time (blocks run z-slab by z-slab; each plan holds K spectra)
        z0 = block.source[0][0] if recipe.psf_depths is not None else 0
        key = (shape, z0)
        if key not in deconvolvers:
            if recipe.psf_depths is not None:
                for old in deconvolvers.values():
                    old.close()
                deconvolvers.clear()
            deconvolvers[key] = recipe.deconvolver(shape, be, z_origin=z0)
        return recipe.run(deconvolvers[key], data, callback=step)

    device = not be.on_host
    pinned = be.pinned_empty if isinstance(be, PinnedTransfers) else None
    events = isinstance(be, AsyncDownloads)

    def buffer(shape):  # a page-locked host array (CuPy): transfers by one DMA
        nbytes = int(np.prod(shape)) * 4
        raw = pinned(nbytes)
        return raw, raw[:nbytes].view(np.float32).reshape(shape)

    def fetch(block):
        if not device:
            return read_block(image, block, p)
        if pinned is None:
            host = read_block(image, block, p)
            with be.activate():
                return be.upload(host)
        raw, host = buffer(block.shape)
        try:
            read_block(image, block, p, out=host)
            with be.activate():
                return be.upload(host, pinned=True)
        finally:
            be.release_pinned(raw)

    def store(result, block, after):
        with be.activate():
            if pinned is None:
                write_core(out, block.core, be.to_host(result, after=after) if events
                           else be.to_host(result))
                return
            raw, host = buffer(tuple(result.shape))
            try:
                write_core(out, block.core, be.to_host(result, after=after, out=host))
            finally:
                be.release_pinned(raw)

    with ThreadPoolExecutor(1, thread_name_prefix="rlcore-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="rlcore-write") as writer, \
            be.activate():
        pending = reader.submit(fetch, blocks[0])
        writes: list = []
        for i, block in enumerate(blocks):
            data = pending.result()
            if i + 1 < len(blocks):
                pending = reader.submit(fetch, blocks[i + 1])
            result = deconvolve_block(data, block)
            del data
            if not device:
                write_core(out, block.core, np.asarray(result)[block.crop])
                continue
            core = result[block.crop]
            core = be.contiguous(core) if events else core
            writes.append(writer.submit(store, core, block, be.record() if events else None))
            del result, core
            if len(writes) > 1:  # at most one download in flight
                writes[-2].result()
            logger.debug("block %s done on %s", block.index, be.device)
        for w in writes:
            w.result()


class UpdateCounter:
    """Counts the updates of every block of a Dask graph as they run: calls
    ``callback(k, total)`` (k from 1; raising in it stops the computation, as in an
    unblocked run) and advances a tqdm bar when ``progress``. In a ``dask.distributed``
    worker (it is pickled there) it counts that worker's updates and calls the callback
    there."""

    def __init__(self, callback: Callable[[int, int], object] | None, total: int,
                 progress: bool = False) -> None:
        self.callback, self.total, self.progress = callback, total, progress
        self.count = 0
        self._bar: Any = None
        self._lock = threading.Lock()

    def __call__(self, k: int, n: int) -> None:
        with self._lock:
            self.count += 1
            count = self.count
            if self.progress:
                if self._bar is None:
                    from tqdm.auto import tqdm

                    self._bar = tqdm(total=self.total, desc="RL, dask blocks", unit="it")
                self._bar.update(1)
                if count >= self.total:
                    self._bar.close()
        if self.callback is not None:
            self.callback(count, self.total)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_lock"], state["_bar"], state["progress"] = None, None, False
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


#: glibc's ``M_MMAP_THRESHOLD`` for blocked runs, bytes (see :func:`_heap_returns_memory`)
MMAP_THRESHOLD = 1 << 20
_HEAP_SET: list[bool] = []


def _heap_returns_memory() -> None:
    """Let freed block arrays go back to the system (glibc; a no-op elsewhere).

    glibc serves allocations below its *dynamic* mmap threshold (which rises up to 32
    MiB after the first large free) from per-thread heaps that keep freed memory, so a
    blocked run's resident memory grew block after block: measured on a zarr -> zarr run
    with 17 MiB block arrays, to 2.4x the plan's estimate (311 MiB for a 128 MiB cap).
    A fixed threshold of :data:`MMAP_THRESHOLD` (``mallopt``, once per process, as the
    ``MALLOC_MMAP_THRESHOLD_`` environment variable would) maps every array of 1 MiB
    or more on its own and unmaps it when freed: 170 MiB on the same run, and faster
    (19.7 s instead of 33 s)."""
    if _HEAP_SET:
        return
    _HEAP_SET.append(True)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


#: most (backend, Deconvolver) pairs a process keeps for Dask blocks (each holds an OTF
#: and work buffers of its block's grid)
_KEEP = 8
_PLANS: OrderedDict[tuple, Deconvolver] = OrderedDict()
_DONE: dict[str, int] = {}
_PLANS_LOCK = threading.Lock()


class _DaskBlocks:
    """The function ``map_overlap`` calls on each block: one backend and one
    :class:`Deconvolver` per worker thread and block shape, kept across the blocks of the
    graph (at most :data:`_KEEP` per process, dropped when the graph's last block has run
    here), so the OTF is computed once per shape and thread, not once per chunk. Pickled
    to ``dask.distributed`` workers, where each process keeps its own."""

    def __init__(self, backend: Any, device: Any, recipe: Recipe, blocks: int,
                 counter: UpdateCounter | None, z_chunks: tuple[int, ...] = (),
                 z_halo: int = 0) -> None:
        self.backend, self.device, self.recipe = backend, device, recipe
        self.blocks, self.counter = blocks, counter
        self.token = uuid.uuid4().hex
        # a depth-variant PSF: where each chunk's block starts in z (its halo included)
        self.z_starts = tuple(int(s) for s in np.cumsum((0,) + tuple(z_chunks)))
        self.z_halo = int(z_halo)

    def _z_origin(self, block_info: Any) -> int:
        """The image plane of the block's first plane (0 for one PSF): map_overlap pads
        no chunk at the volume's first plane (boundary "none")."""
        if self.recipe.psf_depths is None or not block_info or 0 not in block_info:
            return 0
        i = int(block_info[0]["chunk-location"][0])
        return self.z_starts[i] - (self.z_halo if i > 0 else 0)

    def _deconvolver(self, shape: tuple[int, ...], z0: int = 0) -> Deconvolver:
        from rlcore.registry import get_backend

        key = (self.token, shape, z0, threading.get_ident())
        with _PLANS_LOCK:
            hit = _PLANS.get(key)
            if hit is not None:
                _PLANS.move_to_end(key)
                return hit
        be = get_backend(self.backend, device=self.device)
        made = self.recipe.deconvolver(shape, be, z_origin=z0)
        with _PLANS_LOCK:
            _PLANS[key] = made
            while len(_PLANS) > _KEEP:
                _PLANS.popitem(last=False)
        return made

    def _finished(self) -> None:
        with _PLANS_LOCK:
            _DONE[self.token] = _DONE.get(self.token, 0) + 1
            if _DONE[self.token] >= self.blocks:
                del _DONE[self.token]
                for key in [k for k in _PLANS if k[0] == self.token]:
                    del _PLANS[key]

    def __call__(self, block: np.ndarray, block_info: Any = None) -> np.ndarray:
        if block.size == 0:
            return np.zeros(block.shape, np.float32)
        try:
            deconvolver = self._deconvolver(tuple(block.shape), self._z_origin(block_info))
            result = self.recipe.run(deconvolver, np.asarray(block), callback=self.counter)
            return np.asarray(result, dtype=np.float32)
        finally:
            self._finished()


def run_dask(image: Any, recipe: Recipe, p: BlockPlan | None, *, backend: Any, device: Any,
             callback: Callable[[int, int], object] | None = None,
             progress: bool = False) -> Any:
    """A lazy ``dask.array`` of the result: ``map_overlap`` with depth = the plan's overlap.

    With ``p`` None the image's own chunks are the block cores and the overlap is
    :func:`rlcore.blocks.auto_overlap` on split axes. For ``"periodic"`` the halo at the volume's
    edges wraps around (``boundary="periodic"``); other modes leave edge blocks unpadded
    and their runs use the same boundary mode. ``callback`` and ``progress`` run while the
    result is computed (:class:`UpdateCounter`; total = iterations x blocks).
    """
    import dask.array as da

    if p is not None:  # the plan's block counts, cores spread evenly: no short last chunk
        # (map_overlap would merge a chunk shorter than the overlap into a larger block)
        image = image.rechunk(tuple(
            tuple(n // k + (1 if i < n % k else 0) for i in range(k))
            for n, k in zip(p.image_shape, p.counts)))
        overlap = p.overlap
    else:
        psf_shape = tuple(recipe.psf.shape)[-image.ndim:]  # a strata stack: one PSF's
        overlap = tuple(0 if len(c) == 1 else h
                        for c, h in zip(image.chunks, auto_overlap(psf_shape,
                                                               recipe.iterations, image.shape)))
    if recipe.psf_depths is not None and overlap[0]:
        # map_overlap rechunks chunks shorter than the overlap itself; done here, so the
        # chunks the blocks' depths are reckoned from are the ones it computes
        from dask.array.overlap import ensure_minimum_chunksize

        z_chunks = ensure_minimum_chunksize(overlap[0], image.chunks[0])
        if z_chunks != image.chunks[0]:
            image = image.rechunk({0: z_chunks})
    boundary = recipe.boundary
    blocks = int(np.prod([len(c) for c in image.chunks]))
    counter = UpdateCounter(callback, recipe.iterations * blocks, progress) \
        if callback is not None or progress else None
    fn = _DaskBlocks(backend, device, recipe, blocks, counter, image.chunks[0], overlap[0])
    depth = {a: o for a, o in enumerate(overlap)}
    edge = "periodic" if boundary == "periodic" else "none"
    return da.map_overlap(fn, image.astype(np.float32), depth=depth, boundary=edge,
                          trim=True, dtype=np.float32,
                          meta=np.empty((0,) * image.ndim, np.float32))
