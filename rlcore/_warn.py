"""Warnings that point at the caller's line: the first frame outside rlcore."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

__all__ = ["warn"]

#: rlcore's own folders (the package, and ``backends/`` where it is installed from a checkout)
_OURS = tuple(str(p) for p in {Path(__file__).resolve().parent,
                               Path(__file__).resolve().parent.parent / "backends"})


def _level() -> int:
    """The ``stacklevel`` of the first frame outside rlcore, seen from :func:`warn`."""
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(
            _OURS):
        frame, level = frame.f_back, level + 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the caller of rlcore (so that
    the warning names the user's line, and filters on the user's module apply)."""
    warnings.warn(message, category, stacklevel=_level())
