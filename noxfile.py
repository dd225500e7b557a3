"""nox sessions: tests, lint, bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "rlcore", "backends", "tests", "bench", "scripts", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[bench]")
    session.run("python", "-m", "bench", "compare", "--out", "bench/results/cpu", *session.posargs)
    session.run("python", "-m", "pytest", "bench", "--benchmark-only", "-p", "no:cacheprovider")
