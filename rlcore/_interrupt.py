"""Ctrl-C in the command line, never lost inside Python's import machinery.

Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread is; inside
the import system's weakref callbacks (``_get_module_lock``'s ``cb``) the exception
cannot propagate: the interpreter prints "Exception ignored in ..." with a traceback and
the run goes on. A CLI run imports lazily (backends, codecs), so that window is open for
much of a short run (tests/test_faults.py's killed runs met it about once in 20
interrupts). The handler here defers an interrupt that lands in the import machinery by
10 ms (the signal delivered again), and raises KeyboardInterrupt everywhere else.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

__all__ = ["install"]

#: seconds an interrupt inside the import machinery waits before it is delivered again
RETRY = 0.01


def _in_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _handler(signum: int, frame: FrameType | None) -> None:
    if _in_import(frame):
        threading.Timer(RETRY, os.kill, (os.getpid(), signum)).start()
        return
    raise KeyboardInterrupt


def install() -> None:
    """Use the deferring handler for SIGINT (POSIX; where SIGINT still has Python's
    default handler, so an embedding application's own handler is kept)."""
    if os.name == "posix" and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)
