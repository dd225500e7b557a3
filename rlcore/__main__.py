"""``python -m rlcore`` and the ``rlcore`` command."""

import sys


def run() -> int:
    """The command line: Ctrl-C handled from the first import on (:mod:`rlcore._interrupt`);
    returns the exit status. An interrupted run's exit is bounded
    (:func:`rlcore._interrupt.exit_soon`)."""
    from rlcore import _interrupt

    _interrupt.install()
    try:
        from rlcore.cli import main
    except KeyboardInterrupt:  # Ctrl-C while starting: one line, as later
        print("rlcore: interrupted", file=sys.stderr)
        status = 130
    else:
        status = main()
    if status == 130:
        _interrupt.exit_soon(status)
    return status


if __name__ == "__main__":
    sys.exit(run())
