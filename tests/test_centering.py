"""The result never shifts: a bead imaged at a known sub-voxel position comes back there
(within 0.25 voxel) through every face with its default options, whatever the centring
of the PSF array (``n // 2``, ``(n - 1) // 2``, or voxels off); the Python API keeps the
array as given and warns when its centroid is off ``n // 2``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile

import rlcore
from rlcore import psf as P
from rlcore.cli import main
from rlcore.compat import redlionfish as rlf

SHAPE = (32, 48, 48)
BEAD = (15.3, 24.6, 22.8)  # sub-voxel, (z, y, x)
SIGMA = (2.0, 1.4, 1.4)


def _gaussian(shape, centre, sigma) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    g = np.exp(-0.5 * sum(((x - c) / s) ** 2 for x, c, s in zip(grids, centre, sigma)))
    return (g / g.sum()).astype(np.float32)


def _psf(kind: str) -> np.ndarray:
    """The same optics, its array centred three ways."""
    if kind == "n // 2":
        return _gaussian((15, 17, 17), (7, 8, 8), SIGMA)
    if kind == "(n - 1) // 2":  # even lengths, peak one voxel before n // 2
        return _gaussian((16, 18, 18), (7, 8, 8), SIGMA)
    return _gaussian((21, 25, 25), (7, 15, 9), SIGMA)  # cropped by hand, (-3, +3, -3) off


def _image(rng) -> np.ndarray:
    bead = _gaussian(SHAPE, BEAD, (0.6, 0.6, 0.6)) * 4e5  # its centroid is BEAD
    blurred = rlcore.convolve(bead, _psf("n // 2"))
    return rng.poisson(blurred + 20).astype(np.float32)


def _position(result: np.ndarray) -> np.ndarray:
    r = np.asarray(result, np.float64)
    r = np.clip(r - np.median(r), 0, None)
    window = tuple(slice(int(round(c)) - 6, int(round(c)) + 7) for c in BEAD)
    local = ndi.center_of_mass(r[window])
    return np.array([w.start + c for w, c in zip(window, local)])


KINDS = ["n // 2", "(n - 1) // 2", "off by voxels"]


def test_centroid_offsets_of_the_three_centrings():
    assert np.allclose(P.centroid_offset(_psf("n // 2")), 0, atol=1e-6)
    assert np.allclose(P.centroid_offset(_psf("(n - 1) // 2")), -1, atol=0.05)
    assert np.allclose(P.centroid_offset(_psf("off by voxels")), (-3, 3, -3), atol=0.05)


@pytest.mark.parametrize("kind", KINDS)
def test_cli_keeps_the_bead_where_it_was_imaged(tmp_path, rng, capsys, kind):
    tifffile.imwrite(tmp_path / "img.tif", _image(rng))
    tifffile.imwrite(tmp_path / "psf.tif", _psf(kind))
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                 "-o", str(out), "--background", "20"]) == 0
    assert np.abs(_position(tifffile.imread(out)) - BEAD).max() <= 0.25
    if kind != "n // 2":
        assert "PSF centred on its centroid, moved by" in capsys.readouterr().err


@pytest.mark.parametrize("kind", KINDS)
def test_redlionfish_compat_keeps_the_bead_where_it_was_imaged(rng, kind):
    """As 3DCT calls it: uint8 data and PSF, resAsUint8, the default method."""
    image = _image(rng)
    data = rlf.helperfunctions.convertToUint8AndFullRange(image)
    psf = rlf.helperfunctions.convertToUint8AndFullRange(_psf(kind))
    out = rlf.doRLDeconvolutionFromNpArrays(data, psf, niter=10, resAsUint8=True)
    assert out.dtype == np.uint8
    assert np.abs(_position(out) - BEAD).max() <= 0.25


def test_api_keeps_the_array_as_given_and_warns_when_off_centre(rng):
    image = _image(rng) - 20
    exact = rlcore.deconvolve(image, _psf("n // 2"), 10)
    assert np.abs(_position(exact) - BEAD).max() <= 0.25
    with pytest.warns(UserWarning, match=r"centroid is \(-3.0, 3.0, -3.0\) voxels from"):
        shifted = rlcore.deconvolve(image, _psf("off by voxels"), 10)
    # n // 2 convention kept exactly: the array's voxel n // 2 is the centre, so the
    # result moves by minus the centroid's offset
    assert np.abs(_position(shifted) - (np.array(BEAD) - (-3, 3, -3))).max() <= 0.25
    fixed = rlcore.deconvolve(image, P.centered(_psf("off by voxels"))[0], 10)
    assert np.abs(_position(fixed) - BEAD).max() <= 0.25


def test_cli_no_center_psf_keeps_the_array_as_given(tmp_path, rng):
    tifffile.imwrite(tmp_path / "img.tif", _image(rng))
    tifffile.imwrite(tmp_path / "psf.tif", _psf("off by voxels"))
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                 "-o", str(out), "--background", "20", "--no-center-psf"]) == 0
    moved = _position(tifffile.imread(out)) - BEAD
    assert np.abs(moved - (3, -3, 3)).max() <= 0.25  # minus the centroid's offset


def test_redlionfish_submodules_and_names_its_scripts_import():
    """Every name RedLionfish 0.10's tests and scripts use, under its module paths."""
    import importlib

    names = {"RLDeconvolve": ["doRLDeconvolutionFromNpArrays", "doRLDeconvolutionFromFiles"],
             "RLDeconv3DScipy": ["doRLDeconvolution", "doRLDeconvolution_DL2_4",
                                 "doRLDeconvolution12"],
             "RLDeconv3DReiknaOCL": ["nonBlock_RLDeconvolutionReiknaOCL",
                                     "block_RLDeconv3DReiknaOCL", "printGPUInfo",
                                     "get_best_blockshape_and_blockstep", "isReiknaAvailable",
                                     "RL_CL_PLATFORM_PREFERENCE"],
             "helperfunctions": ["convertToUint8AndFullRange", "generateGaussPSF",
                                 "convertToFloat32AndNormalise"]}
    for module, attrs in names.items():
        m = importlib.import_module(f"rlcore.compat.redlionfish.{module}")
        assert getattr(rlf, module) is m
        for attr in attrs:
            assert hasattr(m, attr), f"{module}.{attr}"
    assert isinstance(rlf.RLDeconv3DReiknaOCL.isReiknaAvailable, bool)


@pytest.mark.parametrize("data, psf, size", [
    ((512, 512, 512), (32, 32, 32), 256), ((256, 256, 256), (32, 32, 32), 256),
    ((834, 300, 2048), (93, 205, 205), 512), ((834, 300, 2048), (93, 205, 205), 256),
    ((100, 700, 90), (9, 15, 15), 128)])
def test_redlionfish_block_plan_matches_redlionfish(data, psf, size):
    upstream = pytest.importorskip("RedLionfishDeconv.RLDeconv3DReiknaOCL",
                                   reason="redlionfish not installed (rlcore[test])")
    ours = rlf.RLDeconv3DReiknaOCL.get_best_blockshape_and_blockstep(data, psf, size, 1.2)
    assert ours == tuple(upstream.get_best_blockshape_and_blockstep(data, psf, size, 1.2))


def test_redlionfish_gauss_psf_matches_for_even_cubes():
    upstream = pytest.importorskip("RedLionfishDeconv.helperfunctions",
                                   reason="redlionfish not installed (rlcore[test])")
    ours = rlf.helperfunctions.generateGaussPSF((16, 16, 16), 3)
    np.testing.assert_allclose(ours, upstream.generateGaussPSF((16, 16, 16), 3), rtol=1e-6)
    assert rlf.helperfunctions.generateGaussPSF((9, 12, 15), 2).shape == (9, 12, 15)
