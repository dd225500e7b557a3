"""How reading and writing fail: one line naming the file (a library's exception as
one clause, its log held back), the machine's memory, a full disk or a file-size limit
named, and an output written whole or not at all."""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rlcore import _atomic, formats

_LIBRARY_LOGS = ("tifffile", "ome_zarr", "zarr", "numcodecs", "imagecodecs") + formats.LOGGERS


_log = logging.getLogger(__name__)


def _tidy(text: str) -> str:
    """A library's message without its object tags (``<tifffile.TiffTag 270 @70>``) and
    re-raise wrappers (``raised TiffFileError('...')``)."""
    text = re.sub(r"<[^<>]*>\s*", "", text)
    text = re.sub(r"raised \w+\((['\"])(.*)\1\)", r"\2", text)
    return text.strip()


def _clause(exc: BaseException) -> str:
    """One clause for a library's exception: its type and the first line of its text."""
    text = str(exc).strip().splitlines()
    text = _tidy(text[0]) if text else ""
    if len(text) > 160:
        text = text[:157] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text and name not in text else (text or name)


class _Collect(logging.Handler):
    """Collects what the libraries log while one file is read (tifffile logs, rather
    than raises, when page offsets point past the end of a truncated file)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())
        _log.debug("%s: %s", record.name, record.getMessage())


@contextlib.contextmanager
def _quiet():
    """The libraries' log records and warnings held back while a file is read or
    written: yields the list of the WARNING and ERROR messages logged."""
    handler = _Collect()
    saved = []
    for name in _LIBRARY_LOGS:
        log = logging.getLogger(name)
        saved.append((log, log.level, log.propagate))
        log.addHandler(handler)
        log.setLevel(logging.WARNING)
        log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield handler.messages
    finally:
        for log, level, propagate in saved:
            log.removeHandler(handler)
            log.setLevel(level)
            log.propagate = propagate


def _missing(path: Path, what: str) -> FileNotFoundError:
    hint = _atomic.interrupted_swap(path)
    return FileNotFoundError(hint or f"{what} not found: {path}")


def _gib(n: float) -> str:
    """Bytes in words: 931 GiB, 1 MiB, 508 KiB, 12 bytes."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def _total_memory() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - a bound only; no psutil, no bound
        return None


def _check_memory(path: Path, array: Any) -> None:
    nbytes = math.prod(int(n) for n in array.shape) * np.dtype(array.dtype).itemsize
    total = _total_memory()
    if total and nbytes > total:
        raise ValueError(f"{path}: shape {tuple(array.shape)} needs {_gib(nbytes)}, more "
                         f"than this machine's memory ({_gib(total)}); read it lazily "
                         "(lazy=True) or in blocks")


def _write_failure(path: Path, exc: BaseException) -> OSError | None:
    """A full disk or a file-size limit met while writing ``path``, as one OSError that
    names it; None for any other error."""
    code, e, seen = None, exc, 0
    while e is not None and seen < 10 and code is None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            code = e.errno
        elif isinstance(e, OSError) and "requested and" in str(e) and "written" in str(e):
            code = _short_write_cause(path)  # numpy's tofile: no errno
        e, seen = e.__cause__ or e.__context__, seen + 1
    if code is None:
        return None
    folder = path.parent
    if code == errno.EFBIG:
        limit = _file_size_limit()
        why = (f"file too large: the file-size limit (ulimit -f) is {_gib(limit)}"
               if limit else "file too large for the file system of "
               f"{folder} (FAT32 holds at most 4 GiB)")
    else:
        try:
            free = _gib(shutil.disk_usage(folder).free)
        except OSError:
            free = "?"
        quota = " (disk quota exceeded)" if code == errno.EDQUOT else ""
        why = f"disk full{quota}: {free} free in {folder}"
    out = OSError(f"{path}: not written, {why}; the partial output was removed and an "
                  "existing output is untouched")
    out.errno = code
    return out


def _file_size_limit() -> int | None:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _short_write_cause(path: Path) -> int:
    """A short write without errno: a full disk if under 1 MiB is free, else the
    file-size limit if one is set, else a full disk."""
    try:
        full = shutil.disk_usage(path.parent).free < 2**20
    except OSError:
        full = True
    return errno.EFBIG if not full and _file_size_limit() is not None else errno.ENOSPC


@contextlib.contextmanager
def _writing(path: Path):
    """Turn a full disk or a file-size limit met inside the block into one OSError
    naming ``path``."""
    try:
        yield
    except OSError as exc:
        failure = _write_failure(path, exc)
        if failure is None:
            raise
        raise failure from None
