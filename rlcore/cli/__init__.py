"""The ``rlcore`` command: a thin layer over the public API.

``rlcore deconvolve IMAGE PSF -o OUT``, ``rlcore batch``, ``rlcore psf``, ``rlcore info``,
``rlcore sample -o DIR``. Errors in the input exit with status 2 and one line on stderr.

The package: :mod:`rlcore.cli._options` (the parser), :mod:`rlcore.cli._psfs` (the PSF
files and their preparation), :mod:`rlcore.cli._files` (deconvolve and batch: files in,
files out), :mod:`rlcore.cli._tools` (psf, info, sample); here the entry point and its
one-line errors.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence

from rlcore.cli._files import _EXPECTED, _batch, _deconvolve
from rlcore.cli._options import parser
from rlcore.cli._tools import _info, _psf, _sample

__all__ = ["main", "parser"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("rlcore: interrupted; an output not finished was not written (an existing one "
              "is untouched)", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="rlcore: %(message)s"
    )
    from rlcore.formats import LOGGERS

    for name in ("tifffile", "ome_zarr", "zarr", "numcodecs", "imagecodecs") + LOGGERS:
        # the file libraries' own log lines (rlcore.io says what matters in its errors)
        logging.getLogger(name).setLevel(logging.INFO if args.verbose else logging.ERROR)

    def one_line(text: object) -> str:
        return " ".join(str(text).split())

    warnings.showwarning = lambda message, *a, **k: print(
        f"rlcore: warning: {one_line(message)}", file=sys.stderr
    )
    from rlcore.errors import RLCoreError

    try:
        if args.command == "deconvolve":
            return _deconvolve(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "info":
            return _info()
        if args.command == "psf":
            return _psf(args)
        return _sample(args)
    except (*_EXPECTED, RLCoreError) as exc:
        print(f"rlcore: error: {one_line(exc) or type(exc).__name__}", file=sys.stderr)
        return 2
