"""RedLionfish-compatible entry point, PSF tools, OME-Zarr I/O."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import face_deconvolve, gaussian_psf, rel_l2

import rlcore
from rlcore import psf as P
from rlcore.compat import redlionfish as rlf
from rlcore.io import VoxelSize, read_image, write_image
from rlcore.registry import get_backend

VOXEL = (0.125, 0.02249, 0.02249)


def _bead_like(rng, shape=(24, 40, 44)):
    data = rng.poisson(20 + 200 * rlcore.convolve(
        (rng.random(shape) > 0.995).astype(np.float32), gaussian_psf((7, 7, 7), 1.5))
    ).astype(np.uint8)
    psf = (gaussian_psf((9, 9, 9), 1.5) / gaussian_psf((9, 9, 9), 1.5).max() * 255)
    return data, psf.astype(np.uint8)


def test_3dct_style_call_uint8_tick_and_uint8_result(rng):
    data, psf = _bead_like(rng)
    ticks = []
    out = rlf.doRLDeconvolutionFromNpArrays(data, psf, niter=7, method="gpu",
                                            callbkTickFunc=lambda: ticks.append(1),
                                            resAsUint8=True)
    assert out.dtype == np.uint8 and out.shape == data.shape
    assert out.min() == 0 and out.max() == 255 and len(ticks) == 7


def test_float_call_equals_deconvolve(rng):
    data = (rng.random((12, 17, 19)) * 100 + 1).astype(np.float32)
    psf = rng.random((5, 5, 5))
    out = rlf.doRLDeconvolutionFromNpArrays(data, psf, niter=6, method="cpu",
                                            center_psf=False)
    np.testing.assert_array_equal(out, face_deconvolve(data, psf, 6, backend="numpy"))
    assert out.dtype == np.float32 and out.shape == data.shape  # odd last axis kept
    centred = rlf.doRLDeconvolutionFromNpArrays(data, psf, niter=6, method="cpu")
    np.testing.assert_array_equal(centred, face_deconvolve(data, P.centered(psf)[0], 6,
                                                             backend="numpy"))


def test_gpu_method_falls_back_to_cpu_with_a_log(rng, caplog):
    if get_backend("auto").name != "numpy":
        pytest.skip("a GPU backend works here, so there is no fallback to see")
    data = (rng.random((6, 7, 8)) + 1).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="rlcore.compat.redlionfish"):
        out = rlf.doRLDeconvolutionFromNpArrays(data, np.ones((3, 3, 3)), niter=2)
    assert "falling back to the CPU" in caplog.text
    np.testing.assert_array_equal(out, face_deconvolve(data, np.ones((3, 3, 3)), 2,
                                                         backend="numpy"))


@pytest.mark.parametrize("seed", range(20))
def test_uint8_rescale_reaches_255(seed):
    x = np.random.default_rng(seed).random((7, 9, 11)).astype(np.float32) * 1000 - 17
    out = rlf.to_uint8_full_range(x)
    assert out.min() == 0 and out.max() == 255


def test_uint8_rescale_matches_redlionfish(rng):
    helpers = pytest.importorskip("RedLionfishDeconv.helperfunctions",
                                  reason="redlionfish not installed (rlcore[test])")
    x = (rng.random((5, 6, 7)) * 37 - 3).astype(np.float32)
    np.testing.assert_array_equal(rlf.to_uint8_full_range(x),
                                  helpers.convertToUint8AndFullRange(x))


@pytest.mark.parametrize(("kwargs", "exc", "msg"), [
    ({"data_np": np.ones((4, 4))}, ValueError, "data_np: must be 3-D"),
    ({"psf_np": np.ones((3, 3))}, ValueError, "psf_np: must be 3-D"),
    ({"method": "tpu"}, ValueError, "method: must be 'gpu' or 'cpu'"),
    ({"callbkTickFunc": 3}, TypeError, "callbkTickFunc: must be callable"),
])
def test_compat_raises_instead_of_returning_none(kwargs, exc, msg):
    args = {"data_np": np.ones((4, 5, 6)), "psf_np": np.ones((3, 3, 3)), **kwargs}
    with pytest.raises(exc, match=msg):
        rlf.doRLDeconvolutionFromNpArrays(args.pop("data_np"), args.pop("psf_np"), **args)


def test_from_files(tmp_path, rng):
    data = (rng.random((8, 10, 12)) * 50 + 1).astype(np.float32)
    write_image(tmp_path / "d.tif", data, VoxelSize(0.2, 0.1, 0.1))
    write_image(tmp_path / "p.tif", gaussian_psf((5, 5, 5), 1.0).astype(np.float32))
    out = rlf.doRLDeconvolutionFromFiles(tmp_path / "d.tif", tmp_path / "p.tif", 4,
                                         savepath=tmp_path / "out.tif")
    saved, voxel = read_image(tmp_path / "out.tif")
    np.testing.assert_array_equal(saved, out)
    assert voxel.z == pytest.approx(0.2)


# -- PSF tools ---------------------------------------------------------------------------


def test_gaussian_is_centred_normalised_with_its_width():
    g = P.gaussian((15, 21, 20), (2.0, 1.5, 3.0))
    assert g.dtype == np.float32 and g.sum() == pytest.approx(1, rel=1e-6)
    assert np.unravel_index(g.argmax(), g.shape) == (7, 10, 10)
    widths = P.fwhm(g)
    np.testing.assert_allclose(widths, 2.3548 * np.array([2.0, 1.5, 3.0]), rtol=0.03)
    with pytest.raises(ValueError, match="sigma"):
        P.gaussian((5, 5), 0)


def test_center_crop_background():
    g = P.gaussian((11, 13, 15), 1.5)
    shifted = np.roll(g, (2, -3, 1), axis=(0, 1, 2))
    np.testing.assert_array_equal(P.center(shifted), g)
    c = P.crop(g, (5, 7, 9))
    assert c.shape == (5, 7, 9) and np.unravel_index(c.argmax(), c.shape) == (2, 3, 4)
    with pytest.raises(ValueError, match="shape"):
        P.crop(g, (20, 3, 3))
    noisy = g + 0.01
    np.testing.assert_allclose(P.background_subtract(noisy), g, atol=2e-3)
    with pytest.raises(ValueError, match="negative"):
        P.normalize(g - 0.1)


def test_widefield_psf():
    pytest.importorskip("psfmodels", reason="psfmodels not installed (rlcore[psf])")
    w = P.widefield((31, 33, 33), (0.3, 0.13, 0.13), na=1.45, wavelength=0.461, ni=1.512)
    assert w.shape == (31, 33, 33) and w.sum() == pytest.approx(1, rel=1e-5) and w.min() >= 0
    assert np.unravel_index(w.argmax(), w.shape) == (15, 16, 16)
    fz, fy, fx = P.fwhm(w, (0.3, 0.13, 0.13))
    assert fz > 1.5 * fx and fx == pytest.approx(fy)
    # diffraction: lateral FWHM about 0.51 lambda / NA (coarsely sampled at 0.13 um)
    assert 0.1 < fx < 0.3
    with pytest.raises(ValueError, match="na"):
        P.widefield((5, 5, 5), (0.3, 0.1, 0.1), na=1.6, wavelength=0.5, ni=1.515)


def test_distill_recovers_a_known_psf(rng):
    """Beads = random points * a known asymmetric PSF + background + noise: distilling
    gives back that PSF."""
    truth = P.gaussian((15, 15, 15), (2.5, 1.2, 1.6))
    points = np.zeros((40, 64, 64), np.float32)
    for _ in range(12):
        points[tuple(int(rng.integers(8, n - 8)) for n in points.shape)] = 20000.0
    beads = rlcore.convolve(points, truth) + 10.0
    beads = rng.poisson(beads).astype(np.float32)
    found = P.distill(beads, (15, 15, 15), iterations=40)
    assert found.shape == (15, 15, 15) and found.min() >= 0
    assert found.sum() == pytest.approx(1, rel=1e-5)
    assert rel_l2(found, truth) < 0.15
    np.testing.assert_allclose(P.fwhm(found), P.fwhm(truth), rtol=0.15)


def test_distill_without_beads_says_why():
    with pytest.raises(ValueError, match="beads: no bead found above threshold"):
        P.distill(np.ones((8, 8, 8)), threshold=5)


@pytest.mark.slow
def test_distill_real_confocal_beads(shared_data):
    import tifffile

    beads = tifffile.imread(shared_data / "confocal_beads_bian" / "Bead_Image1_crop.tif")
    assert len(P.detect_beads(beads - np.median(beads), threshold=20)) == 4
    psf = P.distill(beads, (31, 41, 41), threshold=20)
    assert psf.min() >= 0 and psf.sum() == pytest.approx(1, rel=1e-5)
    assert np.abs(P.centroid_offset(psf)).max() <= 0.1  # centred as the faces centre
    again, moved = P.centered(psf)  # as the CLI would, its own background estimate
    assert np.abs(moved).max() < 0.1  # measured 0.063 (was 2.2 voxels in x)
    fz, fy, fx = P.fwhm(psf, VOXEL)
    assert fz > 2 * fx  # a confocal PSF is longer in z


# -- I/O ---------------------------------------------------------------------------------


def test_ome_zarr_round_trip_keeps_voxel_size(tmp_path, rng):
    pytest.importorskip("ome_zarr", reason="ome-zarr not installed (rlcore[dask])")
    image = rng.random((5, 6, 7)).astype(np.float32)
    write_image(tmp_path / "a.ome.zarr", image, VoxelSize(0.3, 0.1019, 0.1019))
    back, voxel = read_image(tmp_path / "a.ome.zarr")
    np.testing.assert_array_equal(back, image)
    assert (voxel.z, voxel.y, voxel.x) == pytest.approx((0.3, 0.1019, 0.1019))
    with pytest.raises(FileExistsError):
        write_image(tmp_path / "a.ome.zarr", image)


def test_cli_reads_and_writes_ome_zarr(tmp_path, rng):
    pytest.importorskip("ome_zarr", reason="ome-zarr not installed (rlcore[dask])")
    from rlcore.cli import main

    image = (rng.random((6, 16, 18)) * 10 + 1).astype(np.float32)
    write_image(tmp_path / "in.ome.zarr", image, VoxelSize(0.2, 0.1, 0.1))
    write_image(tmp_path / "psf.tif", P.gaussian((3, 5, 5), 1.0))
    assert main(["deconvolve", str(tmp_path / "in.ome.zarr"), str(tmp_path / "psf.tif"),
                 "-o", str(tmp_path / "out.ome.zarr"), "-n", "3"]) == 0
    out, voxel = read_image(tmp_path / "out.ome.zarr")
    np.testing.assert_array_equal(out, face_deconvolve(image, P.gaussian((3, 5, 5), 1.0), 3))
    assert voxel.z == pytest.approx(0.2)
    assert main(["psf", "gaussian", "--shape", "5", "5", "5", "--sigma", "1",
                 "-o", str(tmp_path / "g.tif")]) == 0


@pytest.mark.parametrize("offset", [(0.4, -0.3, 0.25), (1.7, 0.5, -0.45)])
def test_center_subvoxel_moves_the_centroid_onto_the_centre(offset):
    """A Gaussian whose centre lies between voxels: the integer roll leaves the centroid
    off n // 2 by the fraction; subvoxel centring puts it there (within 0.02 voxel) and
    recovers the centred Gaussian."""
    import scipy.ndimage as ndi

    shape = (17, 20, 21)
    grid = np.indices(shape, dtype=np.float64)
    centre = [n // 2 + o for n, o in zip(shape, offset)]
    off = np.exp(-sum((g - c) ** 2 / (2 * s * s)
                      for g, c, s in zip(grid, centre, (2.0, 1.5, 1.5))))
    off = (off / off.sum()).astype(np.float32)
    before = np.array(ndi.center_of_mass(P.center(off)))
    out = P.center(off, subvoxel=True)
    after = np.array(ndi.center_of_mass(out))
    target = np.array([n // 2 for n in shape])
    assert np.abs(before - target).max() > 0.2
    np.testing.assert_allclose(after, target, atol=0.02)
    assert out.dtype == np.float32 and out.min() >= 0 and out.sum() == pytest.approx(1, rel=1e-5)
    np.testing.assert_allclose(out, P.gaussian(shape, (2.0, 1.5, 1.5)), atol=2e-3 * out.max())
    with pytest.raises(ValueError, match="psf"):
        P.center(np.zeros(shape), subvoxel=True)
