"""Backend discovery: lazy import, the ``"auto"`` order, and why a backend is missing.

Each backend lives in its own module of ``rlcore.backends`` with two functions:
``probe() -> (devices, reason_missing_or_None)`` and ``create(device, like) -> Backend``.
Modules are imported only when a backend is first asked about, so ``import rlcore`` is
fast and never fails because an optional library (CuPy, pyopencl) is missing.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from rlcore.errors import BackendUnavailableError
from rlcore.protocol import Backend

__all__ = ["BackendInfo", "available_backends", "get_backend", "register", "backend_names"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`rlcore.available_backends` reports for one backend.

    Attributes
    ----------
    name : str
        Name to pass as ``backend=``.
    available : bool
        True when the backend can run here.
    devices : tuple of str
        Devices it can use (empty when unavailable).
    reason : str or None
        Why it is unavailable, and what to install; None when available.
    auto : bool
        True when ``backend="auto"`` may choose it for numpy input here (an OpenCL
        backend with only CPU devices is left to numpy, which is faster there).
    auto_note : str or None
        Why ``"auto"`` does not choose it although it is available (None otherwise).
    """

    name: str
    available: bool
    devices: tuple[str, ...]
    reason: str | None
    auto: bool = False
    auto_note: str | None = None


@dataclass(frozen=True)
class _Entry:
    name: str
    module: str
    auto_rank: int | None  # lower is preferred by "auto"; None: never chosen by "auto"


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, module: str, *, auto_rank: int | None) -> None:
    """Register a backend module under ``name`` (its import happens on first use)."""
    _REGISTRY[name] = _Entry(name, module, auto_rank)


register("cupy", "rlcore.backends.cupy", auto_rank=10)
register("opencl", "rlcore.backends.opencl", auto_rank=20)  # GPUs only (auto_skip_reason)
register("numpy", "rlcore.backends.numpy", auto_rank=100)
register("array_api", "rlcore.backends.array_api", auto_rank=None)


def backend_names() -> tuple[str, ...]:
    """Names of every registered backend (installed or not)."""
    return tuple(_REGISTRY)


def _module(entry: _Entry) -> Any:
    return importlib.import_module(entry.module)


def _probe(entry: _Entry) -> BackendInfo:
    from rlcore._atomic import hold_interrupts

    auto, why_not = False, None
    try:
        with hold_interrupts():  # native modules must not be interrupted mid-import
            module = _module(entry)
            devices, reason = module.probe()
        if reason is None and entry.auto_rank is not None:
            skip = getattr(module, "auto_skip_reason", None)
            why_not = skip() if skip is not None else None
            if why_not is not None:
                logger.info("backend %r not for 'auto': %s", entry.name, why_not)
            auto = why_not is None
    except Exception as exc:  # a broken optional install must not break discovery
        devices, reason = (), f"{type(exc).__name__}: {exc}"
    if entry.auto_rank is None and reason is None:
        why_not = "it runs the arrays of other array-API libraries, as they come"
    return BackendInfo(entry.name, reason is None, tuple(devices), reason, auto,
                       None if auto else why_not)


def available_backends() -> list[BackendInfo]:
    """Every registered backend with its devices, or the reason it cannot run here.

    Returns
    -------
    list of BackendInfo
        In the order ``backend="auto"`` prefers them, then the explicit-only ones.

    Examples
    --------
    >>> import rlcore
    >>> "numpy" in [b.name for b in rlcore.available_backends() if b.available]
    True
    """
    order = sorted(
        _REGISTRY.values(),
        key=lambda e: (e.auto_rank is None, e.auto_rank or 0, e.name),
    )
    return [_probe(e) for e in order]


def get_backend(name: str | Backend, *, device: Any = None, like: Any = None) -> Backend:
    """Create the backend ``name`` (or the best for ``like`` when ``name == "auto"``).

    Parameters
    ----------
    name : str or Backend
        A registered name, or ``"auto"``; or a backend object (written to
        :class:`rlcore.protocol.Backend`), returned as it is (``device`` is then its own).
    device : object, optional
        Backend-specific device choice (thread count, GPU index, OpenCL device name).
    like : array, optional
        The caller's array; decides the backend for non-NumPy arrays.

    Raises
    ------
    ValueError
        ``name`` is not registered.
    BackendUnavailableError
        The backend is registered but cannot run here (the message says why).
    """
    if not isinstance(name, str):
        # duck-typed (Python 3.12's isinstance on a Protocol ignores __getattr__)
        if all(hasattr(name, m) for m in ("rfftn", "irfftn", "empty", "to_device",
                                          "to_host", "divide_guarded", "activate")):
            return name
        raise TypeError(f"backend: must be a str or a backend object, got "
                        f"{type(name).__name__}")
    if name == "auto":
        return _auto(device=device, like=like)
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(
            f"backend: unknown backend {name!r}; choose 'auto' or one of {sorted(_REGISTRY)}"
        )
    info = _probe(entry)
    if not info.available:
        raise BackendUnavailableError(f"backend {name!r} cannot run here: {info.reason}")
    return _module(entry).create(device=device, like=like)


def _auto(*, device: Any, like: Any) -> Backend:
    from rlcore import _arrays

    kind = _arrays.kind(like) if like is not None else "numpy"
    if kind == "array_api":
        return get_backend("array_api", device=device, like=like)
    if kind != "numpy":
        return get_backend(kind, device=device, like=like)
    candidates = sorted(
        (e for e in _REGISTRY.values() if e.auto_rank is not None), key=lambda e: e.auto_rank
    )
    for entry in candidates:
        info = _probe(entry)
        if not info.available:
            logger.info("backend %r skipped by 'auto': %s", entry.name, info.reason)
            continue
        if not info.auto:
            continue
        try:
            return _module(entry).create(device=device, like=None)
        except Exception as exc:  # e.g. CuPy installed but no working driver
            logger.info("backend %r failed to start, falling back: %s", entry.name, exc)
    raise BackendUnavailableError("no backend can run here (not even numpy)")
