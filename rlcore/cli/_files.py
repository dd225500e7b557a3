"""``rlcore deconvolve`` and ``rlcore batch``: images read, deconvolved and written (the
output complete or absent), a batch's next input read while one computes."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlcore.cli._options import _FORMATS, _version
from rlcore.cli._psfs import _PSFs

#: the errors a run reports as one line (exit status 2)
_EXPECTED = (ValueError, TypeError, FileNotFoundError, FileExistsError, OSError, MemoryError,
             ImportError)

_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".zarr", ".ome.zarr")


def _is_zarr_path(path: Path) -> bool:
    return str(path).lower().endswith(".zarr")


def _check_output(path: Path, overwrite: bool) -> None:
    """Before any computing: the output's format, folder and (without --overwrite) absence."""
    name = path.name.lower()
    if not name.endswith(_SUFFIXES):
        raise ValueError(f"output: {path} is not .tif, .ome.tif or .ome.zarr; rlcore writes "
                         "TIFF, OME-TIFF or OME-Zarr")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output: folder {path.parent} does not exist; create it "
                                "first")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    if name.endswith(".zarr"):
        try:
            import ome_zarr.writer  # noqa: F401
            import zarr  # noqa: F401
        except ImportError:
            raise ImportError(f"output: {path} is OME-Zarr, which needs ome-zarr and zarr: "
                              "pip install 'rlcore[dask]'") from None


def _with_psf_axes(image, axes: str, psf_ndim: int):
    """A single plane (read as (Y, X)) with a 3-D PSF: the plane as (1, Y, X), so that it
    is deconvolved by the PSF's in-focus plane and written back with its z axis."""
    import numpy as np

    spatial = sum(a in "zyx" for a in axes)
    if psf_ndim == 2 and "z" in axes:
        warnings.warn(f"psf: a 2-D PSF (Y, X) with an image that has a Z axis (shape "
                      f"{tuple(image.shape)}, {axes.upper()}): each plane is deconvolved in "
                      "2-D; pass a 3-D PSF (Z, Y, X) for a 3-D deconvolution",
                      UserWarning, stacklevel=1)
    if psf_ndim == 3 and spatial == 2:
        at = axes.index("y")
        return np.expand_dims(image, at), axes[:at] + "z" + axes[at:]
    return image, axes


def _image_background(value: float | str, image, path: Path) -> float:
    """``--background``: the number given, or the image's estimate (said on stderr)."""
    if value != "auto":
        return float(value)
    from rlcore.background import estimate

    level = estimate(image)
    print(f"rlcore: {path}: background {level:g} (estimated: the mode of its darker half; "
          "--background V sets it)", file=sys.stderr)
    return level


def _device(value: str | None):
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def _deconvolve(args: argparse.Namespace) -> int:
    _check_output(args.output, args.overwrite)
    if args.ngff_version and not args.output.name.lower().endswith(".zarr"):
        raise ValueError(f"--ngff-version: {args.output} is a TIFF; the OME-NGFF version "
                         "applies to an OME-Zarr output (.ome.zarr)")
    return _run_file(args, args.image, args.output, _PSFs(args))


def _deconvolve_kwargs(args: argparse.Namespace, background: float, auto: bool) -> dict:
    """The keyword arguments of :func:`rlcore.deconvolve` the options ask for."""
    blocks = dict(block_shape=tuple(args.block_shape) if args.block_shape else None,
                  overlap=tuple(args.overlap) if args.overlap else "auto",
                  max_memory=args.max_memory)
    extra = dict(max_iterations=args.max_iterations, gain=args.gain,
                 offset=background) if auto else {}
    return dict(backend=args.backend, boundary=args.boundary, device=_device(args.device),
                accelerate=args.accelerate if args.accelerate else "auto",
                back_projector=args.back_projector, tv=args.tv, **blocks, **extra)


def _prefetch(path: Path) -> None:
    """Read the bytes of ``path`` (a file) once and drop them, so that its reading by the
    next run comes from the page cache: ``batch``'s read-ahead, on a thread. Only bytes:
    no reader, no warnings filters or loggers (those are the process's state, not the
    thread's, and a reader's quieting of them would swallow the computing run's
    warnings); a file that cannot be read is left to the run to report."""
    if not path.is_file():
        return
    buffer = bytearray(16 << 20)
    try:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass
    except OSError:
        return


def _run_file(args: argparse.Namespace, path: Path, output: Path, psf_files: _PSFs,
              cache: dict | None = None) -> int:
    """One input through the options of ``args`` into ``output`` (``deconvolve`` and each
    file of ``batch``); ``cache``: Deconvolvers kept across files (``batch``) for plain
    runs."""
    import numpy as np

    import rlcore
    from rlcore import formats
    from rlcore.io import read_series, write_series

    # OME-Zarr stays lazy (dask); a vendor file (bioio) too when written to OME-Zarr (a
    # TIFF output holds the whole result anyway, and --uint16 needs its maximum)
    vendor = formats.is_vendor(path)
    image, axes, voxel = read_series(path, lazy=not vendor or _is_zarr_path(output))
    psfs, resampled = psf_files.for_image(voxel, path)
    image, axes = _with_psf_axes(image, axes, psfs[0].ndim)
    psf, channel_axis, strata = _psf_argument(args, psfs, image, axes, voxel)
    lazy = type(image).__module__.startswith("dask")
    if lazy and strata:  # depth-variant runs take arrays in memory (not Dask)
        image, lazy = np.asarray(image), False
    if lazy and args.uint16:
        raise ValueError("--uint16: needs the whole result's maximum; with an OME-Zarr "
                         "input, or a vendor file written to OME-Zarr (both read lazily), "
                         "write float32 (drop --uint16) or a TIFF")
    auto = args.iterations == "auto"
    background = _image_background(args.background, image, path)
    if background and not lazy and float(np.max(image)) <= background:
        raise ValueError(f"--background: {background:g} is at or above every voxel "
                         f"(maximum {float(np.max(image)):g}); the result would be all zero")
    if background and not auto:
        image = np.clip(image.astype(np.float32) - np.float32(background), 0, None)
    options = dict(_deconvolve_kwargs(args, background, auto), **strata)
    if args.dry_run:  # the plan of the same request the run would make
        return _dry_run(image, psf if strata else psfs[0], args.iterations, options)
    if lazy and not auto and set(axes) <= set("zyx") and _is_zarr_path(output):
        # OME-Zarr to OME-Zarr: blocks in this process within --max-memory, each core
        # written as it is done into a temporary OME-Zarr, moved into place when complete
        from rlcore.io import zarr_output

        with zarr_output(output, tuple(image.shape), axes, voxel,
                         overwrite=args.overwrite,  # a vendor file: one chunk a volume
                         chunks=None if vendor else image.chunksize,
                         ngff_version=args.ngff_version,
                         provenance=_provenance(args, path, background, resampled)) as out:
            rlcore.deconvolve(image, psf, args.iterations, progress=args.progress,
                              out=out, **options)
        print(f"wrote {output} {tuple(image.shape)} float32 ({axes.upper()}), in blocks")
        return 0
    plain = cache is not None and not (auto or lazy or strata or args.block_shape
                                       or args.max_memory)
    if plain:  # one Deconvolver per (frame shape, channel PSF) across the files
        result = _with_cached_plans(args, np.asarray(image), axes, psfs, cache)
    else:
        result = rlcore.deconvolve(image, psf, args.iterations, channel_axis=channel_axis,
                                   progress=args.progress and not lazy and cache is None,
                                   return_info=auto, **options)
    made = _provenance(args, path, background, resampled)
    if auto:  # the count the data chose, and the rule that chose it
        result, info = result
        print(f"rlcore: {path}: iterations auto: {info.iterations} updates "
              f"({info.stop_rule})", file=sys.stderr)
        made.update(iterations=info.iterations, iterations_rule=info.stop_rule)
    if lazy and not _is_zarr_path(output):
        result = result.compute()  # TIFF output: the whole result in memory
    if args.uint16:
        peak = float(result.max())
        scale = 65535.0 / peak if peak > 0 else 0.0
        result = np.round(result * scale).astype(np.uint16)
        made["uint16_scale"] = scale  # result = float32 estimate x this
    write_series(output, result, axes, voxel, overwrite=args.overwrite,  # zarr: by chunk
                 ngff_version=args.ngff_version, provenance=made)
    if cache is None:
        print(f"wrote {output} {result.shape} {result.dtype} ({axes.upper()})")
    return 0


def _psf_argument(args: argparse.Namespace, psfs: list, image: Any, axes: str,
                  voxel: Any) -> tuple[Any, int | None, dict]:
    """The ``psf`` argument of :func:`rlcore.deconvolve` for these PSF files, the
    image's channel axis, and ``psf_depths`` when the files are a depth-variant PSF's
    strata (``--psf-depths`` / ``--psf-depths-um``)."""
    channel_axis = axes.index("c") if "c" in axes else None
    depths = _strata_depths(args, len(psfs), voxel)
    if depths is not None:  # one stack for every channel
        return list(psfs), channel_axis, {"psf_depths": depths}
    if len(psfs) > 1 and channel_axis is None:
        raise ValueError(f"psf: {len(psfs)} PSFs but the image ({axes}, shape "
                         f"{tuple(image.shape)}) has no C axis; pass one PSF, or one per "
                         "depth with --psf-depths (a depth-variant PSF)")
    if channel_axis is not None and len(psfs) not in (1, image.shape[channel_axis]):
        raise ValueError(f"psf: {len(psfs)} PSFs for {image.shape[channel_axis]} channels; "
                         "pass one PSF, or one per channel")
    return (psfs if len(psfs) > 1 else psfs[0]), channel_axis, {}


def _strata_depths(args: argparse.Namespace, count: int, voxel: Any
                   ) -> tuple[float, ...] | None:
    """``--psf-depths`` (planes of the image's z axis) or ``--psf-depths-um`` (microns
    below the image's first plane, by its z voxel size), one per PSF file; None without
    either."""
    planes, microns = args.psf_depths, args.psf_depths_um
    if planes is None and microns is None:
        return None
    if planes is not None and microns is not None:
        raise ValueError("--psf-depths, --psf-depths-um: give one of them")
    if microns is not None:
        if voxel.z is None:
            raise ValueError("--psf-depths-um: the image states no z voxel size; give the "
                             "depths in planes with --psf-depths")
        planes = [d / voxel.z for d in microns]
    flag = "--psf-depths" if microns is None else "--psf-depths-um"
    if len(planes) != count:
        raise ValueError(f"{flag}: {len(planes)} depths for {count} PSF(s); give one "
                         "depth per PSF file, in the files' order, or one file of the "
                         "strata (K, Z, Y, X) and its K depths")
    return tuple(float(d) for d in planes)


def _provenance(args: argparse.Namespace, path: Path, background: float,
                resampled: str | None = None) -> dict:
    """How the output is made, written into it (:func:`rlcore.io.read_provenance`);
    ``resampled``: how the PSF was resampled (:meth:`_PSFs.for_image`)."""
    from datetime import datetime, timezone

    psf = "as given" if args.no_center_psf else "centred on voxel n // 2 (rlcore.psf.centered)"
    bg = args.psf_background
    return {"rlcore": _version(), "input": str(path),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "iterations": args.iterations, "iterations_rule": "fixed count",
            "psf": [str(p) for p in args.psf],
            "psf_preparation": f"{psf}, background "
                               f"{'estimated from its border' if bg is None else bg}"
                               + (f"; {resampled}" if resampled else ""),
            "boundary": args.boundary, "background": background,
            "accelerate": args.accelerate or None, "back_projector": args.back_projector,
            "tv": args.tv, "backend": args.backend}


def _with_cached_plans(args: argparse.Namespace, image, axes: str, psfs: list, cache: dict):
    """``image`` deconvolved through the Deconvolver of its frame shape and channel's PSF
    (made once per batch): the same result as ``rlcore.deconvolve``."""
    import rlcore
    from rlcore._request import resolve_fixed
    from rlcore.series import map_channels

    frame = tuple(int(n) for n in image.shape[-psfs[0].ndim:])
    accelerate, back = resolve_fixed(args.accelerate or "auto", args.back_projector)

    def deconvolver(c: int) -> rlcore.Deconvolver:
        index = c if len(psfs) > 1 else 0
        # the PSF itself in the key: one resampled per image voxel size (_PSFs keeps each,
        # so its id stays its own for the whole batch)
        key = (frame, index, id(psfs[index]))
        if key not in cache:
            cache[key] = rlcore.Deconvolver(
                psfs[index], frame, args.iterations, backend=args.backend,
                device=_device(args.device), boundary=args.boundary,
                accelerate=accelerate, back_projector=back, tv=args.tv)
        return cache[key]

    if "c" in axes:
        channels = image.shape[axes.index("c")]
        return map_channels(image, list(range(channels)), axes.index("c"),
                            lambda channel, c: deconvolver(c).run(channel))
    return deconvolver(0).run(image)


def _inputs(patterns: Sequence[str]) -> list[Path]:
    import glob

    files: list[Path] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not found:
            raise FileNotFoundError(f"inputs: nothing matches {pattern!r}")
        files.extend(Path(f) for f in found)
    return files


def _target(folder: Path, path: Path, fmt: str) -> Path:
    """Where ``batch`` writes the result of ``path``: its name in ``folder``, in the
    input's format (``fmt`` "input"; a vendor file as OME-TIFF) or in ``fmt``'s."""
    from rlcore import formats

    vendor = formats.is_vendor(path)
    if fmt == "input" and not vendor:
        return folder / path.name
    name = path.name
    known = next((s for s in _SUFFIXES[::-1] if name.lower().endswith(s)), None)
    stem = name[:-len(known)] if known else (path.stem if vendor else name)
    return folder / (stem + _FORMATS["ome-tiff" if fmt == "input" else fmt])


def _batch(args: argparse.Namespace) -> int:
    """Every input with the options of ``deconvolve`` (one option table); plain runs share
    one :class:`rlcore.Deconvolver` per (frame shape, channel PSF); the next input's bytes
    are read on a thread while one computes (:func:`_prefetch`); each warning and error
    names its file."""
    files = _inputs(args.inputs)
    args.output.mkdir(parents=True, exist_ok=True)
    targets = [_target(args.output, f, args.format) for f in files]
    clash = [t for t in targets if t.exists()]
    if clash and not args.overwrite and not args.dry_run:  # before any computing
        raise FileExistsError(f"{clash[0]} exists (and {len(clash) - 1} more); pass "
                              "--overwrite to replace them")
    if len(set(targets)) != len(targets):
        raise ValueError("inputs: two inputs have the same file name; the output folder "
                         "would hold one of them")
    psf_files = _PSFs(args)
    cache: dict = {}
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    bar = tqdm(total=len(files), unit="file", disable=not args.progress)
    # the next input's bytes are read on a thread while this one computes (_prefetch)
    with ThreadPoolExecutor(1, thread_name_prefix="rlcore-read") as reader:
        for i, (path, target) in enumerate(zip(files, targets)):
            if i + 1 < len(files) and not args.dry_run:
                reader.submit(_prefetch, files[i + 1])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    _run_file(args, path, target, psf_files, cache)
                except (*_EXPECTED,) as exc:
                    said = str(exc)  # named once: most errors of a read name the file
                    raise type(exc)(said if said.startswith(f"{path}:")
                                    else f"{path}: {said}") from exc
                finally:
                    for w in caught:
                        print(f"rlcore: warning: {path}: {w.message}", file=sys.stderr)
            bar.update(1)
    bar.close()
    if not args.dry_run:
        print(f"wrote {len(files)} files to {args.output} ({len(cache)} plan(s))")
    return 0


def _dry_run(image, psf, iterations, options: dict) -> int:
    """Print the backend and the plan of blocks that ``deconvolve(image, psf, iterations,
    **options)`` would use (one frame: series run frame by frame)."""
    from rlcore.api import block_plan

    be, p = block_plan(image, psf, iterations, **options)
    shape = tuple(image.shape)[-psf.ndim:]
    print(f"backend {be.name} on {be.device}: {be.memory().free / 2**30:.1f} GiB free")
    print(f"image {shape}, PSF {tuple(psf.shape)}, boundary {options['boundary']}")
    print(f"plan: {p}")
    return 0
