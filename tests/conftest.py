"""Shared fixtures: the backend parametrisation (SciPy's ``xp`` fixture is the model),
float64 references, and the shared real data."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi

import rlcore
from rlcore.registry import backend_names

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RLCORE_SHARED_DATA", REPO.parent / "shared" / "data"))


@dataclass
class BackendCase:
    """One backend under test: how to hand it arrays and read its results."""

    name: str
    to_input: Callable[[np.ndarray], Any]
    to_numpy: Callable[[Any], np.ndarray]

    def deconvolve(self, image: np.ndarray, psf: np.ndarray, *args, **kwargs) -> np.ndarray:
        """``rlcore.deconvolve`` on this backend; periodic unless ``boundary`` is given
        (the suite's float64 references are circular convolutions)."""
        kwargs.setdefault("boundary", "periodic")
        out = rlcore.deconvolve(self.to_input(image), psf, *args, backend=self.name, **kwargs)
        return self.to_numpy(out)

    def fast_len(self, n: int) -> int:
        """The padded-grid length this backend chooses (its FFT's fast sizes)."""
        from rlcore.registry import get_backend

        return get_backend(self.name).fast_length(n)

    def convolve(self, image: np.ndarray, psf: np.ndarray, **kwargs) -> np.ndarray:
        out = rlcore.convolve(self.to_input(image), psf, backend=self.name, **kwargs)
        return self.to_numpy(out)


#: the OpenCL backend runs the suite once per FFT provider
_OPENCL_FFTS = ("reikna", "vkfft")


def _params() -> list[str]:
    names = []
    for name in backend_names():
        names += [f"opencl-{f}" for f in _OPENCL_FFTS] if name == "opencl" else [name]
    return names


def _case(name: str, monkeypatch: pytest.MonkeyPatch) -> BackendCase:
    if name.startswith("opencl-"):
        name, fft = name.split("-", 1)
        if fft == "vkfft":
            pytest.importorskip("pyvkfft.opencl", reason="pyvkfft is not installed (VkFFT is "
                                "optional: VKFFT_BACKEND=opencl pip install pyvkfft)")
        monkeypatch.setenv("RLCORE_OPENCL_FFT", fft)
    info = {b.name: b for b in rlcore.available_backends()}[name]
    if not info.available:
        pytest.skip(f"backend {name!r} not available here: {info.reason}")
    if name == "array_api":
        strict = pytest.importorskip(
            "array_api_strict", reason="array-api-strict not installed (pip install rlcore[test])"
        )

        def to_numpy(a: Any) -> np.ndarray:
            assert type(a).__module__.startswith("array_api_strict"), "kind not preserved"
            return np.asarray(a)

        return BackendCase(name, lambda a: strict.asarray(np.asarray(a)), to_numpy)
    if name == "cupy":
        import cupy

        def to_numpy_cupy(a: Any) -> np.ndarray:
            assert isinstance(a, cupy.ndarray), "CuPy in must give CuPy out"
            return a.get()

        return BackendCase(name, cupy.asarray, to_numpy_cupy)

    def to_numpy_np(a: Any) -> np.ndarray:
        assert isinstance(a, np.ndarray), "numpy in must give numpy out"
        return a

    return BackendCase(name, lambda a: a, to_numpy_np)


@pytest.fixture(params=_params())
def backend(request, monkeypatch) -> BackendCase:
    """Every registered backend (OpenCL once per FFT provider); unavailable ones are
    skipped with their reason."""
    return _case(request.param, monkeypatch)


@pytest.fixture
def rng(request) -> np.random.Generator:
    """Fresh random inputs per test, seeded by the test's id (crc32, stable across
    processes, unlike hash()), so a failure replays."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real data not found at {SHARED_DATA} (set RLCORE_SHARED_DATA)")
    return SHARED_DATA


# -- float64 references, independent of rlcore (direct convolution, no FFT) -------------


def reference_rl(image: np.ndarray, psf: np.ndarray, iterations: int, mode: str = "wrap",
                 init: np.ndarray | None = None) -> np.ndarray:
    """Plain float64 RL by direct convolution (scipy.ndimage; kernel centre at n // 2)."""
    h = psf.astype(np.float64) / psf.sum()
    y = image.astype(np.float64)
    x = y.copy() if init is None else init.astype(np.float64)
    for _ in range(iterations):
        hx = ndi.convolve(x, h, mode=mode, cval=0.0)
        ratio = np.divide(y, hx, out=np.zeros_like(y), where=hx > 0)
        x = x * ndi.correlate(ratio, h, mode=mode, cval=0.0)
    return x


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


def gaussian_psf(shape: tuple[int, ...], sigma: float | tuple[float, ...]) -> np.ndarray:
    sig = np.broadcast_to(np.asarray(sigma, float), (len(shape),))
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    g = np.exp(-0.5 * sum((gg / s) ** 2 for gg, s in zip(grids, sig)))
    return g / g.sum()


def face_deconvolve(*args, **kwargs):
    """``rlcore.deconvolve`` with the faces' boundary (CLI, napari, the RedLionfish
    compat): what a face's result is compared with."""
    import rlcore
    from rlcore.boundary import FACE_BOUNDARY

    return rlcore.deconvolve(*args, boundary=FACE_BOUNDARY, **kwargs)
