"""rlcore.richardson_lucy against scikit-image's own, same inputs and settings."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rel_l2

import rlcore

skimage_restoration = pytest.importorskip(
    "skimage.restoration", reason="scikit-image is not installed (pip install rlcore[test])"
)


@pytest.mark.parametrize(
    ("shape", "psf_shape"), [((40, 50), (5, 5)), ((12, 20, 22), (3, 5, 7)), ((31, 30), (7, 3))]
)
@pytest.mark.parametrize("clip", [True, False])
def test_equals_skimage_for_odd_psfs(rng, shape, psf_shape, clip):
    image = rng.random(shape).astype(np.float32)
    psf = rng.random(psf_shape).astype(np.float32)
    psf /= psf.sum()
    ours = rlcore.richardson_lucy(image, psf, num_iter=15, clip=clip)
    theirs = skimage_restoration.richardson_lucy(image, psf, num_iter=15, clip=clip)
    assert ours.dtype == np.float32 and ours.shape == image.shape
    # float32 FFT vs scipy's float32 convolution: rounding only
    assert rel_l2(ours, theirs) < 1e-4


def test_defaults_and_value_range(rng):
    image = rng.random((24, 24)).astype(np.float32) * 4  # values up to 4
    psf = np.ones((3, 3)) / 9
    ours = rlcore.richardson_lucy(image, psf)  # num_iter=50, clip=True
    theirs = skimage_restoration.richardson_lucy(image, psf)
    assert ours.max() <= 1 and ours.min() >= -1
    assert rel_l2(ours, theirs) < 1e-4


def test_clip_applies_to_array_api_results(rng):
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict not installed")
    image = strict.asarray(rng.random((16, 18)).astype(np.float32) * 5)
    out = rlcore.richardson_lucy(image, np.ones((3, 3)) / 9, 5)
    assert float(strict.max(out)) <= 1.0 and float(strict.min(out)) >= -1.0


def test_filter_epsilon(rng):
    image = rng.random((20, 22)).astype(np.float32)
    image[:5] = 0
    psf = np.ones((3, 3)) / 9
    ours = rlcore.richardson_lucy(image, psf, 10, filter_epsilon=0.05)
    theirs = skimage_restoration.richardson_lucy(image, psf, 10, filter_epsilon=0.05)
    assert rel_l2(ours, theirs) < 1e-4
    with pytest.raises(ValueError, match="filter_epsilon"):
        rlcore.richardson_lucy(image, psf, 10, filter_epsilon=-1)
