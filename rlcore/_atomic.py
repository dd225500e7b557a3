"""Outputs that are either the old one, untouched, or the complete new one.

Every file or folder rlcore writes is first written under a temporary name beside its
destination, ``.NAME.XXXXXXXX.tmp`` (hidden, marked ``.tmp``: a run stopped while writing
leaves only such a file), then moved into place by :func:`publish`:

* a new destination: one rename (TIFF: one hard link, which fails if the destination
  appeared meanwhile, so an output written by another program during the run is never
  replaced without ``overwrite``);
* replacing a file: one ``os.replace``, atomic;
* replacing a folder (OME-Zarr): the complete new folder is renamed to
  ``.NAME.XXXXXXXX.new``, the old one to ``.NAME.XXXXXXXX.old``, the new one into place,
  then the old one is deleted. Ctrl-C is held back during these renames. Only a hard
  kill (SIGKILL, power loss) between them can leave the destination missing; then the
  old output is the ``.old`` folder and the complete new one the ``.new`` folder beside
  it, and reading the destination says so (:func:`interrupted_swap`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["temp_file", "temp_folder", "publish", "interrupted_swap", "hold_interrupts"]

TMP_SUFFIX = ".tmp"
OLD_SUFFIX = ".old"
NEW_SUFFIX = ".new"


def temp_file(path: Path) -> Path:
    """An empty temporary file beside ``path`` with normal permissions (umask applied)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
    return Path(tmp)


def temp_folder(path: Path) -> Path:
    """An empty temporary folder beside ``path`` with normal permissions (umask applied;
    it becomes the output folder)."""
    tmp = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    return Path(tmp)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def remove(path: Path) -> None:
    """Delete a file or a folder tree; missing is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def hold_interrupts() -> Iterator[None]:
    """Ctrl-C (SIGINT) waits until the block ends (POSIX, main thread; else no-op): for
    the renames of :func:`publish`, and for importing and probing backends, whose native
    modules (pyopencl's nanobind, CuPy) abort with a traceback if interrupted while they
    initialise."""
    if not hasattr(signal, "pthread_sigmask") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _free_name(path: Path) -> Path:
    """``out.ome.tif`` -> ``out-1.ome.tif`` (the first such name not taken)."""
    stem, dot, rest = path.name.partition(".")
    for k in range(1, 10_000):
        candidate = path.with_name(f"{stem}-{k}{dot}{rest}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"{path}: no free name beside it")


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def publish(tmp: Path, path: Path, *, overwrite: bool) -> Path:
    """Move the complete ``tmp`` (file or folder) to ``path``; returns ``path``.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False: the result is then kept under a free
        name beside it (``out-1.tif``), which the message gives; ``path`` is untouched.
    """
    with hold_interrupts():
        if not _exists(path):
            try:
                _move_new(tmp, path)
                return path
            except FileExistsError:
                pass  # it appeared between the check and the move
        if not overwrite:
            kept = _free_name(path)
            os.replace(tmp, kept)
            raise FileExistsError(
                f"{path} exists (it appeared while the data were computed or written) and "
                f"was left untouched; the result was written to {kept} (pass overwrite=True, "
                "CLI: --overwrite, to replace it)")
        if tmp.is_dir() or path.is_dir():
            token = uuid.uuid4().hex[:8]
            new = path.with_name(f".{path.name}.{token}{NEW_SUFFIX}")  # complete
            old = path.with_name(f".{path.name}.{token}{OLD_SUFFIX}")
            os.replace(tmp, new)
            os.replace(path, old)
            os.replace(new, path)
            remove(old)
        else:
            os.replace(tmp, path)
    return path


def _move_new(tmp: Path, path: Path) -> None:
    """Move to a destination that does not exist; FileExistsError if it appears."""
    if tmp.is_dir():
        try:
            os.rename(tmp, path)  # an existing non-empty folder or a file makes this fail
        except OSError as exc:
            if _exists(path):
                raise FileExistsError(str(path)) from exc
            raise
        return
    try:
        os.link(tmp, path)  # fails if the destination exists: no silent replacement
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if _exists(path):
            raise FileExistsError(str(path)) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def interrupted_swap(path: Path) -> str | None:
    """When ``path`` is missing because a replacement was killed between its two renames:
    a sentence naming the old and the new output beside it; else None."""
    path = Path(path)
    if _exists(path) or not path.parent.is_dir():
        return None
    olds = sorted(path.parent.glob(f".{path.name}.*{OLD_SUFFIX}"))
    if not olds:
        return None
    news = sorted(path.parent.glob(f".{path.name}.*{NEW_SUFFIX}"))
    new = f"; the complete new one is {news[-1]}" if news else ""
    return (f"{path} is missing: a replacement of it was interrupted. The old output is "
            f"{olds[-1]}{new}. Rename the one you want to {path.name}")
