"""The parser the CLI reference is rendered from: ``rlcore.cli.parser()`` itself, with the
characters reST would read as markup (``*`` in ``'data/*.ome.tif'``, ``|``) escaped in its
help texts, so sphinx-argparse shows them as ``rlcore <command> --help`` prints them."""

from __future__ import annotations

import argparse

from rlcore.cli import parser as _parser


def _escape(text: str | None) -> str | None:
    if not text or text is argparse.SUPPRESS:
        return text
    return text.replace("\\", "\\\\").replace("*", r"\*").replace("|", r"\|").replace("`", r"\`")


def _walk(parser: argparse.ArgumentParser) -> None:
    parser.description = _escape(parser.description)
    parser.epilog = _escape(parser.epilog)
    for action in parser._actions:
        action.help = _escape(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = _escape(choice.help)
            for sub in action.choices.values():
                _walk(sub)


def parser() -> argparse.ArgumentParser:
    p = _parser()
    _walk(p)
    return p
