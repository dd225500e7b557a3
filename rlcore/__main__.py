"""``python -m rlcore`` and the ``rlcore`` command."""

import sys


def run() -> int:
    """The command line: Ctrl-C handled from the first import on (:mod:`rlcore._interrupt`);
    returns the exit status. Once the run is over, Ctrl-C ends the process at once, and an
    interrupted run's exit is bounded (:func:`rlcore._interrupt.exiting`)."""
    from rlcore import _interrupt

    _interrupt.install()
    try:
        from rlcore.cli import main

        status = main()
    except KeyboardInterrupt:  # while starting, or as the run ends: one line, as later
        print("rlcore: interrupted", file=sys.stderr)
        status = 130
    _interrupt.exiting(status)
    return status


if __name__ == "__main__":
    sys.exit(run())
