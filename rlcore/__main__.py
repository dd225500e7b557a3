"""``python -m rlcore`` and the ``rlcore`` command."""

import sys


def run() -> int:
    """The command line: Ctrl-C handled from the first import on (:mod:`rlcore._interrupt`);
    returns the exit status."""
    from rlcore import _interrupt

    _interrupt.install()
    try:
        from rlcore.cli import main
    except KeyboardInterrupt:  # Ctrl-C while starting: one line, as later
        print("rlcore: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
