"""PSF preparation on the real PSFs shipped in ``../shared/data`` (issue #31): the raw LLS
bead (``lls_pycudadecon/psf.tif``, camera offset about 100, median 142, peak 7 voxels off in
y), the same after a median background subtraction, RedLionfish's bead-averaged
``PSF_RFI_8bit.tif`` and a PSF distilled from the confocal beads. One pass of
:func:`rlcore.psf.centered` leaves the centre within 0.1 voxel of ``n // 2``, a second moves
it less than 0.05, the API's off-centre warning stays silent, and a bead deconvolved with
the centred PSF comes back where the data have it (within 0.25 voxel).
``bench/psf_centring.py`` prints the same numbers beside the function's before this change."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile

import rlcore
from rlcore import psf as P
from rlcore.validate import as_psf

pytestmark = pytest.mark.slow

NAMES = ["LLS raw", "LLS - median", "RFI 8-bit", "distilled confocal"]


@pytest.fixture(scope="module")
def real_psfs() -> dict[str, np.ndarray]:
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real data not found at {SHARED_DATA} (set RLCORE_SHARED_DATA)")
    lls = tifffile.imread(SHARED_DATA / "lls_pycudadecon" / "psf.tif")
    beads = tifffile.imread(SHARED_DATA / "confocal_beads_bian" / "Bead_Image1_crop.tif")
    return {
        "LLS raw": lls,
        "LLS - median": np.clip(lls.astype(np.float32) - np.median(lls), 0, None),
        "RFI 8-bit": tifffile.imread(SHARED_DATA / "redlionfish" / "PSF_RFI_8bit.tif"),
        "distilled confocal": P.distill(beads, (31, 41, 41), threshold=20),
    }


def _warnings(psf: np.ndarray) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        as_psf(psf, psf.shape)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("name", NAMES)
def test_one_pass_centres_a_real_psf_and_a_second_does_nothing(real_psfs, name):
    raw = real_psfs[name]
    given = raw.copy()
    out, moved = P.centered(raw)
    np.testing.assert_array_equal(raw, given)
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert np.isfinite(out).all() and out.min() >= 0 and out.sum() > 0
    assert np.abs(P.centroid_offset(out)).max() <= 0.1
    again, moved2 = P.centered(out)
    assert np.abs(moved2).max() < 0.05
    assert np.abs(P.centroid_offset(again)).max() <= 0.1
    assert not any("centroid is" in m for m in _warnings(out))
    # the shift applied is the centre's offset, to the refinement (the centre follows a
    # sub-voxel shift to a few hundredths of a voxel)
    np.testing.assert_allclose(moved, -np.array(P.centroid_offset(raw)), atol=0.05)
    # by whole voxels only: on the nearest voxel, and stays there
    whole, moved_whole = P.centered(raw, subvoxel=False)
    assert all(float(m).is_integer() for m in moved_whole)
    assert np.abs(P.centroid_offset(whole)).max() <= 0.5
    assert not any(P.centered(whole, subvoxel=False)[1])


def test_raw_lls_bead_background_from_its_border(real_psfs):
    """The level is that of the planes away from the bead (140-143), not the shell's
    median (147: hot columns and a brighter first plane), nor the whole stack's (142)."""
    level, noise = P.border_background(real_psfs["LLS raw"])
    assert 139 <= level <= 143 and 8 <= noise <= 12
    level, noise = P.border_background(real_psfs["LLS - median"])
    assert level == 0 and 5 <= noise <= 12
    # the raw stack and the median-subtracted one give the same centre
    np.testing.assert_allclose(P.center_of(real_psfs["LLS raw"]),
                               P.center_of(real_psfs["LLS - median"]), atol=0.05)
    # its peak (30, 71, 64): the centre within a voxel of it, not pulled to the middle
    np.testing.assert_allclose(P.center_of(real_psfs["LLS raw"]), (30, 71, 64), atol=0.5)


def test_a_given_background_is_what_is_removed(real_psfs):
    """``background=`` (the CLI's --psf-background): that constant, nothing else."""
    raw = real_psfs["LLS raw"]
    auto = P.centered(raw)[0]
    offset100 = P.centered(raw, background=100.0)[0]
    assert offset100.sum() > 10 * auto.sum()  # a pedestal of ~40 counts kept, as asked
    assert np.abs(P.centroid_offset(offset100)).max() <= 0.1


def test_crop_to_the_support_of_the_raw_lls_bead(real_psfs):
    out, moved = P.centered(real_psfs["LLS raw"], energy=P.SUPPORT_ENERGY)
    assert all(n % 2 == 1 for n in out.shape) and out.size < 0.05 * real_psfs["LLS raw"].size
    assert np.abs(P.centroid_offset(out)).max() <= 0.05 and not any(P.centered(out)[1])


def _box_centroid(a: np.ndarray, centre, half) -> np.ndarray:
    box = tuple(slice(max(0, int(round(c - h))), int(round(c + h)) + 1)
                for c, h in zip(centre, half))
    return np.array([s.start + c for s, c in zip(box, ndi.center_of_mass(
        np.clip(a[box], 0, None)))])


@pytest.mark.parametrize("name", NAMES)
def test_a_bead_deconvolved_with_a_centred_real_psf_stays_where_the_data_have_it(
        real_psfs, name):
    """Data: a bead (a 0.5-voxel Gaussian at a sub-voxel position) blurred by the real
    PSF's light (the PSF array as given, voxel n // 2 at the origin), noise-free. Its
    deconvolution by the centred PSF has its bead where the data have theirs: the same
    centre (:func:`rlcore.psf.center_of`), and the same centroid in a box of two widths at
    half maximum around it, within 0.25 voxel."""
    raw = real_psfs[name]
    truth = P.foreground(raw)
    psf, _ = P.centered(raw)
    half = [2 * P.fwhm(truth.sum(axis=tuple(b for b in range(3) if b != a)))[0]
            for a in range(3)]
    shape = tuple(n + 2 * int(np.ceil(h / 2)) for n, h in zip(raw.shape, half))
    x0 = np.array([n // 2 for n in shape]) + (0.3, -0.4, 0.2)
    grid = np.indices(shape, dtype=np.float64)
    bead = np.exp(-0.5 * sum((g - c) ** 2 for g, c in zip(grid, x0)) / 0.25)
    kernel = np.zeros(shape)
    kernel[tuple(slice(0, n) for n in raw.shape)] = truth / truth.sum()
    kernel = np.roll(kernel, [-(n // 2) for n in raw.shape], axis=(0, 1, 2))
    data = np.fft.irfftn(np.fft.rfftn(1e6 * bead / bead.sum()) * np.fft.rfftn(kernel),
                         shape, axes=(0, 1, 2))
    data = np.clip(data, 0, None).astype(np.float32)
    result = rlcore.deconvolve(data, psf, 30, backend="numpy", boundary="periodic")
    where = np.array(P.center_of(data, background=0.0))
    assert np.abs(np.array(P.center_of(result, background=0.0)) - where).max() <= 0.25
    moved = _box_centroid(result, where, half) - _box_centroid(data, where, half)
    assert np.abs(moved).max() <= 0.25
