"""Peak memory of the numpy backend, counted by tracemalloc (NumPy reports its buffers).

The brief's budget: at most 6 image-sized float32 arrays at peak, input and output
included. Speed and RSS are measured in bench/, not here.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import rlcore


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_peak_memory_at_most_six_image_arrays(dtype):
    shape = (32, 64, 66)
    image = (np.random.default_rng(0).random(shape) * 100 + 1).astype(dtype)
    psf = np.ones((9, 9, 9))
    rlcore.deconvolve(image, psf, 2, boundary="periodic")  # warm caches and imports
    unit = image.size * 4
    tracemalloc.start()
    try:
        out = rlcore.deconvolve(image, psf, 5, boundary="periodic")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    held = image.nbytes  # the input already existed
    assert out.nbytes == unit
    assert (peak + held) / unit <= 6.0, f"peak {(peak + held) / unit:.2f} image arrays"
