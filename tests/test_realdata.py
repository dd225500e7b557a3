"""bench/realdata.py: the semi-synthetic sets' pieces and the LLS stack's checks."""

from __future__ import annotations

import numpy as np
import pytest

from bench import realdata as R
from rlcore import autostop


def test_shift_planes_x_interpolates_linearly(rng):
    a = rng.uniform(0, 1, (3, 4, 16))
    shifted = R.shift_planes_x(a, np.array([0.0, 1.0, 0.25]))
    np.testing.assert_allclose(shifted[0], a[0])
    np.testing.assert_allclose(shifted[1][..., :-1], a[1][..., 1:])
    np.testing.assert_allclose(shifted[2][..., :-1],
                               0.75 * a[2][..., :-1] + 0.25 * a[2][..., 1:])


def test_deskew_like_interpolation_correlates_noise_along_x(rng):
    shape = (32, 40, 64)
    shifts = (R.DESKEW_SHIFT * np.arange(shape[0])) % 1.0
    noise = R.shift_planes_x(rng.normal(0, 1, shape), shifts)[:, :, 1:-1]
    rho = np.corrcoef(noise[..., 1:].ravel(), noise[..., :-1].ravel())[0, 1]
    assert 0.2 < rho < 0.35  # E[f (1 - f)] / E[(1 - f)^2 + f^2] = 1/4


def test_pad_wedges_are_about_a_third():
    wedge = R.pad_wedges((48, 16, 128))
    assert 0.3 < wedge.mean() < 0.4
    assert wedge[0, :, 0].all() and not wedge[0, :, -1].any() and wedge[-1, :, -1].all()


def test_masked_nrmse_and_lls_metrics():
    t = np.arange(1.0, 25.0).reshape(2, 3, 4)
    assert R.nrmse(2 * t, t) == pytest.approx(0.0)
    mask = np.zeros(t.shape, bool)
    mask[0] = True
    x = t.copy()
    x[1] = 0  # wrong where the mask leaves out
    assert R.nrmse(x, t, mask) == pytest.approx(0.0)
    same = np.broadcast_to(np.arange(1.0, 65.0).reshape(1, 8, 8), (4, 8, 8)).astype(np.float32)
    cell = np.ones(same.shape, bool)
    m = R.lls_metrics(same, same[:3], cell)  # every plane the same: no jump
    assert m["jump"] == 0.0 and m["corr"] == pytest.approx(1.0)
    assert m["peak"] == pytest.approx(np.percentile(same, 99.99) / same.mean())


def test_the_lls_stack_fails_the_splits_assumptions(shared_data):
    """The deskewed LLS stack: its noise is correlated along x (the deskew's linear
    interpolation) and half of it is the wedge's pad; iterations="auto" falls back."""
    import tifffile

    image = tifffile.imread(shared_data / "lls_pycudadecon" / "im_deskewed.tif")
    psf = R.lls_psf(shared_data)
    pad = autostop.pad_mask(image)
    assert pad is not None and 0.4 < pad.mean() < 0.55
    found = autostop.check(image, psf, R.LLS_OFFSET, pad)
    assert found.rho is not None and 0.2 < found.rho[2] < 0.35
    assert np.all(np.abs(found.rho[:2]) < 0.07)
    assert "along x" in found.fallback and "padding" in found.fallback


@pytest.mark.parametrize("path", ["confocal_beads_bian/DeconvolutionSampleVerticalGrid1AU-crop.tif",
                                  "confocal_beads_bian/Bead_Image1_crop.tif",
                                  "deconwolf/dapi_001.tif"])
def test_the_real_unpadded_sets_read_no_padding(shared_data, path):
    """The 8-bit confocal grid and beads (values 1-8 and mostly 1-2: long runs of their
    commonest values, 19% and 46% of the voxels, read as padding before) and the
    widefield DAPI nuclei: no padding."""
    import tifffile

    assert autostop.pad_mask(tifffile.imread(shared_data / path)) is None


@pytest.mark.slow
def test_auto_on_the_default_boundary_lands_near_the_oracle(shared_data, tmp_path):
    """The semi-synthetic LLS Poisson set (an object cut by the faces) on the default
    boundary: auto within 5% of plain RL's best error and better than 10 plain updates
    (the loss corrected for the faces; uncorrected it stopped at 8, 6% above the
    oracle)."""
    import rlcore

    s = R.semi_sets(shared_data, tmp_path, only=["LLS Poisson (control)"])[0]
    curve = R.plain_curve(s, tmp_path, boundary="non-circulant-half")
    x, info = rlcore.deconvolve(s["image"], s["psf"], "auto", offset=s["offset"],
                                backend="numpy", return_info=True)
    error = R.nrmse(x, s["truth"], s["mask"])
    assert error <= 1.05 * curve.min(), (error, curve.min(), info.stop_rule)
    assert error < curve[9], (error, curve[9])
