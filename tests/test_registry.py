"""Backend discovery, "auto", the protocol, and packaging of rlcore.backends."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import rlcore
from rlcore.protocol import Backend
from rlcore.registry import get_backend


def test_available_backends_lists_numpy_first_with_devices():
    infos = rlcore.available_backends()
    assert infos[0].name == "numpy" and infos[0].available and infos[0].devices
    for info in infos:
        assert info.available == (info.reason is None)


def test_auto_picks_numpy_for_numpy_input_and_array_api_for_others():
    assert get_backend("auto").name == "numpy"
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
    from rlcore.boundary import place_psf
    from rlcore.iteration import Convolution, richardson_lucy

    image = (rng.random((9, 14, 13)) + 0.5).astype(np.float32)
    psf = place_psf(rng.random((3, 4, 5)) / 30, image.shape)
    results = []
    for use in (True, False):
        be = NumpyBackend(use_pocketfft=use)
        op = Convolution(be, psf)
        results.append(richardson_lucy(op, image, image.copy(), 5, 1e-6))
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
    assert importlib.util.find_spec("backends") is None or "rlcore" not in str(
        importlib.util.find_spec("backends").origin
    )
