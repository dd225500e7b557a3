"""``rlcore psf`` (a PSF from a model or beads), ``rlcore info`` (backends and devices)
and ``rlcore sample`` (the shipped sample written to files)."""

from __future__ import annotations

import argparse
import platform
import shutil


def _psf(args: argparse.Namespace) -> int:
    from rlcore import psf as psf_tools
    from rlcore.io import VoxelSize, read_image, write_image

    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    voxel = None
    if args.psf_command == "distill":
        beads, voxel = read_image(args.beads)
        result, found = psf_tools.distill(beads, args.shape, threshold=args.threshold,
                                          iterations=args.iterations, return_beads=True)
        print(f"{len(found)} bead(s) at (z, y, x) "
              + ", ".join(f"({', '.join(f'{v:.1f}' for v in c)})" for c in found[:10])
              + (" ..." if len(found) > 10 else ""))
    elif args.psf_command == "gaussian":
        result = psf_tools.gaussian(args.shape, args.sigma)
    else:
        voxel = VoxelSize(*args.voxel_size)
        result = psf_tools.widefield(args.shape, args.voxel_size, na=args.na,
                                     wavelength=args.wavelength, ni=args.ni)
    write_image(args.output, result, voxel, overwrite=args.overwrite)
    if voxel is not None and voxel.known:
        widths = psf_tools.fwhm(result, (voxel.z, voxel.y, voxel.x)[-result.ndim:])
        print(f"FWHM (z, y, x) um: {', '.join(f'{w:.3f}' for w in widths)}")
    print(f"wrote {args.output} {result.shape} {result.dtype}")
    return 0


def _info() -> int:
    import numpy as np

    import rlcore

    print(f"rlcore {rlcore.__version__}  python {platform.python_version()}  "
          f"numpy {np.__version__}  {platform.platform()}")
    backends = rlcore.available_backends()
    auto = next((b.name for b in backends if b.available and b.auto), "numpy")
    for b in backends:
        if not b.available:
            print(f"  {b.name:10s} unavailable: {b.reason}")
            continue
        mark = "  <- auto" if b.name == auto else ""
        print(f"  {b.name:10s} {b.devices[0] if b.devices else ''}{mark}")
        for d in b.devices[1:]:  # one device per line (OpenCL lists every platform/device)
            print(f"  {'':10s} {d}")
        if b.name != auto:  # why "auto" took another
            note = (f"not chosen by 'auto' for NumPy input: {b.auto_note}" if b.auto_note
                    else f"'auto' prefers {auto} (in this order: CuPy on NVIDIA GPUs, "
                    "OpenCL on other GPUs, numpy)")
            print(f"  {'':10s} {note}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from rlcore import data

    args.output.mkdir(parents=True, exist_ok=True)
    import filecmp

    names = ("lls_image.tif", "lls_psf.tif")
    # the sample already there, byte for byte, is kept (the README's command re-runs)
    present = [args.output / n for n in names if (args.output / n).exists()
               and not filecmp.cmp(args.output / n, data.path(n), shallow=False)]
    if present and not args.overwrite:
        raise FileExistsError(f"{present[0]} exists and is not the sample; pass "
                              "--overwrite to replace it")
    for name in names:
        if not (args.output / name).exists() or args.overwrite:
            shutil.copyfile(data.path(name), args.output / name)
        print(args.output / name)
    print(f"image background (camera offset): {data.BACKGROUND:g}")
    return 0
