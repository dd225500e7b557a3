"""Exception types raised by rlcore.

Every error rlcore raises on purpose is one of these or a builtin ``ValueError`` /
``TypeError`` whose message names the argument, the value seen and the fix.
"""

from __future__ import annotations

__all__ = [
    "RLCoreError",
    "BackendUnavailableError",
    "DeviceOutOfMemoryError",
    "NumericalError",
]


class RLCoreError(Exception):
    """Base class of the exceptions defined by rlcore."""


class BackendUnavailableError(RLCoreError, RuntimeError):
    """A backend was asked for by name but cannot run here (library or device missing).

    The message says what is missing and what to install.
    """


class DeviceOutOfMemoryError(RLCoreError, MemoryError):
    """A backend ran out of device (or host) memory.

    Backends translate their library's own out-of-memory error (CUDA, OpenCL) into this
    one type so that callers, and the block scheduler, can catch one thing.
    """


class NumericalError(RLCoreError, FloatingPointError):
    """A result would contain NaN or infinity; rlcore never returns such values."""
