"""TIFF / OME-TIFF I/O with voxel sizes, and the rlcore command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
from conftest import face_deconvolve, gaussian_psf

import rlcore
from rlcore.cli import main
from rlcore.io import VoxelSize, read_image, read_provenance, write_image


@pytest.mark.parametrize("name", ["a.tif", "a.ome.tif"])
def test_voxel_size_round_trip(tmp_path, rng, name):
    image = rng.random((5, 6, 7)).astype(np.float32)
    write_image(tmp_path / name, image, VoxelSize(0.3, 0.1019, 0.1019))
    back, voxel = read_image(tmp_path / name)
    np.testing.assert_array_equal(back, image)
    assert (tmp_path / name).stat().st_mode & 0o044  # readable by others, as a normal file
    assert voxel.z == pytest.approx(0.3) and voxel.x == pytest.approx(0.1019, rel=1e-6)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_image(tmp_path / name, image)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.tif")
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    with pytest.raises(ValueError, match="not a readable TIFF"):
        read_image(tmp_path / "bad.tif")


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises((TypeError, ValueError)):
        write_image(tmp_path / "x.tif", np.empty((2, 2), dtype=object))
    assert list(tmp_path.iterdir()) == []


def _lls(shared_data):
    """The LLS stack with its measured PSF, prepared as the data README says: camera
    offset (median) subtracted, z resampled from 0.1 um to the image's plane spacing
    0.3 * sin(31.5 deg) = 0.157 um, and cropped with its peak (7 voxels off-centre in y
    in the file) at the centre voxel n // 2."""
    import scipy.ndimage as ndi

    folder = shared_data / "lls_pycudadecon"
    psf = tifffile.imread(folder / "psf.tif").astype(np.float32)
    psf = np.clip(psf - np.median(psf), 0, None)
    psf = ndi.zoom(psf, (0.1 / 0.1567, 1, 1), order=1)
    peak = np.unravel_index(np.argmax(ndi.gaussian_filter(psf, 1)), psf.shape)
    half = (min(peak[0], psf.shape[0] - peak[0]), 32, 32)
    psf = psf[tuple(slice(c - h, c + h) for c, h in zip(peak, half))]
    assert np.unravel_index(np.argmax(ndi.gaussian_filter(psf, 1)), psf.shape) == half
    return folder / "im_deskewed.tif", psf


@pytest.mark.slow
def test_cli_round_trip_on_lattice_light_sheet(tmp_path, shared_data):
    image_path, psf = _lls(shared_data)
    psf_path = tmp_path / "psf.tif"
    tifffile.imwrite(psf_path, psf)
    out = tmp_path / "decon.ome.tif"
    src = tmp_path / "image.tif"  # the image with a voxel size the output must keep
    raw = tifffile.imread(image_path)
    write_image(src, raw, VoxelSize(0.1567, 0.1019, 0.1019))
    assert main(["deconvolve", str(src), str(psf_path), "-o", str(out), "-n", "10",
                 "--background", "98"]) == 0
    result, voxel = read_image(out)
    assert voxel == read_image(src)[1]
    expected = face_deconvolve(np.clip(raw.astype(np.float32) - 98, 0, None),
                                 rlcore.psf.centered(psf)[0], 10)  # the CLI's default
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == np.float32 and result.shape == raw.shape
    # the result is sharper than the data and closer to cudaDecon's (pycudadecon's
    # reference, cropped to (84, 320, 480)) than the raw data is
    reference = tifffile.imread(image_path.parent / "im_decon.tif")
    crop = tuple(slice(0, n) for n in reference.shape)
    data = raw[crop].astype(np.float64) - 98
    ours = result[crop].astype(np.float64)

    def offset(a, b):  # integer shift of a against b: the cross-correlation peak
        c = np.fft.irfftn(np.fft.rfftn(a) * np.conj(np.fft.rfftn(b)), a.shape)
        peak = np.unravel_index(np.argmax(c), c.shape)
        return tuple(int(p if p <= n // 2 else p - n) for p, n in zip(peak, a.shape))

    def corr(a, b):  # after undoing the integer shift (cudaDecon's is 1 voxel in z)
        a = np.roll(a, tuple(-s for s in offset(a, b)), axis=tuple(range(a.ndim)))
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    assert offset(ours, data) == (0, 0, 0)  # the centred PSF does not move the cell
    assert corr(ours, reference) > corr(data, reference) + 0.03
    # uint16 output, refusal to overwrite, and --overwrite
    assert main(["deconvolve", str(src), str(psf_path), "-o", str(out), "-n", "1"]) == 2
    assert main(["deconvolve", str(src), str(psf_path), "-o", str(out), "-n", "1", "--uint16",
                 "--background", "98", "--overwrite"]) == 0
    as16, _ = read_image(out)
    assert as16.dtype == np.uint16 and as16.max() == 65535


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    img = tmp_path / "img.tif"
    tifffile.imwrite(img, np.ones((40, 60), np.float32))
    rgb = tmp_path / "psf.tif"  # tifffile stores (3, 3, 3) as a 3x3 RGB image
    tifffile.imwrite(rgb, np.ones((3, 3, 3), np.float32))
    assert main(["deconvolve", str(img), str(rgb), "-o", str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rlcore: error: {rgb}: has colour samples")
    assert not (tmp_path / "o.tif").exists()
    assert main(["deconvolve", str(tmp_path / "nope.tif"), str(rgb), "-o", "x.tif"]) == 2


@pytest.mark.parametrize("shape", [(40, 60), (1, 40, 60), (1, 1, 1)])
def test_cli_single_planes_and_voxels_with_a_3d_psf(tmp_path, capsys, shape):
    """A plane, stored as (Y, X) or (1, Y, X), with a 3-D PSF is deconvolved by the PSF's
    in-focus plane (with a warning), and written back with the input's shape."""
    rng = np.random.default_rng(3)
    image = rng.poisson(50, shape).astype(np.float32)
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "psf.tif", gaussian_psf((7, 7, 7), (2.0, 1.5, 1.5)))
    out = tmp_path / "o.tif"
    assert main(["deconvolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o",
                 str(out), "-n", "3"]) == 0
    result = tifffile.imread(out)
    assert result.size == image.size and np.isfinite(result).all()
    assert read_image(out)[0].shape == read_image(tmp_path / "img.tif")[0].shape
    if image.size > 1:
        assert "centre-cropped" in capsys.readouterr().err


def test_cli_sample_and_info_and_module_entry(tmp_path):
    assert main(["sample", "-o", str(tmp_path)]) == 0
    out = tmp_path / "out.tif"
    proc = subprocess.run(
        [sys.executable, "-m", "rlcore", "deconvolve", str(tmp_path / "lls_image.tif"),
         str(tmp_path / "lls_psf.tif"), "-o", str(out), "--background", "98", "-n", "5"],
        capture_output=True, text=True, check=True,
    )
    assert "wrote" in proc.stdout
    result, voxel = read_image(out)
    assert result.shape == (64, 128, 128) and voxel.x == pytest.approx(0.1019)
    info = subprocess.run([sys.executable, "-m", "rlcore", "info"], capture_output=True,
                          text=True, check=True).stdout
    assert "numpy" in info and "rlcore" in info
    # every available backend that "auto" did not take says why
    lines = info.splitlines()
    for b in rlcore.available_backends():
        if b.available and not any(line.endswith("<- auto") for line in lines
                                   if line.split()[:1] == [b.name]):
            row = next(i for i, line in enumerate(lines) if line.split()[:1] == [b.name])
            follow = lines[row + 1:row + 1 + len(b.devices)]
            assert any("auto" in line for line in follow), (b.name, info)


def test_sample_loader():
    from rlcore import data

    image, psf, voxel = data.lls_sample()
    assert image.shape == (64, 128, 128) and psf.shape == (32, 64, 64)
    assert np.unravel_index(psf.argmax(), psf.shape) == (16, 32, 32)
    assert psf.sum() == pytest.approx(1, rel=1e-5)
    with pytest.raises(FileNotFoundError, match="name: no sample file"):
        data.path("nope.tif")


def test_cli_auto_iterations_and_back_projector(tmp_path, rng, capsys):
    truth = np.zeros((16, 40, 40))
    truth[4:12, 10:30:4, 8:32:5] = 2000  # bright enough that updates help
    psf = rlcore.psf.gaussian((7, 9, 9), 1.5)
    image = rng.poisson(rlcore.convolve(truth, psf) + 100).astype(np.uint16)
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "psf.tif", psf.astype(np.float32))
    out = tmp_path / "auto.tif"
    assert main(["deconvolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o",
                 str(out), "-n", "auto", "--background", "100"]) == 0
    result, _ = read_image(out)
    ref, info = rlcore.deconvolve(image, psf, "auto", offset=100, return_info=True,
                                  boundary=rlcore.boundary.FACE_BOUNDARY)
    assert info.iterations > 0  # a deconvolution, not the image given back
    assert np.allclose(result, ref, rtol=1e-5, atol=1e-4)
    assert main(["deconvolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o",
                 str(tmp_path / "wb.tif"), "-n", "3", "--back-projector",
                 "wiener-butterworth", "--accelerate", "momentum"]) == 0
    with pytest.raises(SystemExit) as info:  # argparse: usage and exit 2
        main(["deconvolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o",
              str(out), "-n", "sometimes"])
    assert info.value.code == 2


@pytest.mark.parametrize("n", [5, 50])
def test_cli_dry_run_reports_the_overlap_for_the_iterations_asked(tmp_path, capsys, n):
    from rlcore import blocks

    image = np.ones((64, 96, 96), np.float32)  # blocks shorter than the volume at n=50
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "psf.tif", np.ones((5, 5, 5), np.float32))
    assert main(["deconvolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o",
                 str(tmp_path / "o.tif"), "-n", str(n), "--dry-run", "--block-shape", "20",
                 "32", "32"]) == 0
    printed = capsys.readouterr().out
    expected = blocks.auto_overlap((5, 5, 5), n)
    assert str(tuple(expected)) in printed
    # exactly the plan the run then uses
    _, info = face_deconvolve(image, np.ones((5, 5, 5), np.float32), n,
                                block_shape=(20, 32, 32), return_info=True)
    assert f"plan: {info.blocks}" in printed


def test_newcomer_mistakes_get_one_line_before_any_computing(tmp_path, capsys):
    from pathlib import Path

    img = tmp_path / "img.tif"
    tifffile.imwrite(img, np.full((8, 20, 20), 50, np.float32))
    psf = tmp_path / "psf.tif"
    tifffile.imwrite(psf, rlcore.psf.gaussian((3, 5, 5), 1.0))
    cases = [
        (["-o", str(tmp_path / "out.png")], "is not .tif, .ome.tif or .ome.zarr"),
        (["-o", str(tmp_path / "missing" / "out.tif")], "does not exist; create it"),
        (["-o", str(tmp_path / "o.tif"), "--background", "60"], "at or above every voxel"),
    ]
    for extra, message in cases:
        assert main(["deconvolve", str(img), str(psf), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "o.tif").exists()
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and rlcore.__version__ in capsys.readouterr().out
    assert main(["sample", "-o", str(tmp_path / "s")]) == 0
    assert main(["sample", "-o", str(tmp_path / "s")]) == 0  # the same files: kept
    (tmp_path / "s" / "lls_psf.tif").write_bytes(b"mine")
    assert main(["sample", "-o", str(tmp_path / "s")]) == 2  # no silent overwrite
    assert (tmp_path / "s" / "lls_psf.tif").read_bytes() == b"mine"
    assert main(["sample", "-o", str(tmp_path / "s"), "--overwrite"]) == 0
    assert main(["psf", "gaussian", "--shape", "5", "7", "7", "--sigma", "2", "1", "-o",
                 str(tmp_path / "g.tif")]) == 2
    assert "sigma: give one value or one per axis (3)" in capsys.readouterr().err
    with pytest.raises(TypeError, match="image: got PosixPath"):
        rlcore.deconvolve(Path(img), np.ones((3, 3, 3)), 2)


def test_the_issues_smaller_mistakes_each_get_one_line_that_names_the_fix(tmp_path, capsys):
    img = tmp_path / "img.tif"
    tifffile.imwrite(img, np.full((8, 20, 20), 50, np.float32))
    psf4 = tmp_path / "psf4d.tif"
    tifffile.imwrite(psf4, np.ones((2, 3, 5, 5), np.float32))
    psf2 = tmp_path / "psf2d.tif"
    tifffile.imwrite(psf2, rlcore.psf.gaussian((5, 5), 1.0))
    out = tmp_path / "o.tif"
    cases = [
        ([str(tmp_path / "nope.tif")], "psf file not found: "),
        ([str(psf4)], "has shape (2, 3, 5, 5); a PSF file holds one (Z, Y, X) stack"),
        ([str(psf2), "--background", "-5"], "--background: must be >= 0"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) if "--background" in extra else _nothing():
            code = main(["deconvolve", str(img), *extra, "-o", str(out)])
            assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        argparse_usage = "--background" in extra  # argparse prints its usage first
        assert (argparse_usage or len(err) == 1) and message in err[-1], err
        assert not out.exists()
    assert main(["deconvolve", str(img), str(psf2), "-o", str(out), "-n", "1",
                 "--backend", "numpy"]) == 0
    err = capsys.readouterr().err
    assert "a 2-D PSF (Y, X) with an image that has a Z axis" in err
    assert "each plane is deconvolved in 2-D" in err and read_image(out)[0].shape == (8, 20, 20)
    with pytest.raises(ValueError, match=r"max_memory: 195 KiB is too small .*about \d+(\.\d)? "
                                         r"[KM]iB per block .*pass max_memory >= \d+"):
        rlcore.deconvolve(np.ones((16, 64, 64), np.float32), np.ones((5, 5, 5)), 2,
                          max_memory=200_000)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_every_cli_option_has_help_text():
    import argparse

    missing = []

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, path + [name])
            elif not action.help:
                missing.append((" ".join(path), action.option_strings or action.dest))

    from rlcore.cli import parser as _parser

    walk(_parser(), [])
    assert not missing


def test_cli_psf_background_is_what_is_removed(tmp_path, rng):
    """--psf-background V: the PSF prepared as rlcore.psf.centered(psf, background=V);
    auto (the default) estimates it from the border; a different V gives another result."""
    import tifffile

    import rlcore
    from rlcore.cli import main

    image = (rng.random((12, 24, 24)) * 50 + 5).astype(np.float32)
    z, y, x = np.mgrid[-5:6, -7:8, -7:8]
    psf = (1000 * np.exp(-(z * z / 4 + y * y / 3 + x * x / 3)) + 100
           + rng.normal(0, 2, z.shape)).astype(np.float32)
    tifffile.imwrite(tmp_path / "im.tif", image)
    tifffile.imwrite(tmp_path / "psf.tif", psf)
    outs = {}
    for value in ("auto", "100", "0"):
        out = tmp_path / f"o{value}.tif"
        assert main(["deconvolve", str(tmp_path / "im.tif"), str(tmp_path / "psf.tif"), "-o",
                     str(out), "-n", "3", "--backend", "numpy", "--psf-background",
                     value]) == 0
        outs[value] = tifffile.imread(out)
    prepared, _ = rlcore.psf.centered(psf, background=100.0)
    ref = rlcore.deconvolve(image, prepared, 3, backend="numpy")
    np.testing.assert_allclose(outs["100"], ref, rtol=1e-6, atol=1e-6)
    assert not np.allclose(outs["0"], outs["100"], rtol=1e-3)
    with pytest.raises(SystemExit):
        main(["deconvolve", str(tmp_path / "im.tif"), str(tmp_path / "psf.tif"), "-o",
              str(tmp_path / "x.tif"), "--psf-background", "-3"])


def test_readme_python_and_cli_examples_agree_without_warnings(tmp_path):
    """The README's two examples on the shipped sample (its Python block and its CLI
    command): one set of defaults, so equal results, and no warning from the Python one."""
    import warnings

    import tifffile

    import rlcore
    from rlcore.cli import main
    from rlcore.data import lls_sample

    assert main(["sample", "-o", str(tmp_path / "sample")]) == 0
    out = tmp_path / "sample" / "decon.tif"
    assert main(["deconvolve", str(tmp_path / "sample" / "lls_image.tif"),
                 str(tmp_path / "sample" / "lls_psf.tif"), "-o", str(out),
                 "--background", "98", "--iterations", "10"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image, psf, voxel_size = lls_sample()
        psf, _ = rlcore.psf.centered(psf)
        result = rlcore.deconvolve(np.clip(image - 98.0, 0, None), psf, iterations=10)
    cli = tifffile.imread(out)
    assert float(np.linalg.norm(result - cli) / np.linalg.norm(cli)) < 1e-5


def test_cli_background_auto_estimates_the_camera_offset(tmp_path, capsys):
    """--background auto on the shipped LLS sample: the pad value 98 (what cudaDecon's
    reference used), said on stderr, and the same result as --background 98."""
    import tifffile

    from rlcore.cli import main

    assert main(["sample", "-o", str(tmp_path / "s")]) == 0
    runs = {}
    for value in ("auto", "98"):
        out = tmp_path / f"d{value}.tif"
        assert main(["deconvolve", str(tmp_path / "s" / "lls_image.tif"),
                     str(tmp_path / "s" / "lls_psf.tif"), "-o", str(out), "-n", "3",
                     "--background", value, "--backend", "numpy"]) == 0
        runs[value] = tifffile.imread(out)
    assert "background 98 (estimated" in capsys.readouterr().err
    assert np.array_equal(runs["auto"], runs["98"])


def test_batch_and_deconvolve_take_the_same_options():
    """One option table: every option of ``deconvolve`` is an option of ``batch``."""
    from rlcore.cli import parser

    sub = next(a for a in parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    options = {name: {o for a in p._actions for o in a.option_strings}
               for name, p in sub.choices.items() if name in ("deconvolve", "batch")}
    assert options["deconvolve"] - options["batch"] == set(), \
        options["deconvolve"] - options["batch"]
    assert {"--psf-background", "--gain", "--uint16", "--dry-run", "--block-shape",
            "--max-memory", "--max-iterations"} <= options["batch"]


def test_batch_equals_deconvolve_per_file_and_names_the_file(tmp_path, rng, capsys):
    """batch with -n auto, --uint16 and blocks gives each file what deconvolve gives it,
    and each warning names its file."""
    import tifffile

    from rlcore.cli import main

    z, y, x = np.mgrid[-3:4, -4:5, -4:5]
    psf = np.exp(-(z * z / 3 + (y * y + x * x) / 2)).astype(np.float32)
    tifffile.imwrite(tmp_path / "psf.tif", psf)
    for i in range(2):
        image = rng.poisson(20, (12, 32, 30)).astype(np.float32)
        image[0, 0, 0] = -5  # clipped, with a warning
        tifffile.imwrite(tmp_path / f"im{i}.tif", image)
    for extra in (["-n", "auto"], ["-n", "3", "--uint16"], ["-n", "3", "--block-shape", "12",
                                                              "16", "15"]):
        out = tmp_path / f"batch{len(extra)}{extra[-1]}"
        assert main(["batch", str(tmp_path / "im*.tif"), "--psf", str(tmp_path / "psf.tif"),
                     "-o", str(out), "--backend", "numpy", *extra]) == 0
        err = capsys.readouterr().err
        for i in range(2):
            single = tmp_path / f"single{i}.tif"
            assert main(["deconvolve", str(tmp_path / f"im{i}.tif"), str(tmp_path / "psf.tif"),
                         "-o", str(single), "--backend", "numpy", "--overwrite", *extra]) == 0
            np.testing.assert_array_equal(tifffile.imread(out / f"im{i}.tif"),
                                          tifffile.imread(single))
            if extra[1] != "auto":  # auto splits the raw data: no clipping there
                assert f"warning: {tmp_path / f'im{i}.tif'}: image: " in err
        if extra[1] == "auto":
            assert "iterations auto:" in err


def test_batch_reads_the_next_input_while_one_computes(tmp_path, rng, monkeypatch, capsys):
    """batch reads the bytes of input i + 1 on its reader thread while input i computes;
    the outputs are deconvolve's and each file's warnings keep their name; an unreadable
    later input stops the batch naming that file, with the earlier outputs written."""
    import threading
    import time

    import tifffile

    from rlcore import cli
    from rlcore.cli import _files

    tifffile.imwrite(tmp_path / "psf.tif", np.ones((3, 5, 5), np.float32))
    for i in range(3):
        image = rng.poisson(20, (8, 24, 24)).astype(np.float32)
        image[0, 0, 0] = -1  # a warning per file, from the computing thread
        tifffile.imwrite(tmp_path / f"im{i}.tif", image)
    events = []
    prefetch, run = _files._prefetch, _files._run_file

    def reading(path):
        events.append(("read", path.name, threading.current_thread().name, time.monotonic()))
        return prefetch(path)

    def running(args, path, *rest, **kw):
        start = time.monotonic()
        out = run(args, path, *rest, **kw)
        time.sleep(0.2)  # a longer computation: the next read must fall inside it
        events.append(("run", path.name, start, time.monotonic()))
        return out

    monkeypatch.setattr(_files, "_prefetch", reading)
    monkeypatch.setattr(_files, "_run_file", running)
    out = tmp_path / "out"
    assert cli.main(["batch", str(tmp_path / "im*.tif"), "--psf", str(tmp_path / "psf.tif"),
                     "-o", str(out), "-n", "2", "--backend", "numpy"]) == 0
    err = capsys.readouterr().err
    for i in range(3):
        assert f"warning: {tmp_path / f'im{i}.tif'}: image: 1 negative" in err
    reads = {e[1]: e for e in events if e[0] == "read"}
    runs = {e[1]: e for e in events if e[0] == "run"}
    assert sorted(reads) == ["im1.tif", "im2.tif"]  # the first is read by its own run
    assert all(e[2].startswith("rlcore-read") for e in reads.values())
    # input i + 1's read starts once input i - 1 is done and before input i is: beside it
    assert reads["im1.tif"][3] < runs["im0.tif"][3]
    assert runs["im0.tif"][3] <= reads["im2.tif"][3] < runs["im1.tif"][3]
    monkeypatch.setattr(_files, "_run_file", run)
    for i in range(3):
        single = tmp_path / f"single{i}.tif"
        assert cli.main(["deconvolve", str(tmp_path / f"im{i}.tif"),
                         str(tmp_path / "psf.tif"), "-o", str(single), "-n", "2",
                         "--backend", "numpy"]) == 0
        np.testing.assert_array_equal(tifffile.imread(out / f"im{i}.tif"),
                                      tifffile.imread(single))
    (tmp_path / "im1.tif").write_bytes(b"not a tiff")
    again = tmp_path / "again"
    capsys.readouterr()
    assert cli.main(["batch", str(tmp_path / "im*.tif"), "--psf", str(tmp_path / "psf.tif"),
                     "-o", str(again), "-n", "2", "--backend", "numpy"]) == 2
    assert f"{tmp_path / 'im1.tif'}" in capsys.readouterr().err
    assert (again / "im0.tif").exists() and not (again / "im1.tif").exists()


@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".ome.zarr"])
def test_outputs_carry_their_provenance(tmp_path, rng, suffix):
    """Every output says how it was made: rlcore's version, the iterations and the rule,
    the PSF and its preparation, boundary, background, scale (read back per format)."""
    if suffix == ".ome.zarr":
        pytest.importorskip("ome_zarr")
    import tifffile

    from rlcore.cli import main

    tifffile.imwrite(tmp_path / "im.tif", (rng.random((10, 24, 24)) * 50 + 10)
                     .astype(np.float32))
    tifffile.imwrite(tmp_path / "psf.tif", np.ones((3, 5, 5), np.float32))
    out = tmp_path / f"out{suffix}"
    extra = ["--uint16"] if suffix != ".ome.zarr" else []
    assert main(["deconvolve", str(tmp_path / "im.tif"), str(tmp_path / "psf.tif"), "-o",
                 str(out), "-n", "auto", "--background", "5", "--backend", "numpy",
                 *extra]) == 0
    made = read_provenance(out)
    assert made["rlcore"] == rlcore.__version__ and made["background"] == 5.0
    assert isinstance(made["iterations"], int) and made["iterations_rule"] != "fixed count"
    assert made["psf"] == [str(tmp_path / "psf.tif")] and "centred" in made["psf_preparation"]
    assert made["boundary"] == rlcore.boundary.DEFAULT_BOUNDARY
    assert ("uint16_scale" in made) == bool(extra)
    assert read_provenance(tmp_path / "im.tif") is None


def test_cli_depth_variant_psf_stack_in_one_file(tmp_path, rng, capsys):
    """One PSF file of K strata, (K, Z, Y, X), with its K depths: the result of one file
    per stratum (each centred as the faces centre one PSF); an ImageJ hyperstack's
    strata (its T axis) keep the file's voxel size, so they are resampled to the
    image's; a count that does not match, or a stack without depths, is one line."""
    psfs = [rlcore.psf.gaussian((7, 9, 9), (1.0 + 0.5 * k, 1.0 + 0.2 * k, 1.0))
            for k in range(3)]
    image = rng.poisson(rlcore.convolve(rng.random((30, 24, 24)) ** 8 * 400, psfs[1]) + 2)
    img = tmp_path / "img.ome.tif"
    write_image(img, image.astype(np.float32), VoxelSize(0.5, 0.1, 0.1))
    files = []
    for k, p in enumerate(psfs):
        files.append(str(tmp_path / f"psf{k}.tif"))
        tifffile.imwrite(files[-1], p)
    stack = tmp_path / "strata.tif"
    tifffile.imwrite(stack, np.stack(psfs))  # no axes metadata: the first axis is K
    depths = ["--psf-depths", "0", "14", "29"]
    outs = {}
    for name, psf_args in (("files", files), ("stack", [str(stack)])):
        outs[name] = tmp_path / f"{name}.tif"
        assert main(["deconvolve", str(img), *psf_args, "-o", str(outs[name]), "-n", "3",
                     "--backend", "numpy", *depths]) == 0
    np.testing.assert_array_equal(read_image(outs["stack"])[0], read_image(outs["files"])[0])
    hyper = tmp_path / "hyper.tif"  # ImageJ TZYX, z 0.25 um, xy 0.05 um
    tifffile.imwrite(hyper, np.stack(psfs)[:, :, None], imagej=True,
                     resolution=(20.0, 20.0), metadata={"spacing": 0.25, "unit": "um",
                                                        "axes": "TZCYX"})
    capsys.readouterr()
    assert main(["deconvolve", str(img), str(hyper), "-o", str(tmp_path / "h.tif"), "-n",
                 "3", "--backend", "numpy", *depths]) == 0
    assert f"PSF {hyper}[0] resampled from voxel size (0.25, 0.05, 0.05)" in \
        capsys.readouterr().err
    assert main(["deconvolve", str(img), str(stack), "-o", str(tmp_path / "bad.tif"),
                 "--backend", "numpy", "--psf-depths", "0", "29"]) == 2
    assert "2 depths for 3 PSF(s)" in capsys.readouterr().err
    assert main(["deconvolve", str(img), str(stack), "-o", str(tmp_path / "bad.tif"),
                 "--backend", "numpy"]) == 2
    assert "their K depths with --psf-depths" in capsys.readouterr().err
    assert not (tmp_path / "bad.tif").exists()


def test_cli_depth_variant_psf_files_with_their_depths(tmp_path, rng, capsys):
    """PSF files as a depth-variant PSF's strata (--psf-depths, or microns with
    --psf-depths-um): the API's result; the mistakes each one line."""
    psfs = [rlcore.psf.gaussian((7, 9, 9), (1.0 + 0.5 * k, 1.0 + 0.2 * k, 1.0))
            for k in range(3)]
    image = rng.poisson(rlcore.convolve(rng.random((30, 24, 24)) ** 8 * 400, psfs[1]) + 2)
    image = image.astype(np.float32)
    img = tmp_path / "img.ome.tif"
    write_image(img, image, VoxelSize(0.5, 0.1, 0.1))
    files = []
    for k, p in enumerate(psfs):
        files.append(str(tmp_path / f"psf{k}.tif"))
        tifffile.imwrite(files[-1], p)
    expected = face_deconvolve(image, psfs, 3, psf_depths=(0.0, 14.0, 29.0),
                               backend="numpy")
    for depths in (["--psf-depths", "0", "14", "29"], ["--psf-depths-um", "0", "7", "14.5"]):
        out = tmp_path / "out.tif"
        assert main(["deconvolve", str(img), *files, "-o", str(out), "-n", "3",
                     "--backend", "numpy", "--no-center-psf", "--overwrite", *depths]) == 0
        np.testing.assert_allclose(read_image(out)[0], expected, rtol=1e-5, atol=1e-5)
    capsys.readouterr()
    cases = [(["--psf-depths", "0", "14"], "2 depths for 3 PSF(s)"),
             (["--psf-depths", "0", "14", "29", "--psf-depths-um", "0", "1", "2"],
              "give one of them")]
    for extra, message in cases:
        assert main(["deconvolve", str(img), *files, "-o", str(tmp_path / "bad.tif"),
                     "--backend", "numpy", *extra]) == 2
        err = [e for e in capsys.readouterr().err.strip().splitlines()
               if "error" in e]  # (the PSF files' unknown voxel size is said too)
        assert len(err) == 1 and message in err[0], err
    out = tmp_path / "auto.tif"  # -n auto: the count chosen, the strata model's rule said
    assert main(["deconvolve", str(img), *files, "-o", str(out), "-n", "auto", "--backend",
                 "numpy", "--psf-depths", "0", "14", "29"]) == 0
    made = read_provenance(out)
    assert made["iterations_rule"].startswith("held-out band loss of the strata forward "
                                              "model (K = 3)")
    assert f"iterations auto: {made['iterations']} updates" in capsys.readouterr().err
    nz = tmp_path / "nz.tif"
    tifffile.imwrite(nz, image)  # no voxel size: microns cannot be converted
    assert main(["deconvolve", str(nz), *files, "-o", str(tmp_path / "bad.tif"),
                 "--psf-depths-um", "0", "7", "14"]) == 2
    assert "states no z voxel size" in capsys.readouterr().err
    assert not (tmp_path / "bad.tif").exists()
