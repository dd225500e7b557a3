"""Backend discovery, "auto", the protocol, and packaging of rlcore.backends."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rlcore
from rlcore.protocol import Backend
from rlcore.registry import get_backend

REPO = Path(__file__).resolve().parents[1]


def test_available_backends_lists_every_backend_with_devices_or_reason():
    infos = {b.name: b for b in rlcore.available_backends()}
    assert {"numpy", "array_api", "cupy"} <= set(infos)
    assert infos["numpy"].available and infos["numpy"].devices
    for info in infos.values():
        assert info.available == (info.reason is None)
        assert info.available == bool(info.devices)
    # "auto" order: GPU backends before numpy
    names = [b.name for b in rlcore.available_backends()]
    assert names.index("cupy") < names.index("numpy")


def test_auto_picks_the_first_working_backend_and_array_api_for_others():
    first = next(b.name for b in rlcore.available_backends() if b.available and b.auto)
    assert get_backend("auto").name == first  # cupy, or OpenCL on a GPU, else numpy
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict not installed")
    assert get_backend("auto", like=strict.ones((2, 2))).name == "array_api"


def test_every_available_backend_follows_the_protocol(backend):
    be = get_backend(backend.name)
    assert isinstance(be, Backend)
    assert be.memory().total >= be.memory().free > 0
    assert be.buffers_per_voxel > 0


def test_numpy_backend_public_scipy_path_matches_pocketfft_path(rng):
    """The fallback for SciPy builds without pocketfft's bindings gives the same numbers."""
    from rlcore.backends.numpy import NumpyBackend
    from rlcore.iteration import Convolution, richardson_lucy

    image = (rng.random((9, 14, 13)) + 0.5).astype(np.float32)
    psf = rng.random((3, 4, 5)) / 30
    results = []
    for use in (True, False):
        be = NumpyBackend(use_pocketfft=use)
        op = Convolution(be, psf, image.shape)
        results.append(richardson_lucy(op, image, image.copy(), 5, 1e-6)[0])
    np.testing.assert_allclose(results[0], results[1], rtol=2e-6, atol=1e-6)


def test_divide_guard_semantics():
    from rlcore.backends.numpy import NumpyBackend

    be = NumpyBackend()
    num = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    den = np.array([2.0, 1e-9, 0.0, -1.0], np.float32)
    out = be.divide_guarded(num, den.copy(), 1e-6)
    np.testing.assert_array_equal(out, [0.5, 0.0, 0.0, 0.0])


def test_import_is_light_and_backends_live_inside_rlcore():
    code = (
        "import sys, rlcore; "
        "assert 'rlcore.backends.numpy' not in sys.modules; "
        "assert 'cupy' not in sys.modules and 'pyopencl' not in sys.modules; "
        "import rlcore.backends.numpy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    # no top-level "backends" is installed: the only one importable is the checkout's own
    # folder (on sys.path when the tests run from it), whatever the checkout is named
    spec = importlib.util.find_spec("backends")
    if spec is not None:
        where = [Path(p).resolve() for p in (spec.submodule_search_locations or [])]
        assert where and all(p == REPO / "backends" for p in where), where


def test_auto_falls_back_cleanly_and_logs_when_a_gpu_backend_fails(monkeypatch, caplog):
    """A GPU library installed without a working driver: "auto" logs why, then uses numpy."""
    import logging
    import types

    from rlcore import registry

    fake = types.ModuleType("rlcore_fake_gpu")
    fake.probe = lambda: (("GPU 0: fake",), None)

    def create(device=None, like=None):
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake.create = create
    monkeypatch.setitem(sys.modules, "rlcore_fake_gpu", fake)
    registry.register("fake_gpu", "rlcore_fake_gpu", auto_rank=0)
    try:
        with caplog.at_level(logging.INFO, logger="rlcore.registry"):
            chosen = get_backend("auto")
        assert chosen.name != "fake_gpu"
        assert "fake_gpu" in caplog.text and "cudaErrorNoDevice" in caplog.text
        out = rlcore.deconvolve(np.ones((4, 5, 6), np.float32), np.ones((3, 3, 3)), 2)
        assert isinstance(out, np.ndarray)
    finally:
        registry._REGISTRY.pop("fake_gpu")
