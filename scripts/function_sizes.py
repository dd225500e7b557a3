"""List the functions of rlcore/ that are too long or take too many parameters.

``python scripts/function_sizes.py [--max-lines 80] [--max-params 8]`` prints every
function (or method) of ``rlcore/`` whose body, without its docstring, is longer than
``--max-lines`` lines, or that takes more than ``--max-params`` parameters (``self`` and
``cls`` not counted), except the public signatures that mirror the public API
(:data:`PUBLIC`). Exit status 1 when any is listed (the layering test runs it).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: public signatures allowed more parameters: the public API's and the compat layers'
PUBLIC = {"rlcore/api.py:deconvolve", "rlcore/api.py:convolve",
          "rlcore/deconvolver.py:Deconvolver.__init__",
          "rlcore/compat/skimage.py:richardson_lucy",
          "rlcore/blocks.py:plan",  # the block planner UIs call (README: Large data)
          "rlcore/io/_zarr.py:zarr_output"}  # rlcore.io's public writer (calibration, NGFF version)
PUBLIC_PREFIXES = ("rlcore/compat/redlionfish/",)


def _body_lines(node: ast.AST) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], "value", None), ast.Constant) and isinstance(
            body[0].value.value, str):
        body = body[1:]
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


def _params(node: ast.AST) -> int:
    a = node.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    names = [n for n in names if n not in ("self", "cls")]
    return len(names) + (a.vararg is not None) + (a.kwarg is not None)


def offenders(max_lines: int = 80, max_params: int = 8) -> list[str]:
    """``path:name: N lines`` / ``... N parameters`` for each offending function."""
    found = []
    for path in sorted((ROOT / "rlcore").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text())

        def visit(node, prefix="", rel=rel):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    visit(child, prefix + child.name + ".", rel)
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{rel}:{prefix}{child.name}"
                    lines, params = _body_lines(child), _params(child)
                    if lines > max_lines:
                        found.append(f"{name}: {lines} lines")
                    public = name in PUBLIC or rel.startswith(PUBLIC_PREFIXES)
                    if params > max_params and not public:
                        found.append(f"{name}: {params} parameters")
                    visit(child, prefix + child.name + ".", rel)

        visit(tree)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-lines", type=int, default=80)
    parser.add_argument("--max-params", type=int, default=8)
    args = parser.parse_args(argv)
    found = offenders(args.max_lines, args.max_params)
    for line in found:
        print(line)
    print(f"{len(found)} function(s) above {args.max_lines} lines or {args.max_params} "
          "parameters")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
