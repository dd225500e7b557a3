"""Generic backend for any array that follows the Python array API standard.

Built on ``array-api-compat``: the namespace of the caller's array (array-api-strict,
PyTorch, JAX, NumPy, ...) supplies ``fft.rfftn``, ``fft.irfftn`` and the elementwise
functions. The standard has no ``out=`` arguments, so every method returns a new array;
the iteration rebinds its buffers to the returned arrays and so runs unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcore.protocol import BackendBase, MemoryInfo

__all__ = ["ArrayAPIBackend", "probe", "create"]


class ArrayAPIBackend(BackendBase):
    """Backend over an array-API namespace ``xp`` (from ``array_api_compat``).

    Parameters
    ----------
    xp : module
        An array-API namespace with the ``fft`` extension.
    device : object, optional
        Device of the namespace to allocate on (default: the namespace's default).
    """

    name = "array_api"
    #: as numpy, plus one transient complex array per FFT (no out= in the standard)
    buffers_per_voxel = 3 * 4 + 3 * 4.0

    def __init__(self, xp: Any, device: Any = None):
        if not hasattr(xp, "fft"):
            raise ValueError(
                f"xp: the array namespace {getattr(xp, '__name__', xp)!r} has no fft "
                "extension; rlcore needs rfftn and irfftn"
            )
        self.xp = xp
        self._device = device
        self.device = f"{getattr(xp, '__name__', type(xp).__name__)} (device {device})"

    def plan(self, shape: tuple[int, ...]) -> None:
        return None

    def to_device(self, host: Any) -> Any:
        xp = self.xp
        if isinstance(host, np.ndarray):
            host = np.ascontiguousarray(host, dtype=np.float32)
            if self._device is not None:
                return xp.asarray(host, device=self._device)
            return xp.asarray(host)
        return xp.astype(host, xp.float32)

    def to_host(self, array: Any) -> np.ndarray:
        # DLPack first (zero-copy where possible), then the buffer protocol
        try:
            return np.from_dlpack(array)
        except (TypeError, AttributeError, RuntimeError, BufferError):
            return np.asarray(array)

    def empty(self, shape: tuple[int, ...], *, complex: bool = False) -> Any:
        dtype = self.xp.complex64 if complex else self.xp.float32
        if self._device is not None:
            return self.xp.empty(shape, dtype=dtype, device=self._device)
        return self.xp.empty(shape, dtype=dtype)

    def rfftn(self, x: Any, out: Any = None) -> Any:
        return self.xp.fft.rfftn(x, axes=tuple(range(x.ndim)))

    def irfftn(self, spectrum: Any, shape: tuple[int, ...], out: Any = None) -> Any:
        return self.xp.fft.irfftn(spectrum, s=tuple(shape), axes=tuple(range(len(shape))))

    def multiply_spectrum(self, spectrum: Any, otf: Any, *, conjugate: bool = False) -> Any:
        return spectrum * (self.xp.conj(otf) if conjugate else otf)

    def divide_guarded(self, numerator: Any, denominator: Any, guard: float,
                       out: Any = None) -> Any:
        xp = self.xp
        keep = denominator > guard
        safe = xp.where(keep, denominator, xp.ones_like(denominator))
        return xp.where(keep, numerator / safe, xp.zeros_like(denominator))

    def multiply(self, x: Any, y: Any) -> Any:
        return x * y

    def all_finite(self, x: Any) -> bool:
        xp = self.xp
        return bool(xp.all(xp.isfinite(x)))

    def memory(self) -> MemoryInfo:
        import psutil

        vm = psutil.virtual_memory()
        return MemoryInfo(free=int(vm.available), total=int(vm.total))


def probe() -> tuple[tuple[str, ...], str | None]:
    try:
        import array_api_compat  # noqa: F401
    except ImportError:  # pragma: no cover - a core dependency
        return (), "array-api-compat is not installed: pip install array-api-compat"
    return ("namespace of the input array",), None


def create(device: Any = None, like: Any = None) -> ArrayAPIBackend:
    """Backend for the namespace of ``like`` (an array), or NumPy's array-API wrapper."""
    import array_api_compat

    if like is None:
        import array_api_compat.numpy as xp
    else:
        xp = array_api_compat.array_namespace(like)
        if device is None:
            device = array_api_compat.device(like)
    return ArrayAPIBackend(xp, device=device)



