"""Benchmarks: ``python -m bench compare`` (rlcore beside its peers) and pytest-benchmark suites."""
