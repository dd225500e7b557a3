"""rlcore against an independent float64 RL (direct convolution, no FFT)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import reference_rl, rel_l2

SHAPES = [
    pytest.param((17, 20, 23), (5, 6, 7), id="3d-mixed"),
    pytest.param((16, 22, 24), (4, 6, 8), id="3d-even"),
    pytest.param((15, 21, 25), (3, 5, 7), id="3d-odd"),
    pytest.param((40, 37), (7, 6), id="2d"),
]


@pytest.mark.parametrize(("shape", "psf_shape"), SHAPES)
def test_matches_float64_reference(backend, rng, shape, psf_shape):
    # float32 data; tolerance 1e-5: float32 FFT rounding (~1e-7 per transform) over
    # 10 iterations stays two orders below it, a wrong centring or adjoint is ~1e-1.
    image = (rng.random(shape) * 100 + 1).astype(np.float32)
    psf = rng.random(psf_shape)
    out = backend.deconvolve(image, psf, 10)
    ref = reference_rl(image, psf, 10)
    assert out.dtype == np.float32 and out.shape == shape
    assert rel_l2(out, ref) < 1e-5


@pytest.mark.parametrize("mode", ["zero", "reflect"])
def test_padded_boundaries_match_reference(backend, rng, mode):
    from rlcore.boundary import make_grid

    shape, psf_shape = (14, 19, 22), (5, 4, 7)
    image = (rng.random(shape) * 50 + 1).astype(np.float32)
    psf = rng.random(psf_shape)
    out = backend.deconvolve(image, psf, 8, boundary=mode)
    if mode == "zero":  # linear convolution, object zero outside the image
        ref = reference_rl(image, psf, 8, mode="constant")
    else:  # periodic RL on the mirror-extended grid, then the image region
        grid = make_grid(shape, psf_shape, mode, fast_len=backend.fast_len)
        widths = [(o, g - n - o) for o, n, g in zip(grid.offset, shape, grid.shape)]
        ext = np.pad(image.astype(np.float64), widths, mode="symmetric")
        ref = reference_rl(ext, psf, 8)[grid.region]
    assert rel_l2(out, ref) < 1e-5


def test_convolve_zero_boundary_is_fftconvolve_same(backend, rng):
    from scipy.signal import fftconvolve

    image = rng.random((12, 17, 20)).astype(np.float32)
    psf = rng.random((5, 3, 7))  # odd sizes: scipy's "same" centres at n // 2 too
    out = backend.convolve(image, psf, boundary="zero")
    ref = fftconvolve(image.astype(np.float64), psf / psf.sum(), mode="same")
    assert rel_l2(out, ref) < 1e-6
