"""Positions and compatibility: rlcore's faces beside RedLionfish 0.10.

``python -m bench.redlionfish --data ../shared/data --out bench/results/redlionfish``
``python -m bench.redlionfish --upstream`` (RedLionfish's own tests and scripts against
the compat; minutes on a CPU: its tests deconvolve 256^3 three ways)

Measured, into ``--out``.md/.json:

1. Bead positions (mean |offset| per axis, voxels) of a bead imaged at a known sub-voxel
   position, for the PSF array centred at ``n // 2``, at ``(n - 1) // 2`` and 3 voxels
   off, through the CLI and the RedLionfish compat with default options (the napari
   widget shares the code path and is asserted in ``tests/test_napari.py``).
2. RedLionfish's sample data (``gendata_psfconv_poiss.tif``, cubes on the grid
   {5, 72, 139} + 0.5, made with ``PSF_RFI_8bit.tif``): how far the cubes move from their
   positions in the data after 3DCT's call to the compat (``resAsUint8=True,
   method="gpu"``, 10 iterations), and after RedLionfish 0.10's own CPU and OpenCL
   paths where installed.
3. The LLS stack with its raw ``psf.tif`` through the CLI (``--background 98``, 10
   iterations), with and without ``--no-center-psf``: the shift of the result against the
   data (cross-correlation peak) and the correlation with cudaDecon's ``im_decon.tif``.
4. Differences to RedLionfish 0.10 (CPU path) on 64^3 data: rel. L2 after 10 iterations
   for odd and even Gaussian PSFs and the measured PSF, centred and as given; dtypes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import tifffile

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE / "redlionfish_upstream"

BEAD = (15.3, 24.6, 22.8)
SIGMA = (2.0, 1.4, 1.4)
GRID = (5, 72, 139)


def _gaussian(shape, centre, sigma) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    g = np.exp(-0.5 * sum(((x - c) / s) ** 2 for x, c, s in zip(grids, centre, sigma)))
    return (g / g.sum()).astype(np.float32)


PSFS = {"n // 2": ((15, 17, 17), (7, 8, 8)), "(n - 1) // 2": ((16, 18, 18), (7, 8, 8)),
        "3 voxels off": ((21, 25, 25), (7, 15, 9))}


def _centroid(volume: np.ndarray, centre, half: int) -> np.ndarray:
    window = tuple(slice(max(0, int(round(c)) - half), int(round(c)) + half + 1)
                   for c in centre)
    local = ndi.center_of_mass(volume[window])
    return np.array([w.start + c for w, c in zip(window, local)])


def beads(tmp: Path) -> dict:
    import rlcore
    from rlcore.cli import main
    from rlcore.compat import redlionfish as rlf

    rng = np.random.default_rng(0)
    image = rng.poisson(rlcore.convolve(
        _gaussian((32, 48, 48), BEAD, (0.6, 0.6, 0.6)) * 4e5,
        _gaussian(PSFS["n // 2"][0], PSFS["n // 2"][1], SIGMA)) + 20).astype(np.float32)
    tifffile.imwrite(tmp / "img.tif", image)

    def offset(result) -> list[float]:
        r = np.asarray(result, np.float64)
        r = np.clip(r - np.median(r), 0, None)
        return [round(float(v), 3) for v in _centroid(r, BEAD, 6) - BEAD]

    rows = {}
    for kind, (shape, centre) in PSFS.items():
        psf = _gaussian(shape, centre, SIGMA)
        tifffile.imwrite(tmp / "psf.tif", psf)
        main(["deconvolve", str(tmp / "img.tif"), str(tmp / "psf.tif"), "-o",
              str(tmp / "out.tif"), "--background", "20", "--overwrite"])
        cli = offset(tifffile.imread(tmp / "out.tif"))
        main(["deconvolve", str(tmp / "img.tif"), str(tmp / "psf.tif"), "-o",
              str(tmp / "out.tif"), "--background", "20", "--overwrite", "--no-center-psf"])
        as_given = offset(tifffile.imread(tmp / "out.tif"))
        u8 = rlf.helperfunctions.convertToUint8AndFullRange
        compat = offset(rlf.doRLDeconvolutionFromNpArrays(u8(image), u8(psf), niter=10,
                                                          resAsUint8=True))
        rows[kind] = {"cli": cli, "compat (3DCT call)": compat,
                      "cli --no-center-psf": as_given}
    return rows


def redlionfish_sample(data: Path, tmp: Path) -> dict:
    """Cube positions relative to where the data put them (the result must not move
    them): centroids of the 8 cubes away from the volume's faces ({72, 139}^3), result
    minus raw data, mean and mean |.| per axis; and the raw data against the grid + 0.5
    (the generator's own offset, which no deconvolution should change)."""
    from rlcore.compat import redlionfish as rlf

    image = tifffile.imread(data / "redlionfish" / "gendata_psfconv_poiss.tif")
    psf = tifffile.imread(data / "redlionfish" / "PSF_RFI_8bit.tif")
    cubes = np.array([(z, y, x) for z in GRID[1:] for y in GRID[1:] for x in GRID[1:]])

    def positions(volume) -> np.ndarray:
        v = np.asarray(volume, np.float64)
        v = np.clip(v - np.median(v), 0, None)
        return np.array([_centroid(v, c + 0.5, 9) for c in cubes])

    raw = positions(image)

    def moved(result) -> dict:
        off = positions(result) - raw
        return {"mean_offset": [round(float(m), 3) for m in off.mean(0)],
                "mean_abs_offset": [round(float(m), 3) for m in np.abs(off).mean(0)]}

    out = {"raw data vs grid + 0.5 (generator's offset)":
           [round(float(m), 3) for m in (raw - cubes - 0.5).mean(0)],
           "rlcore compat, 3DCT call": moved(rlf.doRLDeconvolutionFromNpArrays(
               image, psf, niter=10, method="gpu", resAsUint8=True)),
           "rlcore compat, center_psf=False": moved(rlf.doRLDeconvolutionFromNpArrays(
               image, psf, niter=10, method="gpu", resAsUint8=True, center_psf=False))}
    from rlcore.cli import main as cli

    for name, extra in (("rlcore CLI, defaults", []),
                        ("rlcore CLI, --boundary periodic", ["--boundary", "periodic"])):
        cli(["deconvolve", str(data / "redlionfish" / "gendata_psfconv_poiss.tif"),
             str(data / "redlionfish" / "PSF_RFI_8bit.tif"), "-o", str(tmp / "rlf.tif"),
             "-n", "10", "--overwrite", *extra])
        out[name] = moved(tifffile.imread(tmp / "rlf.tif"))
    try:
        import RedLionfishDeconv as upstream
    except ImportError:
        out["RedLionfish 0.10"] = "not installed"
        return out
    for method in ("cpu", "gpu"):
        result = upstream.doRLDeconvolutionFromNpArrays(image, psf, niter=10, method=method,
                                                        resAsUint8=True)
        out[f"RedLionfish 0.10, method={method}"] = moved(result)
    return out


def lls(data: Path, tmp: Path) -> dict:
    from rlcore.cli import main

    folder = data / "lls_pycudadecon"
    raw = tifffile.imread(folder / "im_deskewed.tif").astype(np.float32)
    reference = tifffile.imread(folder / "im_decon.tif").astype(np.float64)
    crop = tuple(slice(0, n) for n in reference.shape)
    moved = np.clip(raw - 98, 0, None)[crop].astype(np.float64)

    def shift(a, b):
        c = np.fft.irfftn(np.fft.rfftn(a) * np.conj(np.fft.rfftn(b)), a.shape)
        peak = np.unravel_index(np.argmax(c), c.shape)
        return tuple(int(p if p <= n // 2 else p - n) for p, n in zip(peak, a.shape))

    def corr(a, b, align=False):
        if align:
            a = np.roll(a, tuple(-s for s in shift(a, b)), axis=(0, 1, 2))
        return round(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]), 4)

    out = {"data": {"corr_with_cudaDecon": corr(moved, reference),
                    "corr_aligned": corr(moved, reference, True),
                    "shift_vs_cudaDecon": shift(moved, reference)}}
    for name, extra in (("cli, raw psf.tif, --no-center-psf", ["--no-center-psf"]),
                        ("cli, raw psf.tif (default: centred)", [])):
        main(["deconvolve", str(folder / "im_deskewed.tif"), str(folder / "psf.tif"),
              "-o", str(tmp / "lls.tif"), "--background", "98", "-n", "10",
              "--overwrite", *extra])
        result = tifffile.imread(tmp / "lls.tif")[crop].astype(np.float64)
        out[name] = {"shift_vs_data": shift(result, moved),
                     "corr_with_cudaDecon": corr(result, reference),
                     "corr_aligned": corr(result, reference, True)}
    return out


def differences(data: Path) -> dict:
    from rlcore.compat import redlionfish as rlf

    try:
        import RedLionfishDeconv.RLDeconv3DScipy as upstream_cpu
    except ImportError:
        return {"RedLionfish 0.10": "not installed"}
    rng = np.random.default_rng(1)
    image = rng.poisson(200 * rng.random((64, 64, 64)) + 20).astype(np.float32)
    measured = tifffile.imread(data / "redlionfish" / "PSF_RFI_8bit.tif")[15:46, :, :]
    psfs = {"odd 15^3 Gaussian": _gaussian((15, 15, 15), (7, 7, 7), (2, 2, 2)),
            "even 16^3 Gaussian (peak n // 2)": _gaussian((16, 16, 16), (8, 8, 8), (2, 2, 2)),
            "measured PSF_RFI_8bit (31, 32, 32)": measured}
    out = {}
    for name, psf in psfs.items():
        theirs = np.asarray(upstream_cpu.doRLDeconvolution(image, psf, niter=10))
        row = {}
        for centre in (True, False):
            ours = rlf.RLDeconv3DScipy.doRLDeconvolution(image, psf, niter=10,
                                                         center_psf=centre)
            n = min(theirs.shape[-1], ours.shape[-1])
            rel = np.linalg.norm(ours[..., :n] - theirs[..., :n]) / np.linalg.norm(
                theirs[..., :n])
            row[f"rel_l2 (center_psf={centre})"] = round(float(rel), 4)
        row["shapes (rlcore, RedLionfish)"] = [list(ours.shape), list(theirs.shape)]
        out[name] = row
    odd = rng.random((8, 10, 11)).astype(np.float32) + 1
    out["odd last axis (8, 10, 11)"] = {
        "RedLionfish": list(np.shape(upstream_cpu.doRLDeconvolution(odd, np.ones((3, 3, 3)),
                                                                    niter=2))),
        "rlcore": list(rlf.RLDeconv3DScipy.doRLDeconvolution(odd, np.ones((3, 3, 3)),
                                                             niter=2).shape)}
    return out


def upstream() -> dict:
    """RedLionfish's tests and scripts, unmodified, with RedLionfishDeconv -> the compat."""
    work = Path(tempfile.mkdtemp(prefix="rlcore-redlionfish-"))
    shutil.copytree(UPSTREAM / "test", work / "test")
    shutil.copytree(UPSTREAM / "scripts", work / "scripts")
    alias = ("import sys\n"
             "import rlcore.compat.redlionfish as compat\n"
             "sys.modules['RedLionfishDeconv'] = compat\n"
             "for n in ('RLDeconvolve', 'RLDeconv3DScipy', 'RLDeconv3DReiknaOCL', "
             "'helperfunctions'):\n"
             "    sys.modules['RedLionfishDeconv.' + n] = getattr(compat, n)\n")
    stub = ("import sys, types\n"  # the scripts end by opening a viewer: no GUI here
            "napari = types.ModuleType('napari')\n"
            "napari.view_image = lambda *a, **k: types.SimpleNamespace("
            "add_image=lambda *a, **k: None)\n"
            "napari.run = lambda *a, **k: None\n"
            "sys.modules['napari'] = napari\n")
    (work / "conftest.py").write_text(alias)
    (work / "rlcore_alias.py").write_text(alias + stub)
    env = {**os.environ, "PYTHONPATH": str(work)}
    results = {}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "test"], cwd=work, env=env,
                          capture_output=True, text=True)
    results["test/ (pytest)"] = (proc.stdout.strip().splitlines() or
                                 proc.stderr.strip().splitlines() or ["no output"])[-1]
    data = Path(os.environ.get("RLCORE_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
    (work / "scripts" / "testdata").mkdir()
    for name in ("gendata_psfconv_poiss.tif", "PSF_RFI_8bit.tif"):
        shutil.copyfile(data / "redlionfish" / name, work / "scripts" / "testdata" / name)
    for script in sorted((work / "scripts").glob("*.py")):
        run = (f"import rlcore_alias, runpy, sys; sys.argv = [{str(script)!r}]; "
               f"runpy.run_path({str(script)!r}, run_name='__main__')")
        proc = subprocess.run([sys.executable, "-c", run], cwd=work, env=env,
                              capture_output=True, text=True)
        last = (proc.stderr.strip().splitlines() or ["ok"])[-1]
        results[f"scripts/{script.name}"] = "ran" if proc.returncode == 0 else \
            f"failed: {last}"
    shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--upstream", action="store_true",
                    help="run RedLionfish's own tests and scripts against the compat")
    ap.add_argument("--only", nargs="*", default=None,
                    choices=["beads", "sample", "lls", "differences"],
                    help="run only these parts")
    args = ap.parse_args(argv)
    if args.upstream:
        result = {"upstream": upstream()}
    else:
        tmp = Path(tempfile.mkdtemp(prefix="rlcore-positions-"))
        parts = {"beads": ("synthetic bead, offset (z, y, x) voxels", lambda: beads(tmp)),
                 "sample": ("RedLionfish sample, 27 cubes",
                            lambda: redlionfish_sample(args.data, tmp)),
                 "lls": ("LLS through the CLI", lambda: lls(args.data, tmp)),
                 "differences": ("differences to RedLionfish 0.10 (CPU)",
                                 lambda: differences(args.data))}
        result = {title: run() for key, (title, run) in parts.items()
                  if args.only is None or key in args.only}
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        suffix = "-upstream" if args.upstream else ""
        path = args.out.with_name(args.out.name + suffix).with_suffix(".json")
        path.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
