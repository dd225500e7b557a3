"""The result never shifts: a bead imaged at a known sub-voxel position comes back there
(within 0.25 voxel) through every face with its default options, whatever the centring
of the PSF array (``n // 2``, ``(n - 1) // 2``, or voxels off); the Python API keeps the
array as given and warns when its centroid is off ``n // 2``. Raw bead stacks (a camera
pedestal, read noise, a neighbouring bead, a side lobe, hot columns, a brighter first
plane, the bead voxels off centre): :func:`rlcore.psf.centered` centres them in one pass
(within 0.1 voxel), a second pass does nothing, and the API's warning stays silent
(``tests/test_psf_real.py``: the same on the real PSFs)."""

from __future__ import annotations

import warnings

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


# -- a raw bead stack: pedestal, noise, a neighbouring bead, an off-centre peak ----------

RAW_SHAPE = (41, 64, 64)
RAW_SIGMA = (2.5, 1.5, 1.5)


def _raw_bead(rng, centre, *, pedestal=140.0, noise=10.0, neighbour=None, lobe=False,
              hot_face=False, bright_plane=False) -> np.ndarray:
    """A camera-like bead stack (uint16): a Gaussian bead of peak 5000 counts at the
    sub-voxel ``centre``, a pedestal, Gaussian read noise, and optionally a neighbouring
    bead (``neighbour``: its centre, 70% as bright), a side lobe (an asymmetric PSF: 8%
    of the peak 9 planes below it), a hot first column (20 counts up) and a brighter
    first plane (10 counts up), as the LLS bead of ``../shared/data`` has."""
    grid = np.indices(RAW_SHAPE, dtype=np.float64)

    def blob(c, peak, sigma=RAW_SIGMA):
        return peak * np.exp(-0.5 * sum(((g - x) / s) ** 2 for g, x, s in zip(grid, c, sigma)))

    light = blob(centre, 5000.0)
    if lobe:
        light += blob((centre[0] - 9, centre[1], centre[2]), 400.0, (2.0, 2.5, 2.5))
    if neighbour is not None:
        light += blob(neighbour, 3500.0)
    raw = pedestal + light + rng.normal(0, noise, RAW_SHAPE)
    if hot_face:
        raw[:, :, 0] += 20
    if bright_plane:
        raw[0] += 10
    return np.clip(np.round(raw), 0, None).astype(np.uint16)


RAW_CASES = {
    "pedestal and noise": dict(centre=(20.3, 32.6, 31.8)),
    "off-centre peak": dict(centre=(15.4, 39.2, 27.7)),
    "neighbouring bead": dict(centre=(21.2, 30.4, 33.6), neighbour=(21.0, 31.0, 47.0)),
    "side lobe, hot column": dict(centre=(22.6, 34.3, 30.2), lobe=True, hot_face=True),
    "bright first plane, off-centre": dict(centre=(23.6, 38.3, 28.9), bright_plane=True,
                                           hot_face=True),
}


def _off_centre_warnings(psf: np.ndarray) -> list[str]:
    from rlcore.validate import as_psf

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        as_psf(psf, psf.shape)
    return [str(w.message) for w in caught if "centroid is" in str(w.message)]


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_centred_raw_bead_converges_in_one_pass_and_is_idempotent(rng, case):
    kwargs = RAW_CASES[case]
    raw = _raw_bead(rng, **kwargs)
    given = raw.copy()
    target = np.array([n // 2 for n in RAW_SHAPE])
    if not kwargs.get("lobe"):  # a symmetric bead: its centre is where it was drawn
        np.testing.assert_allclose(P.center_of(raw), kwargs["centre"], atol=0.05)
    assert _off_centre_warnings(raw)  # the API warns about the raw stack

    out, moved = P.centered(raw)
    np.testing.assert_array_equal(raw, given)  # the input is not modified
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert np.isfinite(out).all() and out.min() >= 0
    np.testing.assert_allclose(moved, target - np.array(P.center_of(raw)), atol=0.05)
    assert np.abs(P.centroid_offset(out)).max() <= 0.1  # one pass: within 0.1 voxel
    again, moved2 = P.centered(out)
    assert np.abs(moved2).max() < 0.05 and again is out  # a second pass: no move
    assert _off_centre_warnings(out) == []  # and the API does not warn any more
    # the pedestal is gone: nothing is left to remove at the border
    level, noise = P.border_background(out)
    assert level + 3 * noise <= 1e-4 * out.max()

    whole, moved_whole = P.centered(raw, subvoxel=False)
    assert all(float(m).is_integer() for m in moved_whole)
    assert np.abs(P.centroid_offset(whole)).max() <= 0.5  # on the nearest voxel
    assert not any(P.centered(whole, subvoxel=False)[1])


def test_border_background_of_a_raw_and_a_clipped_stack(rng):
    raw = _raw_bead(rng, (20.3, 32.6, 31.8), hot_face=True)
    level, noise = P.border_background(raw)
    assert abs(level - 140) <= 1 and abs(noise - 10) <= 1  # the hot face is not taken
    clipped = np.clip(raw.astype(np.float32) - np.median(raw), 0, None)
    level, noise = P.border_background(clipped)
    assert level == 0 and 5 <= noise <= 12  # the noise cut at 0: read above the level
    # no pedestal left: 3.99 counts a voxel clipped, 0.002 in the foreground
    assert clipped[:, :8].mean() > 2 and P.foreground(clipped)[:, :8].mean() < 0.05
    with pytest.raises(ValueError, match="border: must be >= 1"):
        P.border_background(raw, border=0)


def test_a_bead_deconvolved_with_a_centred_raw_psf_comes_back_where_imaged(rng):
    """The data are blurred by the bead's optics; the PSF is a raw stack of the same
    optics, off-centre, on a pedestal with noise and a neighbouring bead: centred, it
    puts the bead back where the data have it."""
    image = _image(rng) - 20
    grid = np.indices((21, 31, 31), dtype=np.float64)
    centre = (12.4, 11.3, 18.6)  # off n // 2 = (10, 15, 15) by (+2.4, -3.7, +3.6)
    light = 5000 * np.exp(-0.5 * sum(((g - c) / s) ** 2 for g, c, s in
                                     zip(grid, centre, SIGMA)))
    light += 3000 * np.exp(-0.5 * sum(((g - c) / s) ** 2 for g, c, s in
                                      zip(grid, (12, 26, 4), SIGMA)))
    raw = np.round(140 + light + rng.normal(0, 10, light.shape)).astype(np.uint16)
    psf, _ = P.centered(raw)
    assert _off_centre_warnings(psf) == []
    out = rlcore.deconvolve(image, psf, 10)
    assert np.abs(_position(out) - BEAD).max() <= 0.25


def test_centring_never_wraps_light_around_the_array():
    """A bead near the high face and a second, dim one at the low face: moving the bead
    to the middle drops the dim one off the array, a roll would wrap it in at the top."""
    shape = (15, 17, 21)
    grid = np.indices(shape, dtype=np.float64)
    bead = np.exp(-0.5 * sum(((g - c) / s) ** 2
                             for g, c, s in zip(grid, (7, 8, 14.3), (1.5, 1.5, 1.5))))
    dim = 0.3 * np.exp(-0.5 * sum(((g - c) / s) ** 2
                                  for g, c, s in zip(grid, (7, 8, 1), (1.0, 1.0, 1.0))))
    for out in (P.centered((bead + dim).astype(np.float32), background=0.0)[0],
                P.center((bead + dim).astype(np.float32), subvoxel=True)):
        assert np.unravel_index(np.argmax(out), shape) == (7, 8, 10)
        assert out[:, :, 16:].max() < 1e-3 * out.max()  # where a roll puts the dim bead
        assert np.abs(P.centroid_offset(out, background=0.0)).max() <= 0.02


def test_centered_with_a_background_removes_just_that():
    """``background=`` (the CLI's --psf-background) subtracts that constant, also from an
    already-centred stack, and only that: no border estimate, no noise threshold."""
    g = P.gaussian((15, 17, 17), (2.0, 1.5, 1.5)) * 1e4 + 100
    as_given, moved = P.centered(g)
    assert as_given is g and not any(moved)  # centred: returned as given
    out, moved = P.centered(g, background=100.0)
    assert not any(moved) and out.dtype == np.float32
    np.testing.assert_allclose(out, g - 100, atol=1e-3)
    partly = P.centered(g, background=60.0)[0]
    np.testing.assert_allclose(partly, g - 60, atol=1e-3)  # a pedestal of 40 kept, as asked
    off = np.roll(g, 3, axis=2)
    out, moved = P.centered(off, background=100.0)
    assert np.abs(P.centroid_offset(out)).max() <= 0.02
    np.testing.assert_allclose(moved, (0, 0, -3), atol=0.02)


def test_centered_crops_to_the_support_on_request(rng):
    raw = _raw_bead(rng, (15.4, 39.2, 27.7))
    full = P.centered(raw)[0]
    out, moved = P.centered(raw, energy=P.SUPPORT_ENERGY)
    assert all(n % 2 == 1 for n in out.shape) and out.size < raw.size / 10
    # 99.9% of the bead's light; the rest of the whole array's is noise left above the
    # threshold, spread over the array (0.4% here)
    assert out.sum() >= 0.99 * full.sum()
    assert np.abs(P.centroid_offset(out)).max() <= 0.05
    assert not any(P.centered(out)[1])


@pytest.mark.parametrize("bad, kwargs, error, match", [
    (np.full((5, 5, 5), np.nan), {}, ValueError, "psf: contains NaN"),
    (np.zeros((5, 5, 5)), {}, ValueError, "psf: sum must be positive"),
    (np.zeros((0, 5)), {}, ValueError, "psf: must be an array with at least one"),
    (np.array(["a", "b"]), {}, TypeError, "psf: must be a real numeric array"),
    (np.ones((5, 5, 5)), {"background": "100"}, TypeError, "background: a number"),
    (np.ones((5, 5, 5)), {"background": np.inf}, ValueError, "background: must be finite"),
    (np.ones((5, 5, 5)), {"background": 2.0}, ValueError,
     r"background: 2 is at or above every voxel of the PSF \(maximum 1\); pass a lower"),
    (np.ones((5, 5, 5)), {"energy": 0}, ValueError, r"energy: a fraction in \(0, 1\]"),
    (np.ones((5, 5, 5)), {"energy": 1.5}, ValueError, r"energy: a fraction in \(0, 1\]"),
])
def test_centered_bad_input_says_which_argument_and_the_fix(bad, kwargs, error, match):
    with pytest.raises(error, match=match):
        P.centered(bad, **kwargs)
