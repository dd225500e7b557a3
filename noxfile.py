"""nox sessions: tests, lint, bench, docs."""

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
    session.run("ruff", "check", "rlcore", "backends", "tests", "bench", "scripts", "docs",
                "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[bench]")
    session.run("python", "-m", "bench", "compare", "--out", "bench/results/cpu", *session.posargs)
    session.run("python", "-m", "pytest", "bench", "--benchmark-only", "-p", "no:cacheprovider")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: warnings are errors, the example gallery is executed.

    The same without nox, in an environment with ``pip install -e ".[docs]"``:
    ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
    """
    session.install("-e", ".[docs]")
    session.run("python", "-m", "sphinx", "-W", "--keep-going", "-b", "html",
                "docs", "docs/_build/html", *session.posargs)
