"""Mathematical properties of the RL iteration and the operators, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gaussian_psf, rel_l2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rlcore


@pytest.mark.parametrize("mode", ["periodic", "zero"])
@pytest.mark.parametrize(
    ("shape", "psf_shape"),
    [((9, 12, 15), (4, 5, 6)), ((10, 11, 8), (3, 4, 5)), ((13, 16), (6, 5))],
)
def test_adjoint_dot_product(backend, rng, mode, shape, psf_shape):
    """<H x, y> == <x, H^T y> for random signed x, y: H^T is the exact adjoint."""
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.standard_normal(shape).astype(np.float32)
    psf = rng.random(psf_shape)
    hx = backend.convolve(x, psf, boundary=mode).astype(np.float64)
    hty = backend.convolve(y, psf, boundary=mode, adjoint=True).astype(np.float64)
    lhs, rhs = float(np.vdot(hx, y)), float(np.vdot(x, hty))
    scale = np.linalg.norm(hx) * np.linalg.norm(y)
    assert abs(lhs - rhs) <= 1e-6 * scale
    # and H^T is not H (the PSF is asymmetric), so the test can fail
    hy = backend.convolve(y, psf, boundary=mode).astype(np.float64)
    assert rel_l2(hy, hty) > 1e-2


def test_flux_is_conserved_with_periodic_boundary(backend, rng):
    image = (rng.random((12, 20, 18)) * 10).astype(np.float32)
    out = backend.deconvolve(image, rng.random((5, 5, 5)), 7)
    assert abs(out.astype(np.float64).sum() / image.astype(np.float64).sum() - 1) < 1e-5


@pytest.mark.parametrize("shape", [(8, 9, 10), (11, 12), (7, 8, 6)])
def test_delta_psf_at_n_over_2_is_identity(backend, rng, shape):
    """A single 1 at index n // 2 is the identity, for odd and even PSF sizes."""
    image = rng.random(shape).astype(np.float32) + 0.1
    for psf_shape in [(3,) * len(shape), (4,) * len(shape)]:
        delta = np.zeros(psf_shape)
        delta[tuple(n // 2 for n in psf_shape)] = 1.0
        np.testing.assert_allclose(backend.convolve(image, delta), image, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(backend.deconvolve(image, delta, 5), image, rtol=1e-5)


def test_shifted_delta_shifts_the_image(backend, rng):
    image = rng.random((10, 12)).astype(np.float32)
    psf = np.zeros((5, 5))
    psf[2 + 1, 2 - 2] = 1.0  # centre (2, 2) moved by (+1, -2)
    out = backend.convolve(image, psf)
    np.testing.assert_allclose(out, np.roll(image, (1, -2), axis=(0, 1)), rtol=1e-5, atol=1e-6)


def test_smaller_psf_equals_zero_padded_psf(backend, rng):
    image = rng.random((12, 14, 16)).astype(np.float32) + 0.5
    psf = rng.random((3, 5, 4))
    # padding keeps the centre voxel n // 2 in place: pad (k, k) on odd, (k, k) on even
    padded = np.pad(psf, [(2, 2), (1, 1), (3, 3)])
    a = backend.deconvolve(image, psf, 5)
    b = backend.deconvolve(image, padded, 5)
    assert rel_l2(a, b) < 1e-6


def test_larger_psf_is_centre_cropped_with_warning(backend, rng):
    image = rng.random((8, 10, 9)).astype(np.float32) + 0.5
    psf = rng.random((12, 13, 9))
    with pytest.warns(UserWarning, match="centre-cropped"):
        a = backend.deconvolve(image, psf, 4)
    cropped = psf[12 // 2 - 4 : 12 // 2 + 4, 13 // 2 - 5 : 13 // 2 + 5, :]
    b = backend.deconvolve(image, cropped, 4)
    assert rel_l2(a, b) < 1e-6


def test_gaussian_stays_gaussian_with_derived_variance(backend):
    """One RL step on Gaussian data with a Gaussian PSF gives a Gaussian (RedLionfish's
    'Gaussian propagation through RL iterations' notebook, here in variances).

    Data variance s2, PSF variance p2, x0 = y:  H x0 has s2 + p2; the ratio y / H x0 is a
    Gaussian of variance r2 = s2 (s2 + p2) / p2; H^T of it has r2 + p2; the product with
    x0 has 1 / v1 = 1 / s2 + 1 / (r2 + p2), i.e. v1 = s2 (s2^2 + s2 p2 + p2^2) / (s2 + p2)^2.
    For data that is the PSF itself (a point source, s2 = p2) v1 / p2 = 3 / 4.
    """
    n = 64
    axes = np.arange(n) - n // 2
    for s2, p2 in [(9.0, 4.0), (6.25, 6.25)]:
        image = gaussian_psf((n, n, n), np.sqrt(s2)).astype(np.float32) * 1e6
        psf = gaussian_psf((33, 33, 33), np.sqrt(p2))
        out = backend.deconvolve(image, psf, 1).astype(np.float64)
        expected = s2 * (s2**2 + s2 * p2 + p2**2) / (s2 + p2) ** 2
        for axis in range(3):
            profile = out.sum(axis=tuple(a for a in range(3) if a != axis))
            var = float((profile * axes**2).sum() / profile.sum())
            assert var == pytest.approx(expected, rel=2e-3)
        model = gaussian_psf((n, n, n), np.sqrt(expected)) * out.sum()
        assert rel_l2(out, model) < 1e-2
        if s2 == p2:
            assert expected / p2 == pytest.approx(0.75)


def test_iterations_zero_returns_the_first_estimate(backend, rng):
    image = rng.random((6, 7, 8)).astype(np.float32)
    np.testing.assert_array_equal(backend.deconvolve(image, np.ones((3, 3, 3)), 0), image)


def test_init_options(backend, rng):
    image = rng.random((6, 9, 8)).astype(np.float32) + 1
    psf = rng.random((3, 3, 3))
    flat = backend.deconvolve(image, psf, 0, init="flat")
    np.testing.assert_allclose(flat, np.full(image.shape, image.mean()), rtol=1e-6)
    const = backend.deconvolve(image, psf, 0, init=0.5)
    np.testing.assert_array_equal(const, np.full(image.shape, 0.5, np.float32))
    first = rng.random(image.shape).astype(np.float32) + 1
    a = backend.deconvolve(image, psf, 3, init=first)
    b = backend.deconvolve(image, psf, 3)
    assert rel_l2(a, b) > 1e-3  # a different first estimate gives a different answer


def test_callback_and_progress(backend, rng, capsys):
    calls = []
    image = rng.random((6, 8, 8)).astype(np.float32) + 1
    backend.deconvolve(image, np.ones((3, 3, 3)), 4, callback=lambda k, n: calls.append((k, n)),
                       progress=True)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert "4/4" in capsys.readouterr().err


def test_callback_exception_stops_the_run(rng):
    class Stop(Exception):
        pass

    seen = []

    def cb(k, n):
        seen.append(k)
        if k == 2:
            raise Stop

    with pytest.raises(Stop):
        rlcore.deconvolve(rng.random((6, 8)).astype(np.float32), np.ones((3, 3)), 10, callback=cb)
    assert seen == [1, 2]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(3, 12), st.integers(3, 12), st.integers(3, 12)),
    psf_size=st.integers(1, 5),
    scale=st.floats(1e-3, 1e4),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_inputs_scale_and_positivity(shape, psf_size, scale, seed):
    """For any positive image and PSF: finite, non-negative, flux kept (periodic), and
    RL(c * image) == c * RL(image) (the guard is relative to the image)."""
    r = np.random.default_rng(seed)
    image = (r.random(shape) + 0.05).astype(np.float32)
    psf = r.random((psf_size,) * 3) + 1e-3
    a = rlcore.deconvolve(image, psf, 4, boundary="periodic")
    b = rlcore.deconvolve((image * scale).astype(np.float32), psf, 4, boundary="periodic")
    assert np.isfinite(a).all() and (a >= -1e-6 * a.max()).all()
    assert abs(a.sum(dtype=np.float64) / image.sum(dtype=np.float64) - 1) < 1e-5
    assert rel_l2(b / scale, a) < 1e-5


def test_periodic_shift_equivariance(backend, rng):
    image = rng.random((10, 12, 14)).astype(np.float32) + 0.2
    psf = rng.random((3, 5, 3))
    a = backend.deconvolve(np.roll(image, (3, -4, 5), axis=(0, 1, 2)), psf, 5)
    b = np.roll(backend.deconvolve(image, psf, 5), (3, -4, 5), axis=(0, 1, 2))
    assert rel_l2(a, b) < 1e-5


def test_zero_image_gives_zero_and_no_nan(backend):
    out = backend.deconvolve(np.zeros((6, 7, 8), np.float32), np.ones((3, 3, 3)), 5)
    assert np.isfinite(out).all() and not out.any()


def test_guard_keeps_sparse_data_finite(backend, rng):
    """Zero background far from a few points: H x underflows there; no NaN or inf."""
    points = np.zeros((16, 32, 32), np.float32)
    points[8, 16, 16] = 1e4
    points[3, 5, 30] = 7.0
    psf = gaussian_psf((9, 9, 9), 1.2)
    image = rlcore.convolve(points, psf, boundary="zero")  # tails underflow to 0
    out = backend.deconvolve(np.clip(image, 0, None), psf, 60)
    assert np.isfinite(out).all() and out.min() >= -1e-3 * out.max()
    assert out[8, 16, 16] > 5 * image[8, 16, 16]  # the point sharpens back


@pytest.mark.parametrize(("psf_shape", "grid"), [((3, 4, 5), (7, 8, 9)), ((6, 1), (6, 10)),
                                                  ((5,), (5,))])
def test_place_psf_matches_index_formula(rng, psf_shape, grid):
    """Slab placement equals the definition: index i goes to (i - n // 2) mod g."""
    from rlcore.boundary import place_psf

    psf = rng.random(psf_shape).astype(np.float32)
    expected = np.zeros(grid, np.float32)
    index = np.ix_(*[(np.arange(n) - n // 2) % g for n, g in zip(psf_shape, grid)])
    expected[index] = psf
    np.testing.assert_array_equal(place_psf(psf, grid), expected)
