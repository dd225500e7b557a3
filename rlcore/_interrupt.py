"""Ctrl-C in the command line, never lost inside Python's import machinery.

Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread is; inside
the import system's weakref callbacks (``_get_module_lock``'s ``cb``) the exception
cannot propagate: the interpreter prints "Exception ignored in ..." with a traceback and
the run goes on. A CLI run imports lazily (backends, codecs), so that window is open for
much of a short run (tests/test_faults.py's killed runs met it about once in 20
interrupts). The handler here defers an interrupt that lands in the import machinery by
10 ms (the signal delivered again), and raises KeyboardInterrupt everywhere else.

The same holds for starting a thread: an interrupt inside ``Thread.start`` (which waits
for the new thread) or inside ``ThreadPoolExecutor._adjust_thread_count`` (which
registers it) leaves a worker the executor's exit hook never stops, and the interpreter
then waits for it forever at exit (a zarr output through dask's pool met it about once in
100 interrupts). Those frames defer the interrupt too; and :func:`exit_soon` bounds the
exit of an interrupted run in case a library left such a thread anyway. Once the run is
over (:func:`exiting`), Ctrl-C ends the process at once instead of interrupting the
interpreter's exit (which printed a traceback for a signal that came as a run ended).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from concurrent.futures import thread as _futures_thread
from types import FrameType

__all__ = ["install", "exit_soon", "exiting"]

#: seconds an interrupt inside the import machinery waits before it is delivered again
RETRY = 0.01


#: code objects whose interruption leaves a thread no one stops (see the module's text)
_THREAD_START = frozenset({
    threading.Thread.start.__code__,
    _futures_thread.ThreadPoolExecutor._adjust_thread_count.__code__,
})


def _deferred(frame: FrameType | None) -> bool:
    """Whether ``frame`` (or a caller) is in the import machinery or starts a thread."""
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith("<frozen importlib") or code in _THREAD_START:
            return True
        frame = frame.f_back
    return False


def _handler(signum: int, frame: FrameType | None) -> None:
    if _deferred(frame):
        threading.Timer(RETRY, os.kill, (os.getpid(), signum)).start()
        return
    raise KeyboardInterrupt


def install() -> None:
    """Use the deferring handler for SIGINT (POSIX; where SIGINT still has Python's
    default handler, so an embedding application's own handler is kept)."""
    if os.name == "posix" and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)


def _force(status: int) -> None:
    """End the process now with ``status``, the standard streams flushed first."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def exit_soon(status: int, grace: float = 10.0) -> None:
    """After an interrupted run: if the interpreter's exit has not finished ``grace``
    seconds from now (a non-daemon thread a library left behind, which the interpreter
    waits for), end the process with ``status`` (streams flushed first)."""
    timer = threading.Timer(grace, _force, (status,))
    timer.daemon = True
    timer.start()


def exiting(status: int) -> None:
    """The run is over (its exit status ``status``): from now on Ctrl-C, which would
    land in the interpreter's own exit (waiting for threads) and be printed there as an
    ignored exception with a traceback, ends the process at once with status 130; an
    interrupted run's exit is bounded (:func:`exit_soon`). Only where :func:`install`'s
    handler is in place (an embedding application's own is kept)."""
    if status == 130:
        exit_soon(status)
    if signal.getsignal(signal.SIGINT) is _handler:
        signal.signal(signal.SIGINT, lambda signum, frame: _force(130))
