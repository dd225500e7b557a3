"""Sphinx configuration of rlcore's documentation site.

Build (warnings are errors; the gallery is executed):

    nox -s docs
    # or, in an environment with rlcore[docs] installed:
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))  # rlcore from this checkout when it is not installed
sys.path.insert(0, str(DOCS))  # _cli: the parser the CLI reference is rendered from

import rlcore  # noqa: E402

project = "rlcore"
author = "rlcore developers"
copyright = "rlcore developers, BSD-3-Clause"  # noqa: A001 - Sphinx's name
release = rlcore.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "examples/README.rst", "examples/GALLERY_HEADER.rst",
                    "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.md5", "auto_examples/*.pickle", "auto_examples/*.json",
                    "**/sg_execution_times.rst", "sg_execution_times.rst"]

# ---- the measurements: one page per bench/results/*.md, generated at each build -------------
# The files stay where the benchmarks write them; each page is its file's text (headings
# made consecutive, which the generated tables skip, and image paths pointed back at
# bench/results/), so the site shows today's tables and a new results file gets its page
# without editing the docs. docs/results/ is generated (git-ignored).
RESULTS = REPO / "bench" / "results"
_HEADING = re.compile(r"^(#+)\s+(.*)$")
_IMAGE = re.compile(r"(!\[[^\]]*\]\()(?![a-z]+://|/)([^)]+\))")


def _results_page(text: str, title: str, name: str) -> str:
    out, fence, last = [], False, 0
    for i, line in enumerate(text.splitlines()):
        if line.lstrip().startswith("```"):
            fence = not fence
        m = None if fence else _HEADING.match(line)
        if m and i == 0:
            out += [f"# {title}", "", f"`bench/results/{name}`, as the benchmark wrote it."]
            last = 1
            continue
        if m:
            last = min(len(m.group(1)), last + 1)
            line = "#" * last + " " + m.group(2)
        elif not fence:
            line = _IMAGE.sub(r"\1../../bench/results/\2", line)
        out.append(line)
    return "\n".join(out) + "\n"


def _write_results_pages() -> None:
    out = DOCS / "results"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.md"):
        old.unlink()
    pages = sorted(RESULTS.glob("*.md"))
    firsts = {md: md.read_text(encoding="utf-8").splitlines()[0].lstrip("#").strip()
              for md in pages}
    for md in pages:
        title = firsts[md]
        if list(firsts.values()).count(title) > 1:
            title = f"{title} ({md.stem})"
        (out / md.name).write_text(_results_page(md.read_text(encoding="utf-8"), title,
                                                 md.name), encoding="utf-8")
    others = sorted(p.name for p in RESULTS.iterdir() if p.suffix != ".md")
    lines = ["# Measurements", "",
             "Every table the benchmarks in `bench/` wrote, as committed under",
             "`bench/results/` (the command that produced each is in its text). The guides",
             "quote these numbers; {doc}`/comparison` says how to run the comparison again.",
             "", "```{toctree}", ":maxdepth: 1", ""]
    lines += [f"{md.stem}" for md in pages] + ["```", "",
              "Raw results beside them (JSON rows, logs, plots), in `bench/results/`:", ""]
    lines += [f"- `{name}`" for name in others] + [""]
    (out / "index.md").write_text("\n".join(lines), encoding="utf-8")


_write_results_pages()

# ---- API reference: autodoc + autosummary, docstrings read by numpydoc ----------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections carry the types; signatures stay short
numpydoc_show_class_members = False  # members are documented by the class template
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# ---- the pages: MyST markdown -----------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# ---- the example gallery, executed at every build ---------------------------------------------
# Each example runs on the shipped sample or on small generated data with backend="numpy",
# a few seconds on 2 cores; together well under the CI budget. An example that raises fails
# the build (sphinx-gallery's default).
os.environ.setdefault("MPLBACKEND", "agg")
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "doc_module": ("rlcore",),
    "backreferences_dir": "api/backrefs",
    "reference_url": {"rlcore": None},
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "min_reported_time": 0,
}

# ---- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"rlcore {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
# the guides have no sub-pages: no empty "Section Navigation" column beside them
_GUIDES = ["install", "quickstart", "iterations", "boundaries", "psf", "large-data",
           "backends", "series", "napari", "embedding", "migrating", "comparison",
           "reliability", "cli", "development"]
html_sidebars = {page: [] for page in _GUIDES}


# ---- docstrings that docutils misreads ----------------------------------------------------------
# A few docstrings write absolute values as |x| outside literals, which reST reads as a
# substitution reference (an error). Until the library's docstrings are fixed (write
# ``|x|`` or \|x\|), the build escapes them here, only in these objects:
#   rlcore/autostop.py: the comment above CV_ALPHA ("P = |OTF|^2 / (|OTF|^2 + CV_ALPHA)")
#   rlcore/backprojector.py: the module docstring and BackProjector ("cumulative |OTF|")
#   rlcore/boundary.py: the comment above FACE_BOUNDARY ("a mean |z| of 0.28 voxel")
#   rlcore/compat/redlionfish/__init__.py: the module docstring ("a mean |offset| (z, y, x)")
_BARS_TO_ESCAPE = {
    "rlcore.autostop.CV_ALPHA": ("|OTF|",),
    "rlcore.backprojector": ("|OTF|",),
    "rlcore.backprojector.BackProjector": ("|OTF|",),
    "rlcore.boundary.FACE_BOUNDARY": ("|z|",),
    "rlcore.compat.redlionfish": ("|offset|",),
}


def _escape_bars(app, what, name, obj, options, lines):
    for word in _BARS_TO_ESCAPE.get(name, ()):
        escaped = word.replace("|", r"\|")
        for i, line in enumerate(lines):
            # only outside ``literals``: split on the double backquotes, even parts are text
            parts = line.split("``")
            parts[::2] = [p.replace(word, escaped) for p in parts[::2]]
            lines[i] = "``".join(parts)


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars)
