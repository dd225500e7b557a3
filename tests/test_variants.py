"""Non-circulant boundary, acceleration, RLTV and tol, on every backend, against
independent float64 reimplementations (direct convolution by scipy.ndimage)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import gaussian_psf, rel_l2

import rlcore
from rlcore.api import GUARD_RELATIVE, NONCIRCULANT_GUARD
from rlcore.boundary import make_grid


def _conv(x, h):
    return ndi.convolve(x, h, mode="wrap")


def _corr(x, h):
    return ndi.correlate(x, h, mode="wrap")


def _ratio(y, hx, eps):
    return np.divide(y, hx, out=np.zeros_like(hx), where=hx > eps)


def reference_noncirculant(image, psf, iterations, fast_len=None):
    grid = make_grid(image.shape, psf.shape, "non-circulant", fast_len=fast_len)
    h = psf / psf.sum()
    y = np.zeros(grid.shape)
    y[grid.region] = image
    mask = np.zeros(grid.shape)
    mask[grid.region] = 1
    x = np.full(grid.shape, image.astype(np.float64).mean())
    x[grid.region] = image
    weight = _corr(mask, h)
    inv = np.divide(1.0, weight, out=np.zeros_like(weight), where=weight > NONCIRCULANT_GUARD)
    x[inv == 0] = 0  # voxels outside the object's domain (not estimated) are 0 throughout
    eps = GUARD_RELATIVE * image.max()
    for _ in range(iterations):
        x = x * _corr(_ratio(y, _conv(x, h), eps), h) * inv
    return x[grid.region]


def reference_accelerated(image, psf, iterations):
    """Biggs & Andrews (1997) first-order vector extrapolation, as in cudaDecon."""
    h = psf / psf.sum()
    y = image.astype(np.float64)
    eps = GUARD_RELATIVE * y.max()
    x, previous, g_previous, alpha = y.copy(), None, None, 0.0
    for _ in range(iterations):
        yk = np.maximum(x + alpha * (x - previous), 0) if alpha > 0 else x
        new = yk * _corr(_ratio(y, _conv(yk, h), eps), h)
        g = new - yk
        if g_previous is not None:
            alpha = float(np.clip((g * g_previous).sum() / (g_previous**2).sum(), 0, 1))
        g_previous, previous, x = g, x, new
    return x


def tv_factor64(x, weight):
    eps = 1e-8 * np.abs(x).max() + 1e-30
    grads = [np.roll(x, -1, axis=a) - x for a in range(x.ndim)]
    norm = np.sqrt(sum(g * g for g in grads) + eps * eps)
    div = sum(g / norm - np.roll(g / norm, 1, axis=a) for a, g in enumerate(grads))
    return 1.0 / (1.0 - weight * div)


def reference_tv(image, psf, iterations, weight):
    """RLTV, Dey et al. (2006), eq. (9)."""
    h = psf / psf.sum()
    y = image.astype(np.float64)
    eps = GUARD_RELATIVE * y.max()
    x = y.copy()
    for _ in range(iterations):
        x = x * _corr(_ratio(y, _conv(x, h), eps), h) * tv_factor64(x, weight)
    return x


@pytest.fixture
def case(rng):
    image = (rng.random((12, 18, 21)) * 50 + 5).astype(np.float32)
    return image, rng.random((5, 4, 7))


def test_noncirculant_matches_reference(backend, case):
    image, psf = case
    out = backend.deconvolve(image, psf, 8, boundary="non-circulant")
    assert rel_l2(out, reference_noncirculant(image, psf, 8, backend.fast_len)) < 1e-5


def test_accelerated_matches_reference(backend, case):
    image, psf = case
    out = backend.deconvolve(image, psf, 12, accelerate=True)
    ref = reference_accelerated(image, psf, 12)
    assert rel_l2(out, ref) < 1e-4  # the step size depends on float32 sums
    # and it is not plain RL (the extrapolation did something)
    assert rel_l2(out, backend.deconvolve(image, psf, 12)) > 1e-3


def test_tv_matches_reference(backend, case):
    image, psf = case
    out = backend.deconvolve(image, psf, 6, tv=0.01)
    assert rel_l2(out, reference_tv(image, psf, 6, 0.01)) < 1e-5
    assert rel_l2(out, backend.deconvolve(image, psf, 6)) > 1e-4


def test_modes_combine(backend, case):
    image, psf = case
    out = backend.deconvolve(image, psf, 6, boundary="non-circulant", accelerate=True, tv=0.002)
    assert out.shape == image.shape and np.isfinite(out).all() and out.min() >= 0


def test_tol_stops_early_and_reports(backend, case):
    image, psf = case
    out, info = rlcore.deconvolve(backend.to_input(image), psf, 500, backend=backend.name,
                                  tol=1e-3, return_info=True, boundary="periodic")
    result = backend.to_numpy(out)
    assert info.converged and 1 <= info.iterations < 500
    assert info.backend == backend.name and info.grid_shape == image.shape
    # the same number of plain iterations gives the same result
    assert rel_l2(result, backend.deconvolve(image, psf, info.iterations)) < 1e-6
    _, full = rlcore.deconvolve(image, psf, 3, tol=1e-12, return_info=True,
                                boundary="periodic")
    assert full.iterations == 3 and not full.converged
    _, last = rlcore.deconvolve(image, psf, info.iterations, tol=1e-3, return_info=True,
                                boundary="periodic")
    assert last.iterations == info.iterations and last.converged  # met on the last update


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"tv": 0.2}, ValueError, "tv: must be in [0, 0.1667)"),
        ({"tv": -0.1}, ValueError, "tv: must be in"),
        ({"tv": "a"}, TypeError, "tv: must be a number"),
        ({"tol": 0}, ValueError, "tol: must be in (0, 1)"),
        ({"tol": 2.0}, ValueError, "tol: must be in (0, 1)"),
        ({"accelerate": 1}, TypeError, "accelerate: must be False, True, 'biggs-andrews'"),
        ({"accelerate": "nesterov"}, ValueError, "accelerate: must be False, True"),
        ({"back_projector": "wiener"}, ValueError, "back_projector: must be one of"),
        ({"back_projector": 3}, TypeError, "back_projector: must be a name"),
        ({"boundary": "circulant"}, ValueError, "boundary: must be one of"),
    ],
)
def test_bad_options(kwargs, exc, message):
    with pytest.raises(exc) as info:
        rlcore.deconvolve(np.ones((5, 6, 7), np.float32), np.ones((3, 3, 3)), 2, **kwargs)
    assert message in str(info.value)


def _edge_object_case(rng, pad=12):
    """An object that continues beyond the field of view: blur a larger field, crop it."""
    full = np.zeros((40 + 2 * pad, 48 + 2 * pad, 48 + 2 * pad))
    for _ in range(60):
        z, y, x = (rng.integers(0, n) for n in full.shape)
        full[max(z - 2, 0):z + 2, max(y - 3, 0):y + 3, max(x - 3, 0):x + 3] += rng.random() * 100
    psf = gaussian_psf((15, 15, 15), (2.5, 1.5, 1.5))
    blurred = ndi.convolve(full, psf, mode="constant")
    crop = (slice(pad, -pad),) * 3
    truth = full[crop]
    image = (blurred[crop] + 1.0).astype(np.float32)  # a small background
    return image, psf, truth + 1.0


def test_noncirculant_has_the_smallest_error_at_the_edges(rng):
    image, psf, truth = _edge_object_case(rng)
    band = np.ones(truth.shape, bool)
    half = tuple(n // 2 for n in psf.shape)
    band[tuple(slice(h, -h) for h in half)] = False  # the outer band of PSF half-width
    errors = {}
    for mode in ("periodic", "zero", "reflect", "non-circulant"):
        out = rlcore.deconvolve(image, psf, 30, boundary=mode)
        errors[mode] = np.sqrt(np.mean((out[band] - truth[band]) ** 2))
    assert errors["non-circulant"] < errors["periodic"]
    assert errors["non-circulant"] < errors["zero"]


def test_noncirculant_acceleration_does_not_depend_on_grid_rounding(rng):
    """Grid voxels that no measured voxel sees are not estimated: they start at 0, so
    Biggs-Andrews' step (a sum over the whole grid) is the same whichever length the
    backend rounds the grid up to (before: 3.5e-3 between numpy's and reikna's grids)."""
    image = (rng.random((12, 30, 28)) * 100 + 1).astype(np.float32)
    psf = gaussian_psf((7, 7, 7), 1.0)
    results = []
    for power_of_two in (False, True):
        be = rlcore.registry.get_backend("numpy")
        if power_of_two:
            be.fast_length = lambda n: 1 << max(1, (int(n) - 1).bit_length())
        with rlcore.Deconvolver(psf, image.shape, 10, backend=be,
                                boundary="non-circulant", accelerate="biggs-andrews") as plan:
            results.append((plan.grid.shape, plan.run(image)))
    (grid_a, a), (grid_b, b) = results
    assert grid_a != grid_b
    assert rel_l2(a, b) < 1e-4


def test_release_frees_the_plan_and_keeps_the_result(rng):
    image = (rng.random((10, 24, 20)) * 50).astype(np.float32)
    psf = gaussian_psf((5, 5, 5), 1.0)
    plan = rlcore.Deconvolver(psf, image.shape, 4, backend="numpy", boundary="non-circulant")
    kept = plan.run(image)
    released = plan.run(image, release=True)
    assert np.array_equal(kept, released)
    assert plan.operator is None and plan.normalization is None
    with pytest.raises(RuntimeError, match="closed"):
        plan.run(image)


def test_numpy_guarded_division_in_pieces_matches_a_plain_guard(rng, monkeypatch):
    """The guarded division and zero_where run in pieces (bounded boolean masks): the
    same values as one masked pass, across piece boundaries."""
    from rlcore.backends import numpy as numpy_backend

    monkeypatch.setattr(numpy_backend, "_PIECE", 7 * 13)  # several pieces per slab
    be = rlcore.registry.get_backend("numpy")
    num = rng.random((9, 13, 11)).astype(np.float32)
    den = rng.random((9, 13, 11)).astype(np.float32)
    den[rng.random(den.shape) < 0.3] = 0
    out = be.divide_guarded(num, den, 1e-3, out=np.empty_like(den))
    keep = den > 1e-3
    assert np.array_equal(out, np.where(keep, num / np.where(keep, den, 1), 0))
    x = num.copy()
    assert np.array_equal(be.zero_where(x, den), np.where(den != 0, num, 0))
