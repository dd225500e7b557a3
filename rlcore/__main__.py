import sys

try:
    from rlcore.cli import main
except KeyboardInterrupt:  # Ctrl-C while starting: one line, as later
    print("rlcore: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
