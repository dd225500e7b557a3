"""The OpenCL backend's FFT providers (:mod:`rlcore.backends.opencl`): complex-to-complex
transforms over all axes by VkFFT (``pyvkfft``) or reikna, one plan per queue, shape and
provider, cached for the process."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

ENV_FFT = "RLCORE_OPENCL_FFT"

#: FFT plans per (queue, shape, provider) (process-wide)
_FFTS: dict[tuple, Any] = {}


def clear() -> None:
    """Drop the cached plans."""
    _FFTS.clear()


class _ReiknaFFT:
    """Complex-to-complex FFT over all axes by reikna; ``inverse`` normalised by 1/N."""

    provider = "reikna"

    def __init__(self, queue: Any, shape: tuple[int, ...]):
        from reikna.cluda import ocl_api
        from reikna.core import Type
        from reikna.fft import FFT

        self.thread = ocl_api().Thread(queue)
        self.plan = FFT(Type(np.complex64, shape)).compile(self.thread)

    def forward(self, out: Any, src: Any) -> None:
        self.plan(out, src, inverse=0)

    def inverse(self, out: Any, src: Any) -> None:
        self.plan(out, src, inverse=1)


class _VkFFT:
    """Complex-to-complex FFT over all axes by VkFFT (``pyvkfft.opencl``), out of place."""

    provider = "vkfft"

    def __init__(self, queue: Any, shape: tuple[int, ...]):
        from pyvkfft.opencl import VkFFTApp

        self.plan = VkFFTApp(shape, np.complex64, queue=queue, ndim=len(shape),
                             inplace=False, norm=1)

    def forward(self, out: Any, src: Any) -> None:
        self.plan.fft(src, out)

    def inverse(self, out: Any, src: Any) -> None:
        self.plan.ifft(src, out)


def fft_provider() -> str:
    """``"vkfft"`` when pyvkfft imports (or ``RLCORE_OPENCL_FFT`` says so), else
    ``"reikna"``."""
    choice = os.environ.get(ENV_FFT, "").strip().lower()
    if choice in ("reikna", "vkfft"):
        return choice
    if choice:
        raise ValueError(f"{ENV_FFT}: must be 'reikna' or 'vkfft', got {choice!r}")
    try:
        import pyvkfft.opencl  # noqa: F401
    except Exception:  # not installed, or built without OpenCL
        return "reikna"
    return "vkfft"


def plan(queue: Any, shape: tuple[int, ...], provider: str) -> Any:
    """The plan of ``shape`` on ``queue`` by ``provider``, made on first use."""
    key = (queue.int_ptr, shape, provider)
    if key not in _FFTS:
        _FFTS[key] = (_VkFFT if provider == "vkfft" else _ReiknaFFT)(queue, shape)
    return _FFTS[key]
