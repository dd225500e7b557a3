"""Golden corpus: what the public faces return, recorded once and compared bit for bit.

``python -m bench.golden record DIR`` runs every case below on the numpy backend and stores
each result array (``DIR/arrays.npz``) and everything else a caller can see (result kind,
dtype, shape, ``repr(RunInfo)``, warnings, exception type and message, callback calls, the
CLI's exit status and printed lines) in ``DIR/meta.json``. ``python -m bench.golden check
DIR`` runs the same cases and reports every difference (``np.array_equal`` on arrays,
equality on the rest); exit status 1 when anything differs.

Used to keep a refactor of the orchestration behaviour-preserving: record at the base
commit before any edit, check after each step. Only public names are called, so the script
runs unchanged on both sides. Paths in messages are replaced by ``<tmp>``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BOUNDARIES = ("periodic", "zero", "reflect", "non-circulant", "non-circulant-half")
VARIANTS: dict[str, dict] = {
    "plain": {},
    "biggs": {"accelerate": True},
    "momentum": {"accelerate": "momentum"},
    "wb": {"back_projector": "wiener-butterworth"},
    "omw": {"back_projector": "otf-masked"},
    "tv": {"tv": 0.002},
    "wb-momentum": {"accelerate": "momentum", "back_projector": "wiener-butterworth"},
}


def _data() -> dict[str, np.ndarray]:
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(20261202)
    z, y, x = np.mgrid[-2:3, -3:4, -3:4]
    psf = np.exp(-(z * z / 2.0 + (y - 0.3) ** 2 / 3.0 + x * x / 2.5)).astype(np.float32)
    obj = np.zeros((10, 20, 18), np.float32)
    obj[rng.integers(0, 10, 12), rng.integers(0, 20, 12), rng.integers(0, 18, 12)] = 200.0
    obj[3:6, 5:9, 4:12] += 20.0
    blurred = np.clip(fftconvolve(obj, psf / psf.sum(), mode="same"), 0, None)
    image = rng.poisson(blurred + 2.0).astype(np.float32)
    psf2 = psf[2]
    image2 = rng.poisson(np.clip(fftconvolve(obj[4] * 3, psf2 / psf2.sum(), mode="same"), 0,
                                 None) + 1.0).astype(np.float32)
    even = np.exp(-(np.mgrid[-2:2, -3:3, -3:3] ** 2).sum(0) / 3.0).astype(np.float32)
    frames = np.stack([image, image[::-1].copy(), np.roll(image, 3, axis=2)])
    big = np.zeros((24, 64, 60), np.float32)  # large enough to be cut into blocks
    big[rng.integers(0, 24, 60), rng.integers(0, 64, 60), rng.integers(0, 60, 60)] = 300.0
    big[5:15, 20:40, 10:50] += 15.0
    big = rng.poisson(np.clip(fftconvolve(big, psf / psf.sum(), mode="same"), 0, None)
                      + 2.0).astype(np.float32)
    return {"big": big, "image": image, "psf": psf, "image2": image2, "psf2": psf2, "even": even,
            "frames": frames, "uint16": (image * 7 + 100).astype(np.uint16)}


class Recorder:
    """Runs cases and keeps what each shows."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.arrays: dict[str, np.ndarray] = {}
        self.meta: dict[str, Any] = {}

    def _clean(self, text: str) -> str:
        """Paths and the free memory (machine state) masked."""
        import re

        text = text.replace(str(self.tmp), "<tmp>")
        return re.sub(r"[0-9.]+ (GiB|MiB) free", r"<n> \1 free", text)

    def case(self, name: str, fn: Callable[[list], Any]) -> None:
        """``fn(calls)`` (``calls`` collects callback arguments) -> a result, a
        ``(result, info)`` pair, or an exception."""
        calls: list = []
        entry: dict[str, Any] = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = fn(calls)
            except Exception as exc:  # noqa: BLE001 - the corpus records it
                entry["error"] = [type(exc).__name__, self._clean(str(exc))]
                out = None
        entry["warnings"] = [[w.category.__name__, self._clean(str(w.message))]
                             for w in caught]
        if calls:
            entry["calls"] = [list(c) for c in calls]
        if out is not None:
            if isinstance(out, tuple) and len(out) == 2 and not hasattr(out, "shape"):
                out, info = out
                entry["info"] = repr(info)
            entry["kind"] = type(out).__module__.split(".")[0] + "." + type(out).__name__
            arr = out.compute() if hasattr(out, "compute") and not isinstance(
                out, np.ndarray) else out
            arr = np.asarray(arr[...] if not isinstance(arr, np.ndarray) else arr)
            entry["dtype"], entry["shape"] = str(arr.dtype), list(arr.shape)
            self.arrays[name] = arr
        self.meta[name] = entry


def cases(rec: Recorder) -> None:  # noqa: C901 - one list of cases
    import rlcore

    d = _data()
    image, psf = d["image"], d["psf"]

    def dec(*args, **kw):
        kw.setdefault("backend", "numpy")
        return lambda calls: rlcore.deconvolve(*args, **kw)

    def with_cb(*args, **kw):
        kw.setdefault("backend", "numpy")
        return lambda calls: rlcore.deconvolve(
            *args, callback=lambda k, n: calls.append((k, n)), **kw)

    # boundaries x iterations x variants
    for b in BOUNDARIES:
        for vname, v in VARIANTS.items():
            rec.case(f"grid/{b}/7/{vname}", dec(image, psf, 7, boundary=b, return_info=True,
                                                **v))
            rec.case(f"grid/{b}/auto/{vname}",
                     dec(image, psf, "auto", boundary=b, return_info=True, max_iterations=40,
                         **v))
        rec.case(f"grid/{b}/2d", dec(d["image2"], d["psf2"], 5, boundary=b, return_info=True))
        rec.case(f"grid/{b}/even", dec(image, d["even"], 5, boundary=b, return_info=True))
        rec.case(f"grid/{b}/0", dec(image, psf, 0, boundary=b, return_info=True))
    # auto's options
    rec.case("auto/offset", dec(d["uint16"], psf, "auto", offset=100, return_info=True))
    rec.case("auto/gain", dec(image, psf, "auto", gain=1.0, return_info=True))
    rec.case("auto/gain-offset", dec(image, psf, "auto", gain=2.0, offset=1.0,
                                     return_info=True, max_iterations=15))
    rec.case("auto/max", dec(image, psf, "auto", max_iterations=3, return_info=True))
    rec.case("auto/callback", with_cb(image, psf, "auto", return_info=True,
                                      max_iterations=20))
    rec.case("auto/init-flat", dec(image, psf, "auto", init="flat", return_info=True))
    rec.case("auto/tv", dec(image, psf, "auto", tv=0.001, return_info=True))
    rec.case("auto/uint16", dec(d["uint16"], psf, "auto", return_info=True))
    # options of a fixed count
    rec.case("opt/offset", dec(image, psf, 7, offset=3.5, return_info=True))
    rec.case("opt/tol", dec(image, psf, 50, tol=1e-2, return_info=True))
    rec.case("opt/tol-momentum", dec(image, psf, 50, tol=1e-2, accelerate="momentum",
                                     return_info=True))
    rec.case("opt/init-flat", dec(image, psf, 7, init="flat"))
    rec.case("opt/init-const", dec(image, psf, 7, init=2.0))
    rec.case("opt/init-array", dec(image, psf, 7, init=np.full(image.shape, 3.0)))
    rec.case("opt/init-flat-nc", dec(image, psf, 7, init="flat", boundary="non-circulant"))
    rec.case("opt/callback", with_cb(image, psf, 4))
    rec.case("opt/accelerate-auto", dec(image, psf, 7, accelerate="auto",
                                        back_projector="auto"))
    rec.case("opt/accelerate-none", dec(image, psf, 7, accelerate=None))
    rec.case("opt/wb-alpha", dec(image, psf, 5, back_projector=rlcore.backprojector.check(
        "wiener-butterworth", alpha=0.1)))
    rec.case("opt/negative", dec(image - 3.0, psf, 5))
    rec.case("opt/uint16", dec(d["uint16"], psf, 5, return_info=True))
    rec.case("opt/float64", dec(image.astype(np.float64), psf, 5))
    rec.case("opt/threads", dec(image, psf, 5, device=1, return_info=True))
    rec.case("opt/big-psf", dec(d["image2"][:6, :6], d["psf2"], 3))
    # inputs
    rec.case("in/list", dec(image.tolist(), psf.tolist(), 5))
    rec.case("in/list-auto", dec(image.tolist(), psf, "auto", max_iterations=10))
    with contextlib.suppress(ImportError):
        import array_api_strict as xps

        rec.case("in/strict", lambda c: rlcore.deconvolve(xps.asarray(image), psf, 5,
                                                          return_info=True))
        rec.case("in/strict-nc", lambda c: rlcore.deconvolve(
            xps.asarray(image), psf, 5, boundary="non-circulant"))
        rec.case("in/strict-auto", lambda c: rlcore.deconvolve(
            xps.asarray(image), psf, "auto", max_iterations=10))
        rec.case("in/strict-blocks", lambda c: rlcore.deconvolve(
            xps.asarray(d["big"]), psf, 5, block_shape=(12, 32, 30), return_info=True))
        rec.case("in/strict-convolve", lambda c: rlcore.convolve(xps.asarray(image), psf))
    with contextlib.suppress(ImportError):
        import dask.array as da

        dimg = da.from_array(image, chunks=(5, 10, 9))
        dbig = da.from_array(d["big"], chunks=(12, 32, 30))
        rec.case("in/dask-big", dec(dbig, psf, 4, return_info=True))
        rec.case("in/dask-big-nc", dec(dbig, psf, 4, boundary="non-circulant",
                                       return_info=True))
        rec.case("in/dask-big-reflect", dec(dbig, psf, 4, boundary="reflect"))
        rec.case("in/dask-big-plan", dec(dbig, psf, 4, block_shape=(24, 20, 20),
                                         return_info=True))
        rec.case("in/dask-big-callback", with_cb(dbig, psf, 2))
        rec.case("in/dask", dec(dimg, psf, 5, return_info=True))
        rec.case("in/dask-nc", dec(dimg, psf, 5, boundary="non-circulant-half"))
        rec.case("in/dask-blocks", dec(dimg, psf, 5, block_shape=(6, 12, 10),
                                       return_info=True))
        rec.case("in/dask-overlap", dec(dimg, psf, 5, overlap=3, return_info=True))
        rec.case("in/dask-memory", dec(dimg, psf, 5, max_memory=2_000_000, return_info=True))
        rec.case("in/dask-offset", dec(dimg, psf, 5, offset=2.0))
        rec.case("in/dask-auto", dec(dimg, psf, "auto"))
        rec.case("in/dask-series", dec(da.from_array(d["frames"], chunks=(1, 5, 10, 9)),
                                       psf, 4, return_info=True))
        out = np.zeros(image.shape, np.float32)
        rec.case("in/dask-out", lambda c: rlcore.deconvolve(dimg, psf, 5, out=out,
                                                            backend="numpy"))

    big = d["big"]
    mm_in = np.lib.format.open_memmap(rec.tmp / "in.npy", "w+", np.float32, big.shape)
    mm_in[...] = big
    mm_out = np.lib.format.open_memmap(rec.tmp / "out.npy", "w+", np.float32, big.shape)
    rec.case("in/memmap-out", lambda c: (rlcore.deconvolve(
        mm_in, psf, 5, out=mm_out, backend="numpy", return_info=True, max_memory=2_000_000),
        np.array(mm_out))[0])
    with contextlib.suppress(ImportError):
        import zarr

        zin = zarr.open(str(rec.tmp / "in.zarr"), mode="w", shape=big.shape,
                        chunks=(12, 32, 30), dtype="f4")
        zin[...] = big
        zout = zarr.open(str(rec.tmp / "out.zarr"), mode="w", shape=big.shape,
                         chunks=(12, 32, 30), dtype="f4")

        def zarr_case(c):
            res, info = rlcore.deconvolve(zin, psf, 5, out=zout, backend="numpy",
                                          block_shape=(12, 32, 30), return_info=True,
                                          boundary="non-circulant-half")
            return np.asarray(zout[...]), info

        rec.case("in/zarr-out", zarr_case)
        rec.case("in/zarr-complete", lambda c: np.asarray([bool(zout.attrs["rlcore_complete"])]))
    # blocks
    big = d["big"]
    for b in BOUNDARIES:
        rec.case(f"blocks/{b}", dec(big, psf, 5, boundary=b, block_shape=(12, 32, 30),
                                    return_info=True))
    rec.case("blocks/auto", dec(big, psf, 5, block_shape="auto", return_info=True))
    rec.case("blocks/memory", dec(big, psf, 5, max_memory=2_000_000, return_info=True))
    rec.case("blocks/overlap", dec(big, psf, 5, block_shape=(12, 32, 30), overlap=2,
                                   return_info=True))
    rec.case("blocks/out", lambda c: rlcore.deconvolve(
        big, psf, 5, block_shape=(12, 32, 30), out=np.zeros(big.shape, np.float32),
        backend="numpy"))
    rec.case("blocks/devices", dec(big, psf, 5, device=[1, 2], return_info=True))
    rec.case("blocks/devices-nc", dec(big, psf, 5, device=[1, 2], block_shape=(12, 32, 30),
                                      boundary="non-circulant", return_info=True))
    rec.case("blocks/callback", with_cb(big, psf, 3, block_shape=(12, 32, 30)))
    rec.case("blocks/momentum", dec(big, psf, 5, block_shape=(12, 32, 30),
                                    accelerate="momentum", back_projector="wiener-butterworth"))
    rec.case("blocks/offset", dec(big, psf, 5, block_shape=(12, 32, 30), offset=2.5))
    # series and channels
    frames = d["frames"]
    rec.case("series/frames", dec(frames, psf, 4, return_info=True))
    rec.case("series/frames-callback", with_cb(frames, psf, 2, return_info=True))
    rec.case("series/frames-nc", dec(frames, psf, 4, boundary="non-circulant-half",
                                     offset=1.0))
    rec.case("series/frames-auto", dec(frames, psf, "auto", return_info=True,
                                       max_iterations=15))
    rec.case("series/frames-blocks", dec(frames, psf, 3, block_shape=(6, 12, 10),
                                         return_info=True))
    rec.case("series/big-frames-blocks", dec(np.stack([big, big[::-1]]), psf, 3,
                                             block_shape=(12, 32, 30), return_info=True))
    rec.case("series/big-frames-devices", dec(np.stack([big, big[::-1]]), psf, 2,
                                              device=[1, 2], block_shape=(12, 32, 30)))
    rec.case("series/tc", dec(frames.reshape(3, 1, *image.shape), psf, 3, return_info=True))
    rec.case("series/channels", dec(frames[:2].transpose(1, 0, 2, 3).copy(), [psf, d["even"]],
                                    4, channel_axis=1, return_info=True))
    rec.case("series/channels-one-psf", dec(frames, psf, 4, channel_axis=0))
    rec.case("series/2d-frames", dec(np.stack([d["image2"]] * 2), d["psf2"], 4))
    # Deconvolver, convolve, the compat layers
    def deconvolver(c, **kw):
        with rlcore.Deconvolver(psf, image.shape, 6, backend="numpy", **kw) as rl:
            return np.stack([rl.run(image), rl.run(image * 2)])

    rec.case("plan/run", deconvolver)
    rec.case("plan/nc-momentum", lambda c: deconvolver(c, boundary="non-circulant",
                                                       accelerate="momentum"))
    rec.case("plan/series", lambda c: rlcore.Deconvolver(psf, image.shape, 4,
                                                         backend="numpy").run(frames))
    rec.case("plan/info", lambda c: rlcore.Deconvolver(psf, image.shape, 4, backend="numpy",
                                                       tol=0.05).run(image, return_info=True))
    for b in ("periodic", "zero"):
        for adj in (False, True):
            rec.case(f"convolve/{b}/{adj}", lambda c, b=b, adj=adj: rlcore.convolve(
                image, psf, boundary=b, adjoint=adj, backend="numpy"))
    rec.case("convolve/even", lambda c: rlcore.convolve(image, d["even"], boundary="zero"))
    rec.case("convolve/reflect", lambda c: rlcore.convolve(image, psf, boundary="reflect"))
    rec.case("skimage/default", lambda c: rlcore.richardson_lucy(image / image.max(), psf, 7))
    rec.case("skimage/eps", lambda c: rlcore.richardson_lucy(image, psf, 7, clip=False,
                                                             filter_epsilon=1e-3))
    with contextlib.suppress(ImportError):
        from rlcore.compat import redlionfish as rlf

        rec.case("redlionfish/cpu", lambda c: rlf.doRLDeconvolutionFromNpArrays(
            image, psf, niter=5, method="cpu"))
    # errors
    bad = {
        "nan": lambda: rlcore.deconvolve(np.full((4, 4), np.nan), np.ones((3, 3))),
        "empty": lambda: rlcore.deconvolve(np.zeros((0, 4)), np.ones((3, 3))),
        "complex": lambda: rlcore.deconvolve(np.zeros((4, 4), complex), np.ones((3, 3))),
        "psf-sum": lambda: rlcore.deconvolve(image, -np.ones((3, 3, 3))),
        "psf-axes": lambda: rlcore.deconvolve(image[0], psf),
        "iterations-neg": lambda: rlcore.deconvolve(image, psf, -1),
        "iterations-type": lambda: rlcore.deconvolve(image, psf, 2.5),
        "iterations-str": lambda: rlcore.deconvolve(image, psf, "many"),
        "boundary": lambda: rlcore.deconvolve(image, psf, 2, boundary="wrap"),
        "backend": lambda: rlcore.deconvolve(image, psf, 2, backend="nope"),
        "init": lambda: rlcore.deconvolve(image, psf, 2, init="zeros"),
        "init-shape": lambda: rlcore.deconvolve(image, psf, 2, init=np.ones((2, 2, 2))),
        "tv": lambda: rlcore.deconvolve(image, psf, 2, tv=0.5),
        "tol": lambda: rlcore.deconvolve(image, psf, 2, tol=2.0),
        "accelerate": lambda: rlcore.deconvolve(image, psf, 2, accelerate="fast"),
        "back-projector": lambda: rlcore.deconvolve(image, psf, 2, back_projector="x"),
        "callback": lambda: rlcore.deconvolve(image, psf, 2, callback=3),
        "auto-blocks": lambda: rlcore.deconvolve(image, psf, "auto", block_shape=(6, 6, 6)),
        "auto-out": lambda: rlcore.deconvolve(image, psf, "auto", out=np.zeros(image.shape)),
        "auto-gain": lambda: rlcore.deconvolve(image, psf, "auto", gain=-1.0),
        "auto-max": lambda: rlcore.deconvolve(image, psf, "auto", max_iterations=0),
        "offset-type": lambda: rlcore.deconvolve(image, psf, 2, offset="a"),
        "tol-blocks": lambda: rlcore.deconvolve(image, psf, 2, tol=0.1, block_shape=(6, 6, 6)),
        "init-blocks": lambda: rlcore.deconvolve(image, psf, 2, init="flat",
                                                 block_shape=(6, 6, 6)),
        "memory": lambda: rlcore.deconvolve(image, psf, 2, max_memory=1000),
        "block-type": lambda: rlcore.deconvolve(image, psf, 2, block_shape=(6.5, 6, 6)),
        "devices-empty": lambda: rlcore.deconvolve(image, psf, 2, device=[]),
        "device-type": lambda: rlcore.deconvolve(image, psf, 2, device="gpu",
                                                 backend="numpy"),
        "channel-axis": lambda: rlcore.deconvolve(frames, psf, 2, channel_axis=7),
        "channel-type": lambda: rlcore.deconvolve(frames, psf, 2, channel_axis=1.0),
        "channel-count": lambda: rlcore.deconvolve(frames, [psf, psf], 2, channel_axis=0),
        "channel-out": lambda: rlcore.deconvolve(frames, psf, 2, channel_axis=0,
                                                 out=np.zeros(frames.shape)),
        "psf-sequence": lambda: rlcore.deconvolve(frames, [psf, psf, psf], 2),
        "frames-out": lambda: rlcore.deconvolve(frames, psf, 2, out=np.zeros(frames.shape)),
        "string": lambda: rlcore.deconvolve("image.tif", psf, 2),
        "plan-shape": lambda: rlcore.Deconvolver(psf, image.shape, 2).run(image[:5]),
        "plan-auto": lambda: rlcore.Deconvolver(psf, image.shape, "auto"),
        "convolve-nc": lambda: rlcore.convolve(image, psf, boundary="non-circulant"),
    }
    for name, fn in bad.items():
        rec.case(f"error/{name}", lambda c, fn=fn: fn())
    # the command line
    import tifffile

    tifffile.imwrite(rec.tmp / "im.tif", d["uint16"])
    tifffile.imwrite(rec.tmp / "psf.tif", (psf * 1000 + 5).astype(np.uint16))
    tifffile.imwrite(rec.tmp / "big.tif", d["big"])
    tifffile.imwrite(rec.tmp / "frames.tif", frames.astype(np.float32), imagej=True,
                     metadata={"axes": "TZYX"})
    from rlcore.cli import main

    def cli(args: list[str], output: str | None = None):
        def run(c):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main([a.replace("<tmp>", str(rec.tmp)) for a in args])
                except SystemExit as exc:
                    rc = exc.code
            c.append(("rc", rc))
            for line in (out.getvalue() + err.getvalue()).splitlines():
                c.append(("line", rec._clean(line)))
            if output and rc == 0:
                return tifffile.imread(rec.tmp / output)
            return None
        return run

    base = ["deconvolve", "<tmp>/im.tif", "<tmp>/psf.tif", "--backend", "numpy",
            "--overwrite"]
    rec.case("cli/default", cli(base + ["-o", "<tmp>/o1.tif"], "o1.tif"))
    rec.case("cli/periodic", cli(base + ["-o", "<tmp>/o2.tif", "--boundary", "periodic",
                                         "--background", "100", "-n", "5"], "o2.tif"))
    rec.case("cli/auto", cli(base + ["-o", "<tmp>/o3.tif", "-n", "auto", "--background",
                                     "100", "--max-iterations", "30"], "o3.tif"))
    rec.case("cli/psf-background", cli(base + ["-o", "<tmp>/o4.tif", "--psf-background", "5",
                                               "-n", "4"], "o4.tif"))
    rec.case("cli/no-center", cli(base + ["-o", "<tmp>/o5.tif", "--no-center-psf", "-n", "4",
                                          "--uint16"], "o5.tif"))
    big_base = ["deconvolve", "<tmp>/big.tif", "<tmp>/psf.tif", "--backend", "numpy",
                "--overwrite"]
    rec.case("cli/blocks", cli(big_base + ["-o", "<tmp>/o6.tif", "--block-shape", "12", "32",
                                           "30", "-n", "4"], "o6.tif"))
    rec.case("cli/dry-run", cli(big_base + ["-o", "<tmp>/o7.tif", "--block-shape", "12",
                                            "32", "30", "--dry-run"]))
    rec.case("cli/dry-run-memory", cli(big_base + ["-o", "<tmp>/o8.tif", "--max-memory",
                                                   "3M", "--dry-run"]))
    rec.case("cli/dry-run-auto", cli(big_base + ["-o", "<tmp>/o8.tif", "--max-memory",
                                                 "3M", "--dry-run", "-n", "auto",
                                                 "--accelerate", "momentum"]))
    rec.case("cli/memory", cli(big_base + ["-o", "<tmp>/o12.tif", "--max-memory", "3M",
                                           "-n", "3", "--boundary", "periodic"], "o12.tif"))
    rec.case("cli/accelerate", cli(base + ["-o", "<tmp>/o9.tif", "--accelerate", "-n", "4",
                                           "--back-projector", "wiener-butterworth"],
                                   "o9.tif"))
    rec.case("cli/frames", cli(["deconvolve", "<tmp>/frames.tif", "<tmp>/psf.tif",
                                "--backend", "numpy", "--overwrite", "-n", "3", "-o",
                                "<tmp>/o10.tif"], "o10.tif"))
    rec.case("cli/batch", cli(["batch", "<tmp>/im.tif", "--psf", "<tmp>/psf.tif", "-o",
                               "<tmp>/batch", "--backend", "numpy", "--overwrite", "-n", "3"],
                              "batch/im.tif"))
    rec.case("cli/bad-psf", cli(base + ["-o", "<tmp>/o11.tif"][:0] + ["-o", "<tmp>/o11.tif",
                                                                      "--tv", "0.9"]))


#: changes made on purpose since the base, each with the normalisation that removes it
#: (applied to both sides before comparing) and why; the check reports them apart
INTENDED = {
    "RunInfo of Dask and frame-by-frame runs names the device that ran (it said 'None')":
        (("info",), r"device='[^']*'", "device=<d>"),
    "RunInfo says the offset subtracted (a new field)":
        (("info",), r", offset=[-0-9.e+]+\)$", ")"),
}


def _intended(key: str, old: Any, new: Any) -> str | None:
    """The reason ``old`` -> ``new`` is an intended change, or None."""
    import re

    for why, (keys, pattern, repl) in INTENDED.items():
        if key in keys and isinstance(old, str) and isinstance(new, str) and \
                re.sub(pattern, repl, old) == re.sub(pattern, repl, new):
            return why
    return None


def _run_all() -> Recorder:
    import logging

    logging.disable(logging.CRITICAL)
    tmp = Path(tempfile.mkdtemp(prefix="rlcore-golden-"))
    rec = Recorder(tmp)
    cases(rec)
    return rec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("record", "check"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("-k", default=None, help="only cases whose name contains this")
    args = parser.parse_args(argv)
    rec = _run_all()
    if args.mode == "record":
        args.folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.folder / "arrays.npz", **{
            k.replace("/", "|"): v for k, v in rec.arrays.items()})
        (args.folder / "meta.json").write_text(json.dumps(rec.meta, indent=1, sort_keys=True))
        print(f"recorded {len(rec.meta)} cases ({len(rec.arrays)} arrays) in {args.folder}")
        return 0
    meta = json.loads((args.folder / "meta.json").read_text())
    with np.load(args.folder / "arrays.npz") as z:
        arrays = {k.replace("|", "/"): z[k] for k in z.files}
    bad, intended = 0, {}
    for name in sorted(set(meta) | set(rec.meta)):
        if name not in meta or name not in rec.meta:
            print(f"MISSING {name}: {'new' if name not in meta else 'gone'}")
            bad += 1
            continue
        old, new = meta[name], json.loads(json.dumps(rec.meta[name]))
        differs = False
        for key in sorted(set(old) | set(new)):
            if old.get(key) == new.get(key):
                continue
            why = _intended(key, old.get(key), new.get(key))
            if why is not None:
                intended.setdefault(why, []).append(name)
                continue
            differs = True
            print(f"DIFF {name} [{key}]:\n   was {old.get(key)!r}\n   now {new.get(key)!r}")
        bad += differs
        if (name in arrays) != (name in rec.arrays) or (
                name in arrays and not np.array_equal(arrays[name], rec.arrays[name],
                                                      equal_nan=True)):
            bad += 1
            a, b = arrays.get(name), rec.arrays.get(name)
            detail = ""
            if a is not None and b is not None and a.shape == b.shape:
                detail = f" max |diff| {np.abs(a.astype(float) - b).max():.3g}"
            print(f"ARRAY {name} differs{detail}")
    for why, names in intended.items():
        print(f"intended: {why}: {len(names)} cases ({', '.join(names[:4])}, ...)")
    print(f"{len(rec.meta)} cases, {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
