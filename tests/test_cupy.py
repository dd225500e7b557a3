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


@pytest.mark.parametrize("shape", [(24, 40, 33), (40, 34)])
def test_work_buffers_share_memory_and_transform_in_place(shape):
    """The real work buffer is a view into the spectrum buffer (cuFFT's in-place layout);
    transforms into, out of and within it agree with contiguous arrays and NumPy."""
    cp = _cupy()
    be = registry.get_backend("cupy")
    rng = np.random.default_rng(3)
    host = rng.random(shape, dtype=np.float32)
    work, spectrum = be.work_buffers(shape)
    assert work.shape == shape and work.data.ptr == spectrum.data.ptr
    assert not work.flags.c_contiguous
    work[...] = cp.asarray(host)
    reference = np.fft.rfftn(host.astype(np.float64))
    out = be.rfftn(work, out=be.empty(spectrum.shape, complex=True))  # padded -> other
    assert rel_l2(cp.asnumpy(out), reference) < 1e-5
    be.rfftn(work, out=spectrum)  # in place
    assert rel_l2(cp.asnumpy(spectrum), reference) < 1e-5
    be.irfftn(spectrum, shape, out=work)  # in place back
    assert rel_l2(cp.asnumpy(work), host) < 1e-5
    otf = be.rfftn(be.to_device(rng.random(shape, dtype=np.float32)))
    kernel = np.fft.irfftn(cp.asnumpy(otf).astype(np.complex128), s=shape)
    expected = np.fft.irfftn(np.fft.rfftn(host) * np.fft.rfftn(kernel), s=shape)
    work[...] = cp.asarray(host)
    got = be.apply_otf(work, otf, work=spectrum, out=work)  # in place both ways
    assert got is work and rel_l2(cp.asnumpy(work), expected) < 1e-5
    contiguous = be.apply_otf(be.to_device(host), otf, work=spectrum)
    assert rel_l2(cp.asnumpy(contiguous), expected) < 1e-5


def test_plans_of_a_shape_share_one_work_area():
    _cupy()
    from rlcore.backends import cupy as cb

    be = registry.get_backend("cupy")
    shape = (40, 130, 130)  # not a power of two: cuFFT needs work areas here
    be.plan(shape)
    plans = [cb._PLANS[(shape, k, p, be._device.id)] for k in ("R2C", "C2R")
             for p in (False, True)]
    areas = {plan.work_area.ptr for plan in plans
             if plan.work_area.mem is not None and plan.work_area.mem.size > 0}
    assert len(areas) <= 1, "each plan holds its own work area"


def test_large_results_in_recycled_pinned_memory_never_overwrite_a_kept_one():
    """A large download lands in page-locked memory that is reused once the caller has
    dropped the result, never while it (or a view of it) is alive."""
    _cupy()
    import gc

    cp = pytest.importorskip("cupy")
    be = registry.get_backend("cupy")
    n = (1 << 24) // 4 + 1000
    a, b = cp.arange(n, dtype=cp.float32), cp.full(n, 7.0, dtype=cp.float32)
    kept = be.to_host(a)
    view = be.to_host(b)[10:20]
    again = be.to_host(a * 2)
    np.testing.assert_array_equal(kept, np.arange(n, dtype=np.float32))
    np.testing.assert_array_equal(view, 7.0)
    np.testing.assert_array_equal(again, np.arange(n, dtype=np.float32) * 2)
    address = again.ctypes.data
    del again
    gc.collect()
    reused = be.to_host(b)
    np.testing.assert_array_equal(reused, 7.0)
    assert reused.ctypes.data == address  # the dropped result's memory, reused
