"""CuPy-specific behaviour (the shared suite runs on CuPy too, through the backend fixture).

Runs on a machine with a CUDA GPU and CuPy; elsewhere each test skips with the reason.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rel_l2

import rlcore
from rlcore import registry
from rlcore.errors import DeviceOutOfMemoryError


def _cupy():
    info = {b.name: b for b in rlcore.available_backends()}["cupy"]
    if not info.available:
        pytest.skip(f"cupy backend not available here: {info.reason}")
    import cupy

    return cupy


def test_cupy_agrees_with_numpy_on_real_data():
    _cupy()
    from rlcore.data import BACKGROUND, lls_sample

    image, psf, _ = lls_sample()
    image = np.clip(image.astype(np.float32) - BACKGROUND, 0, None)
    for boundary in ("periodic", "zero"):
        a = rlcore.deconvolve(image, psf, 10, backend="cupy", boundary=boundary)
        b = rlcore.deconvolve(image, psf, 10, backend="numpy", boundary=boundary)
        assert isinstance(a, np.ndarray) and a.dtype == np.float32
        assert rel_l2(a, b) < 1e-5


def test_cupy_in_cupy_out_on_its_device_without_host_copy(monkeypatch):
    cp = _cupy()
    image = cp.asarray(np.random.default_rng(0).random((16, 32, 32), dtype=np.float32) + 1)
    before = image.copy()
    from rlcore.backends import cupy as cupy_backend

    def no_host(*args, **kwargs):
        raise AssertionError("CuPy input was copied to the host")

    monkeypatch.setattr(cupy_backend.CupyBackend, "to_host", no_host)
    out = rlcore.deconvolve(image, np.ones((3, 3, 3)), 5)  # "auto" picks CuPy for CuPy input
    assert isinstance(out, cp.ndarray) and out.dtype == cp.float32
    assert out.device.id == image.device.id
    assert bool((image == before).all())  # not mutated


def test_device_argument_and_memory_query():
    cp = _cupy()
    be = registry.get_backend("cupy", device=0)
    assert be.memory().total >= be.memory().free > 0
    with pytest.raises(ValueError, match="device: CUDA device index"):
        registry.get_backend("cupy", device=cp.cuda.runtime.getDeviceCount())


def test_out_of_memory_becomes_rlcore_error():
    _cupy()
    be = registry.get_backend("cupy")
    with pytest.raises(DeviceOutOfMemoryError, match="out of memory"):
        with be.activate():
            be.empty((1 << 40,))  # 4 TiB


@pytest.mark.parametrize("nbytes", [1000, (1 << 24) + 12, (1 << 27) + 4 * 7])
def test_pinned_chunked_transfers_round_trip(nbytes):
    """Uploads and downloads through the pinned double buffer are exact, whatever the size
    (below the threshold, one chunk, several chunks with a short last one)."""
    _cupy()
    be = registry.get_backend("cupy")
    host = np.random.default_rng(nbytes).random(nbytes // 4, dtype=np.float32)
    dev = be.upload(host)
    np.testing.assert_array_equal(dev.get(), host)
    np.testing.assert_array_equal(be.to_host(dev * 2), host * 2)
