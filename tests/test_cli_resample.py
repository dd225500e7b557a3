"""The CLI's PSF voxel-size path: resampled when both files state their voxel sizes (one
line says so), --no-resample-psf keeps the array (and the warning), an unknown size said;
``deconvolve`` and ``batch`` alike."""

from __future__ import annotations

import numpy as np
import pytest

import rlcore
from rlcore.cli import main
from rlcore.io import VoxelSize, read_image, read_provenance, write_image
from rlcore.psf import gaussian, resample

FINE = VoxelSize(0.1, 0.1, 0.1)
COARSE = VoxelSize(0.3, 0.1, 0.1)


def _files(tmp_path, psf_voxel=FINE, image_voxel=COARSE, name="image.tif"):
    rng = np.random.default_rng(0)
    psf = gaussian((31, 15, 15), (6.0, 1.5, 1.5))
    image = rng.poisson(40 * rng.random((32, 24, 24)) + 5).astype(np.float32)
    write_image(tmp_path / "psf.tif", psf, psf_voxel, overwrite=True)
    write_image(tmp_path / name, image, image_voxel)
    return tmp_path / name, tmp_path / "psf.tif", image, psf


def _err_lines(capsys):
    return capsys.readouterr().err.strip().splitlines()


def test_deconvolve_resamples_and_says_so(tmp_path, capsys):
    src, psf_file, image, psf = _files(tmp_path)
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(src), str(psf_file), "-o", str(out), "-n", "3",
                 "--backend", "numpy"]) == 0
    err = _err_lines(capsys)
    assert len(err) == 1, err
    assert "resampled from voxel size (0.1, 0.1, 0.1) um to the image's (0.3, 0.1, 0.1) um" \
           in err[0] and "(31, 15, 15) -> (11, 15, 15)" in err[0], err
    result, _ = read_image(out)
    want = rlcore.deconvolve(image, resample(psf, (0.1,) * 3, (0.3, 0.1, 0.1)), 3,
                             backend="numpy")
    np.testing.assert_allclose(result, want, rtol=1e-4, atol=1e-4 * float(want.max()))
    assert "resampled from (0.1, 0.1, 0.1) um to (0.3, 0.1, 0.1) um" in \
           read_provenance(out)["psf_preparation"]


def test_no_resample_psf_keeps_the_array_and_the_warning(tmp_path, capsys):
    src, psf_file, image, psf = _files(tmp_path)
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(src), str(psf_file), "-o", str(out), "-n", "3",
                 "--backend", "numpy", "--no-resample-psf"]) == 0
    err = _err_lines(capsys)
    assert len(err) == 1 and "warning: psf:" in err[0] and \
           "resample the PSF to the image's voxel size" in err[0], err
    result, _ = read_image(out)
    want = rlcore.deconvolve(image, psf, 3, backend="numpy")
    np.testing.assert_allclose(result, want, rtol=1e-4, atol=1e-4 * float(want.max()))


@pytest.mark.parametrize("psf_voxel, image_voxel, who", [
    (None, COARSE, "the PSF states no voxel size along z, y, x"),
    (FINE, None, "the image states no voxel size along z, y, x")])
def test_an_unknown_voxel_size_is_said_with_what_is_assumed(tmp_path, capsys, psf_voxel,
                                                             image_voxel, who):
    src, psf_file, image, psf = _files(tmp_path, psf_voxel, image_voxel)
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(src), str(psf_file), "-o", str(out), "-n", "2",
                 "--backend", "numpy"]) == 0
    err = _err_lines(capsys)
    assert len(err) == 1 and who in err[0] and "not resampled" in err[0], err
    result, _ = read_image(out)
    want = rlcore.deconvolve(image, psf, 2, backend="numpy")
    np.testing.assert_allclose(result, want, rtol=1e-4, atol=1e-4 * float(want.max()))


def test_equal_voxel_sizes_say_nothing(tmp_path, capsys):
    src, psf_file, _, _ = _files(tmp_path, COARSE, COARSE)
    assert main(["deconvolve", str(src), str(psf_file), "-o", str(tmp_path / "o.tif"),
                 "-n", "1", "--backend", "numpy"]) == 0
    assert _err_lines(capsys) == []


def test_batch_resamples_each_image_to_its_own_voxel_size(tmp_path, capsys):
    a, psf_file, image_a, psf = _files(tmp_path, FINE, COARSE, "a.tif")
    b, _, image_b, _ = _files(tmp_path, FINE, VoxelSize(0.2, 0.1, 0.1), "b.tif")
    out = tmp_path / "out"
    assert main(["batch", str(a), str(b), "--psf", str(psf_file), "-o", str(out), "-n",
                 "2", "--backend", "numpy"]) == 0
    err = _err_lines(capsys)
    assert sum("resampled from voxel size" in line for line in err) == 2, err
    assert any("(0.2, 0.1, 0.1) um" in line and "(31, 15, 15) -> (17, 15, 15)" in line
               for line in err), err
    for name, image, z in (("a.tif", image_a, 0.3), ("b.tif", image_b, 0.2)):
        want = rlcore.deconvolve(image, resample(psf, (0.1,) * 3, (z, 0.1, 0.1)), 2,
                                 backend="numpy")
        np.testing.assert_allclose(read_image(out / name)[0], want, rtol=1e-4,
                                   atol=1e-4 * float(want.max()))


def test_batch_no_resample_psf_warns_naming_the_file(tmp_path, capsys):
    a, psf_file, _, _ = _files(tmp_path, FINE, COARSE, "a.tif")
    assert main(["batch", str(a), "--psf", str(psf_file), "-o", str(tmp_path / "out"),
                 "-n", "1", "--backend", "numpy", "--no-resample-psf"]) == 0
    err = _err_lines(capsys)
    assert any(line.startswith(f"rlcore: warning: {a}: psf:") and "resample the PSF" in line
               for line in err), err
    assert not any("resampled from" in line for line in err), err
