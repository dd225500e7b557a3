"""rlcore.psf.resample: sum, centre, identity, round trip, against psfmodels, bad input;
and the voxel-size keywords of rlcore.deconvolve / rlcore.convolve."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rlcore
from rlcore.psf import center_of, crop, gaussian, resample

FINE = (0.1, 0.1, 0.1)
COARSE = (0.3, 0.1, 0.1)


def _rel_l2(a, b):
    s = tuple(min(x, y) for x, y in zip(a.shape, b.shape))
    a, b = crop(a, s).astype(np.float64), crop(b, s).astype(np.float64)
    a, b = a / a.sum(), b / b.sum()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("to, shape", [(COARSE, (11, 21, 21)), ((0.05, 0.1, 0.1), (61, 21, 21)),
                                       ((0.1, 0.065, 0.065), (31, 31, 31)),
                                       ((0.1, 0.15, 0.15), (31, 15, 15))])
def test_sum_centre_shape_and_dtype_kept(to, shape):
    psf = gaussian((31, 21, 21), (5.0, 2.0, 2.0)) * 7.0  # sum 7
    out = resample(psf, FINE, to)
    assert out.shape == shape and out.dtype == np.float32
    assert float(out.sum()) == pytest.approx(7.0, rel=1e-5)
    assert np.all(out >= 0) and np.isfinite(out).all()
    centre = np.array(center_of(out)) - np.array(out.shape) // 2
    assert np.abs(centre).max() < 0.01, centre


def test_an_off_centre_even_psf_keeps_its_offset_scaled():
    """Voxel n // 2 goes onto m // 2: an offset of d input voxels is d * a / b output ones."""
    psf = np.roll(gaussian((32, 16, 16), (4.0, 2.0, 2.0)), 3, axis=0)
    out = resample(psf, FINE, COARSE)
    assert out.shape[0] % 2 == 1
    assert center_of(out)[0] - out.shape[0] // 2 == pytest.approx(1.0, abs=0.05)


def test_equal_voxel_sizes_give_the_values_as_float32_in_a_new_array():
    psf = gaussian((9, 12, 12), 2.0).astype(np.float64)
    out = resample(psf, COARSE, COARSE)
    assert out.dtype == np.float32 and out.shape == psf.shape
    np.testing.assert_array_equal(out, psf.astype(np.float32))
    out[...] = 0
    assert psf.max() > 0


def test_only_the_axes_that_change_are_touched():
    psf = gaussian((31, 21, 21), (5.0, 2.0, 2.0))
    out = resample(psf, FINE, COARSE)
    # y and x unchanged: each plane is a z-interpolation of whole planes; its profile in
    # x along the centre row is the input's, scaled
    row_in = psf[15, 10] / psf[15, 10].sum()
    row_out = out[5, 10] / out[5, 10].sum()
    np.testing.assert_allclose(row_out, row_in, atol=1e-6)


def test_round_trip_error_bound():
    """Fine -> coarse -> fine of a well-sampled PSF (the coarse z step still above
    Nyquist) comes back within 1% (relative L2)."""
    psf = gaussian((61, 25, 25), (8.0, 2.5, 2.5))
    back = resample(resample(psf, FINE, COARSE, average=()), COARSE, FINE, average=())
    assert back.shape == psf.shape
    assert _rel_l2(back, psf) < 0.01


def test_input_not_modified():
    psf = gaussian((15, 15, 15), 2.0)
    psf[0, 0, 0] = -1e-4  # a little ringing of its own
    before = psf.copy()
    resample(psf, FINE, COARSE)
    np.testing.assert_array_equal(psf, before)


def test_ringing_clipped_and_2d():
    psf = np.zeros((15, 15))
    psf[7, 7] = 1.0  # a delta: the spline rings below 0 around it
    out = resample(psf, (0.1, 0.1), (0.05, 0.05))
    assert out.shape == (29, 29) and out.min() >= 0 and out.sum() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(out), out.shape) == (14, 14)


def test_averaged_axes_are_smoother_than_sampled_ones():
    psf = gaussian((3, 41, 41), (1.0, 1.0, 1.0))
    sampled = resample(psf, (0.1, 0.05, 0.05), (0.1, 0.15, 0.15), average=())
    averaged = resample(psf, (0.1, 0.05, 0.05), (0.1, 0.15, 0.15))
    assert averaged.max() < sampled.max()  # the pixel integral spreads the peak


@pytest.mark.parametrize("args, match", [
    (((0.1, 0.1), COARSE), "from_voxel_size: 2 value"),
    ((FINE, (0.3, 0.0, 0.1)), "to_voxel_size: must be positive"),
    ((FINE, (0.3, float("nan"), 0.1)), "to_voxel_size: must be positive and finite"),
    ((-0.1, COARSE), "from_voxel_size: 1 value"),
    ((FINE, "abc"), "to_voxel_size: not a sequence of numbers"),
])
def test_bad_voxel_sizes_name_the_argument_and_the_fix(args, match):
    with pytest.raises(ValueError, match=match) as info:
        resample(gaussian((5, 5, 5), 1.0), *args)
    assert "pass one voxel size per axis, (z, y, x), in microns" in str(info.value)


def test_bad_psfs_are_refused():
    with pytest.raises(ValueError, match="psf: a 2-D .* or 3-D .* expected, got 4-D"):
        resample(np.ones((2, 3, 3, 3)), (1,) * 4, (2,) * 4)
    with pytest.raises(ValueError, match="psf: contains NaN"):
        resample(np.full((3, 3, 3), np.nan), FINE, COARSE)
    with pytest.raises(ValueError, match="psf: sum must be positive"):
        resample(np.zeros((3, 3, 3)), FINE, COARSE)
    with pytest.raises(TypeError, match="psf: a real numeric array"):
        resample(np.ones((3, 3, 3), complex), FINE, COARSE)
    with pytest.raises(ValueError, match="shape: 3 positive lengths"):
        resample(np.ones((3, 3, 3)), FINE, COARSE, shape=(3, 3))
    with pytest.raises(ValueError, match="average: axes of a 3-D PSF"):
        resample(np.ones((3, 3, 3)), FINE, COARSE, average=(3,))


def test_given_shape():
    out = resample(gaussian((31, 21, 21), 3.0), FINE, COARSE, shape=(9, 17, 17))
    assert out.shape == (9, 17, 17)
    assert np.abs(np.array(center_of(out)) - [4, 8, 8]).max() < 0.01


@pytest.mark.parametrize("a, b, bound", [(FINE, COARSE, 0.001), (COARSE, FINE, 0.03),
                                          ((0.2, 0.065, 0.065), (0.2, 0.1, 0.1), 0.01)])
def test_against_psfmodels_generated_directly(a, b, bound):
    pytest.importorskip("psfmodels", reason="psfmodels not installed (pip install "
                                            "'rlcore[psf]')")
    optics = dict(na=1.4, wavelength=0.52, ni=1.515)
    z = {0.1: 31, 0.3: 11, 0.2: 15}[a[0]]
    xy = 49 if a[1] == 0.1 else 75
    generated = rlcore.psf.widefield((z, xy, xy), a, **optics)
    out = resample(generated, a, b)
    direct = rlcore.psf.widefield(out.shape, b, **optics)
    assert _rel_l2(out, direct) < bound
    # and without resampling, far worse
    assert _rel_l2(generated, direct) > 10 * bound
    assert np.abs(np.array(center_of(out)) - np.array(center_of(direct))).max() < 0.05


# -- deconvolve / convolve ---------------------------------------------------------------

def test_deconvolve_resamples_with_both_voxel_sizes():
    rng = np.random.default_rng(0)
    fine = gaussian((31, 15, 15), (6.0, 1.5, 1.5))
    coarse = resample(fine, FINE, COARSE)
    image = rng.poisson(rlcore.convolve(rng.random((12, 24, 24)).astype(np.float32) * 50,
                                        coarse)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on this path
        got, info = rlcore.deconvolve(image, fine, 5, psf_voxel_size=FINE, voxel_size=COARSE,
                                      backend="numpy", return_info=True)
    want = rlcore.deconvolve(image, coarse, 5, backend="numpy")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(want.max()))
    assert info.psf_resampled == (FINE, COARSE)
    plain, info = rlcore.deconvolve(image, fine, 5, backend="numpy", return_info=True)
    assert info.psf_resampled is None
    assert not np.allclose(plain, want, rtol=1e-2)


def test_convolve_resamples_too():
    fine = gaussian((31, 15, 15), (6.0, 1.5, 1.5))
    x = np.zeros((12, 24, 24), np.float32)
    x[6, 12, 12] = 1
    got = rlcore.convolve(x, fine, psf_voxel_size=FINE, voxel_size=COARSE)
    np.testing.assert_allclose(got, rlcore.convolve(x, resample(fine, FINE, COARSE)),
                               atol=1e-7)


@pytest.mark.parametrize("given", [dict(voxel_size=COARSE), dict(psf_voxel_size=FINE)])
def test_one_voxel_size_alone_is_refused_naming_both(given):
    with pytest.raises(ValueError, match="psf_voxel_size.*voxel_size|voxel_size.*"
                                         "psf_voxel_size") as info:
        rlcore.deconvolve(np.ones((8, 8, 8), np.float32), np.ones((3, 3, 3)), 1, **given)
    assert "both" in str(info.value)


def test_equal_voxel_sizes_leave_the_psf_as_given():
    image = np.random.default_rng(1).random((8, 16, 16)).astype(np.float32)
    psf = gaussian((5, 5, 5), 1.0)
    got, info = rlcore.deconvolve(image, psf, 3, psf_voxel_size=COARSE, voxel_size=COARSE,
                                  backend="numpy", return_info=True)
    np.testing.assert_array_equal(got, rlcore.deconvolve(image, psf, 3, backend="numpy"))
    assert info.psf_resampled is None


def test_channels_each_psf_resampled():
    rng = np.random.default_rng(2)
    image = rng.random((2, 12, 16, 16)).astype(np.float32)
    psfs = [gaussian((31, 9, 9), (6.0, 1.5, 1.5)), gaussian((31, 9, 9), (4.0, 1.0, 1.0))]
    got = rlcore.deconvolve(image, psfs, 3, channel_axis=0, psf_voxel_size=FINE,
                            voxel_size=COARSE, backend="numpy")
    want = rlcore.deconvolve(image, [resample(p, FINE, COARSE) for p in psfs], 3,
                             channel_axis=0, backend="numpy")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
