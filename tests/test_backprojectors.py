"""Unmatched back projectors (Wiener-Butterworth, OTF-masked) and momentum, on every
backend, against float64 reimplementations by direct convolution (scipy.ndimage)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import gaussian_psf, rel_l2
from hypothesis import given, settings
from hypothesis import strategies as st

import rlcore
from rlcore import backprojector
from rlcore.api import GUARD_RELATIVE


def _ratio(y, hx, eps):
    return np.divide(y, hx, out=np.zeros_like(hx), where=hx > eps)


def reference(image, psf, iterations, back=None, momentum=False):
    """Float64 RL with an optional back-projector kernel ``back`` (convolved, update
    clipped at 0) and deconwolf's momentum (a_k = (k - 1) / (k + 2))."""
    h = psf / psf.sum()
    y = image.astype(np.float64)
    eps = GUARD_RELATIVE * y.max()
    x, previous = y.copy(), y.copy()
    for k in range(1, iterations + 1):
        a = (k - 1) / (k + 2) if momentum and k > 1 else 0.0
        p = np.maximum(x + a * (x - previous), 0) if a else x
        r = _ratio(y, ndi.convolve(p, h, mode="wrap"), eps)
        if back is None:
            update = ndi.correlate(r, h, mode="wrap")
        else:
            update = np.maximum(ndi.convolve(r, back.astype(np.float64), mode="wrap"), 0)
        previous, x = x, p * update
    return x


@pytest.fixture
def case(rng):
    truth = rng.random((14, 20, 22)) ** 4 * 200
    psf = gaussian_psf((7, 9, 9), (1.6, 1.3, 1.3))
    image = rng.poisson(ndi.convolve(truth, psf / psf.sum(), mode="wrap") + 1.0)
    return image.astype(np.float32), psf


@pytest.mark.parametrize("kind", ["wiener-butterworth", "otf-masked"])
def test_back_projector_matches_reference(backend, case, kind):
    image, psf = case
    out = backend.deconvolve(image, psf, 4, back_projector=kind)
    back = backprojector.kernel(psf / psf.sum(), backprojector.check(kind))
    assert rel_l2(out, reference(image, psf, 4, back=back)) < 1e-4
    assert out.min() >= 0 and np.isfinite(out).all()
    # and it is not classic RL
    assert rel_l2(out, backend.deconvolve(image, psf, 4)) > 1e-2


def test_momentum_matches_reference(backend, case):
    image, psf = case
    out = backend.deconvolve(image, psf, 8, accelerate="momentum")
    assert rel_l2(out, reference(image, psf, 8, momentum=True)) < 1e-4
    assert rel_l2(out, backend.deconvolve(image, psf, 8)) > 1e-3


@pytest.mark.parametrize("boundary", ["periodic", "zero", "reflect", "non-circulant"])
@pytest.mark.parametrize("accelerate", [False, True, "momentum"])
def test_back_projectors_combine_with_everything(backend, case, boundary, accelerate):
    image, psf = case
    for kind in ("wiener-butterworth", "otf-masked"):
        out = backend.deconvolve(image, psf, 3, boundary=boundary, accelerate=accelerate,
                                 back_projector=kind)
        ref = rlcore.deconvolve(image, psf, 3, boundary=boundary, accelerate=accelerate,
                                back_projector=kind, backend="numpy")
        assert out.shape == image.shape and out.min() >= 0
        assert rel_l2(out, ref) < 1e-4


def test_matched_kernel_is_the_mirrored_psf(rng):
    psf = rng.random((5, 7, 9))
    h = psf / psf.sum()
    b = backprojector.kernel(h, backprojector.check("matched"))
    assert np.allclose(b, h[::-1, ::-1, ::-1], atol=1e-7)


def test_wiener_butterworth_gains():
    """Unit gain at DC (flux kept), and the Butterworth roll-off: much less gain well
    beyond the cut-off (1 / FWHM) than the Wiener filter alone."""
    psf = gaussian_psf((15, 31, 31), (2.0, 1.5, 1.5))
    h = psf / psf.sum()
    wb = backprojector.kernel(h, backprojector.check("wiener-butterworth"))
    wiener = backprojector.kernel(h, backprojector.check("wiener-butterworth", order=1,
                                                         beta=0.99))
    assert abs(wb.sum() - 1) < 1e-5
    spectrum = np.abs(np.fft.fftn(wb))
    plain = np.abs(np.fft.fftn(wiener))
    assert spectrum[0, 0, 15] < 0.05 * plain[0, 0, 15]  # at Nyquist along x
    assert spectrum[0, 0, 2] > 0.5  # well inside the pass band


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"alpha": 0}, ValueError, "alpha: must be in (0, 1]"),
        ({"alpha": "a"}, TypeError, "alpha: must be a number"),
        ({"beta": 1.0}, ValueError, "beta: must be in (0, 1)"),
        ({"order": 0}, ValueError, "order: must be in [1, 32]"),
        ({"order": 2.5}, TypeError, "order: must be an int"),
        ({"support": 1.5}, ValueError, "support: must be in (0, 1)"),
    ],
)
def test_bad_parameters(kwargs, exc, message):
    with pytest.raises(exc, match=message.replace("(", r"\(").replace("[", r"\[")
                       .replace(")", r"\)").replace("]", r"\]")):
        backprojector.check("wiener-butterworth", **kwargs)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["wiener-butterworth", "otf-masked"]),
    alpha=st.floats(1e-6, 1.0),
    beta=st.floats(1e-4, 0.99),
    order=st.integers(1, 32),
    support=st.floats(0.05, 0.99),
    accelerate=st.sampled_from([False, True, "momentum"]),
    seed=st.integers(0, 2**31),
)
def test_no_nan_no_negative_for_any_valid_parameters(kind, alpha, beta, order, support,
                                                      accelerate, seed):
    rng = np.random.default_rng(seed)
    image = (rng.random((6, 10, 12)) ** 3 * 100).astype(np.float32)
    psf = rng.random((3, 5, 5)) + 1e-3
    bp = backprojector.check(kind, alpha=alpha, beta=beta, order=order, support=support)
    out = rlcore.deconvolve(image, psf, 5, back_projector=bp, accelerate=accelerate)
    assert np.isfinite(out).all() and out.min() >= 0
