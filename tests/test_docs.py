"""What the documentation promises, checked without building it.

* Every public name has a page in the API reference: each name in ``rlcore.__all__`` and in
  the ``__all__`` of every public submodule (and of the modules those list) is an entry of
  an ``autosummary`` list in ``docs/api/*.rst``, or, for a module, the subject of an
  ``automodule`` there. Parsed from the .rst sources: no Sphinx build here.
* The docstrings' examples run, as doctests, over rlcore's public modules and the modules
  that define ``rlcore.__all__``'s names.
* The README's Python blocks run, in order, in one namespace (as a reader would run
  them); a block that needs a GPU, or the network, skips with that reason.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import re
import types
from pathlib import Path

import numpy as np
import pytest

import rlcore

REPO = Path(__file__).resolve().parents[1]
API_DOCS = REPO / "docs" / "api"
README = REPO / "README.md"

#: the public modules: the API reference has a page for each and for every name they export
PUBLIC_MODULES = (
    "rlcore", "rlcore.psf", "rlcore.blocks", "rlcore.io", "rlcore.formats",
    "rlcore.backprojector", "rlcore.autostop", "rlcore.autostop_checks",
    "rlcore.autostop_strata", "rlcore.series",
    "rlcore.boundary", "rlcore.background", "rlcore.errors",
    "rlcore.compat.skimage", "rlcore.compat.redlionfish", "rlcore.data",
)
#: rlcore's lazily imported submodules that are documented elsewhere than docs/api
DOCUMENTED_ELSEWHERE = {"cli": "docs/cli.rst renders its argument parser"}


# ---- every public name has a reference page ------------------------------------------------

def _documented() -> tuple[set[str], set[str]]:
    """(autosummary entries as full names, modules with an automodule) of docs/api/*.rst."""
    names: set[str] = set()
    modules: set[str] = set()
    for rst in sorted(API_DOCS.glob("*.rst")):
        current = None
        in_summary = False
        for line in rst.read_text(encoding="utf-8").splitlines():
            directive = re.match(r"\.\. (currentmodule|automodule|module|autosummary)::\s*(\S*)",
                                 line)
            if directive:
                kind, arg = directive.groups()
                in_summary = kind == "autosummary"
                if kind in ("currentmodule", "automodule", "module"):
                    current = arg
                if kind == "automodule":
                    modules.add(arg)
                continue
            if in_summary:
                entry = line.strip()
                if not entry or entry.startswith(":"):  # blank lines and the options
                    continue
                if not line.startswith(" "):  # the list ended
                    in_summary = False
                    continue
                names.add(entry if current is None else f"{current}.{entry}")
    return names, modules


def _public_names() -> tuple[set[str], set[str]]:
    """(public objects' full names, public modules), modules listed in an __all__ included."""
    names: set[str] = set()
    modules: set[str] = set()
    todo = list(PUBLIC_MODULES)
    while todo:
        name = todo.pop()
        if name in modules:
            continue
        modules.add(name)
        module = importlib.import_module(name)
        for attr in module.__all__:
            value = getattr(module, attr)
            if isinstance(value, types.ModuleType):
                todo.append(value.__name__)
            else:
                names.add(f"{name}.{attr}")
    return names, modules


def test_every_public_name_has_a_reference_page():
    documented, documented_modules = _documented()
    names, modules = _public_names()
    missing = sorted(names - documented)
    missing_modules = sorted(modules - documented_modules)
    assert not missing and not missing_modules, (
        "public names without a page in the API reference (add each to an autosummary list "
        f"in docs/api/<its module>.rst): {missing}; modules without an automodule in "
        f"docs/api: {missing_modules}")


def test_the_reference_lists_no_name_that_is_not_public():
    documented, _ = _documented()
    names, _ = _public_names()
    stale = sorted(documented - names)
    assert not stale, f"docs/api lists names that are not public (any more): {stale}"


def test_every_lazy_submodule_is_documented():
    undocumented = [name for name in rlcore._LAZY
                    if f"rlcore.{name}" not in PUBLIC_MODULES and name not in DOCUMENTED_ELSEWHERE]
    assert not undocumented, (f"rlcore submodules missing from PUBLIC_MODULES (and so from "
                              f"the API reference): {undocumented}")


# ---- the docstrings' examples --------------------------------------------------------------

def _doctest_modules() -> list[str]:
    defining = set()
    for name in rlcore.__all__:
        value = getattr(rlcore, name)
        if not isinstance(value, (types.ModuleType, str)):
            defining.add(value.__module__)
    _, modules = _public_names()
    return sorted(set(PUBLIC_MODULES) | modules | defining)


#: examples whose expected output holds on some machines only: {test name: (condition, why)}
def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


_MACHINE_DEPENDENT: dict = {
    "rlcore.psf.widefield_depths": (lambda: _missing("psfmodels"),
                                    "needs psfmodels (pip install 'rlcore[psf]')"),
}


@pytest.mark.parametrize("module_name", _doctest_modules())
def test_docstring_examples(module_name):
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # an optional dependency of that module
        pytest.skip(f"{module_name} needs an optional package that is missing: {exc}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    ran, skipped = 0, []
    for test in finder.find(module, module_name):
        if not test.examples:
            continue
        condition, why = _MACHINE_DEPENDENT.get(test.name, (lambda: False, ""))
        if condition():
            skipped.append(f"{test.name}: {why}")
            continue
        test.globs.setdefault("np", np)
        runner.run(test)
        ran += 1
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} docstring examples in {module_name} failed"
    if skipped and not ran:
        pytest.skip("; ".join(skipped))


# ---- the README's Python blocks ------------------------------------------------------------

_FENCE = re.compile(r"^```python\s*\n(.*?)^```", re.S | re.M)
_SKIP_MARK = re.compile(r"<!--\s*test:\s*skip\s*(.*?)\s*-->\s*$")


def _readme_blocks() -> list[tuple[str, str | None]]:
    """(code, explicit skip reason) of every ```python block of the README, in order."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for m in _FENCE.finditer(text):
        before = text[:m.start()].rstrip().splitlines()
        mark = _SKIP_MARK.search(before[-1]) if before else None
        blocks.append((m.group(1), mark.group(1) if mark else None))
    return blocks


def _cupy_devices() -> int:
    info = {b.name: b for b in rlcore.available_backends()}.get("cupy")
    return len(info.devices) if info is not None and info.available else 0


def _skip_reason(code: str, explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if "device=[0, 1]" in code and _cupy_devices() < 2:
        return "needs two CUDA GPUs (device=[0, 1]) and CuPy"
    if 'backend="cupy"' in code and _cupy_devices() < 1:
        return "needs a CUDA GPU and CuPy (backend=\"cupy\")"
    if re.search(r"https?://|urllib|requests\.", code):
        return "needs the network"
    return None


def _stand_ins(code: str, namespace: dict) -> None:
    """Small stand-ins for the names a README block leaves to the reader (its data, its
    progress callback, its loop's stacks and writer, its output store)."""
    from rlcore.data import lls_sample

    def need(name: str) -> bool:
        return re.search(rf"\b{name}\b", code) is not None and name not in namespace

    if need("data_np") or need("psf_np"):
        image, psf, _ = lls_sample()
        namespace.setdefault("data_np", image[16:48, 32:96, 32:96])
        namespace.setdefault("psf_np", psf[8:24, 16:48, 16:48])
    if need("tick"):
        namespace["tick"] = lambda: None
    if need("stacks"):
        rng = np.random.default_rng(0)
        namespace["stacks"] = [rng.poisson(5.0, (64, 256, 256)).astype(np.float32)]
    if need("save"):
        namespace["save"] = lambda result: None
    if need("zarr_out"):
        zarr = pytest.importorskip("zarr", reason="the block writes to a zarr array (rlcore[dask])")
        image = namespace.get("image")
        namespace["zarr_out"] = zarr.zeros(image.shape, dtype="float32")
    if need("dask_array"):
        da = pytest.importorskip("dask.array", reason="the block uses Dask (rlcore[dask])")
        namespace["dask_array"] = da.from_array(np.asarray(namespace.get("image")),
                                                chunks=(32, 64, 64))


_README = _readme_blocks()
_namespace: dict = {}
_done: set[int] = set()


def _run_block(index: int) -> None:
    code, explicit = _README[index]
    _stand_ins(code, _namespace)
    exec(compile(code, f"README.md python block {index + 1}", "exec"), _namespace)
    _done.add(index)


def test_the_readme_has_python_blocks():
    assert _README, "README.md has no ```python block to test"


@pytest.mark.parametrize("index", range(len(_README)), ids=lambda i: f"block{i + 1}")
def test_readme_python_block(index):
    code, explicit = _README[index]
    reason = _skip_reason(code, explicit)
    if reason:
        pytest.skip(reason)
    for earlier in range(index):  # what a reader ran before (when run alone, e.g. with -k)
        if earlier not in _done and _skip_reason(*_README[earlier]) is None:
            _run_block(earlier)
    _run_block(index)


def test_every_bench_result_is_in_the_results_index():
    """bench/results/README.md names each file beside it (what it measured, the command)."""
    folder = REPO / "bench" / "results"
    index = (folder / "README.md").read_text()
    unlisted = sorted(p.name for p in folder.iterdir()
                      if p.name != "README.md" and f"[{p.name}]" not in index
                      and f"({p.name})" not in index and f"/{p.name})" not in index)
    assert not unlisted, f"add a row to bench/results/README.md for: {', '.join(unlisted)}"


def test_ci_runs_exactly_the_readmes_test_command():
    """.ci/run's command line is the README's second command (install, suite, docs)."""
    blocks = re.findall(r"^```bash\n(.*?)\n```", README.read_text(), re.S | re.M)
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd "))]
    assert len(blocks) >= 2 and ci == [blocks[1].strip()], (ci, blocks[1:2])
