"""The house, checked: the import graph (data flows caller -> api -> runners -> scheduler
-> deconvolver -> iteration -> backend, with no cycle), who may import the public face,
private names outside the package, and the size of functions."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the modules that may import rlcore.api: the faces, and psf.distill (it deconvolves)
FACES = {"rlcore.cli", "rlcore.cli._files", "rlcore.cli._psfs", "rlcore.cli._tools",
         "rlcore.psf._beads", "rlcore.compat.redlionfish.RLDeconvolve",
         "rlcore.compat.redlionfish", "rlcore.napari._widget"}
#: private names that code outside rlcore/ still reaches, each with its reason
PRIVATE_ALLOWED = {
    ("tests/test_faults.py", "rlcore._atomic"):
        "white-box test of the atomic writer (temporary names, publish, remove)",
    ("tests/test_opencl.py", "rlcore.backends._staging"):
        "the pinned-staging threshold the test sizes its arrays by",
    ("tests/test_transfers.py", "rlcore.backends._staging"):
        "the staging lanes against a fake DMA (no device in CI)",
    ("tests/test_transfers.py", "rlcore.backends._results"):
        "the recycled page-locked results with a fake allocator (no device in CI)",
    ("tests/test_faults.py", "rlcore._interrupt"):
        "white-box test of the CLI's SIGINT handler (a frame inside importlib)",
    ("tests/test_opencl.py", "opencl._listing"):
        "simulates a machine without OpenCL devices",
    ("tests/test_opencl.py", "be._plans"):
        "checks that FFT plans are cached per shape (backend internals)",
    ("tests/test_cupy.py", "be._device"):
        "checks the CuPy device a backend was made for",
    ("tests/test_variants.py", "numpy_backend._PIECE"):
        "forces several pieces per slab in the numpy backend's threaded kernels",
    ("tests/test_autostop.py", "autostop._DEVICE_CHUNK"):
        "forces the device split into several pieces on a small image",
    ("bench/cufft_lengths.py", "rlcore.backends.cupy"):
        "measures the CuPy backend's own grid-length rule (_even_7_smooth)",
    ("bench/psf_centring.py", "rlcore.psf._centring"):
        "measures the centring's own sub-voxel shift and its passes (_to_centre)",
    ("bench/gpu_blocks.py", "rlcore.blocks"):
        "times the block reader's contiguous runs (_runs) against alternatives",
    ("bench/gpu.py", "be._plan"):
        "reads cuFFT's work-area sizes of the backend's plans",
    ("bench/experiments/inplace_cost.py", "be._plan"):
        "reads cuFFT's work-area sizes of the backend's plans",
    ("tests/test_io_cli.py", "rlcore.cli._files"):
        "times the batch's read-ahead by wrapping its reader and its runner",
    ("tests/test_napari.py", "rlcore.napari._widget"):
        "the PSF-depths box's parser, a pure function, tested without driving the widget",
    ("bench/experiments/auto_parts.py", "rlcore._run"):
        "times the auto route's own steps (its whole-image refit)",
    ("bench/experiments/gpu_auto_host_parts.py", "rlcore._run"):
        "times the auto route's own steps (its image check and its answer)",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "backends":
        parts = ["rlcore", "backends"] + parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """The rlcore modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = importlib.util.resolve_name("." * node.level + module, package)
            for alias in node.names:  # "from rlcore import api" imports rlcore.api
                found.add(f"{module}.{alias.name}")
            found.add(module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {n for n in found if n.startswith("rlcore")}


def _graph() -> dict[str, set[str]]:
    paths = list((ROOT / "rlcore").rglob("*.py")) + list((ROOT / "backends").glob("*.py"))
    modules = {_module_name(p): p for p in paths}
    modules.pop("rlcore")  # the package: its names are imported lazily (rlcore.__getattr__)
    return {m: {d for d in _imports(p, m) if d in modules and d != m}
            for m, p in modules.items()}


def test_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(m, trail):
        state[m] = 1
        for d in sorted(graph[m]):
            assert state.get(d) != 1, f"import cycle: {' -> '.join(trail + [m, d])}"
            if d not in state:
                visit(d, trail + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_only_the_faces_import_the_public_api():
    graph = _graph()
    importers = {m for m, deps in graph.items() if "rlcore.api" in deps}
    assert importers <= FACES, sorted(importers - FACES)


def test_the_layers_below_never_reach_up():
    """The runners never import the faces; the scheduler, the deconvolver and the
    iteration never import the request or the runners; backends know no RL."""
    graph = _graph()
    cli = {m for m in graph if m == "rlcore.cli" or m.startswith("rlcore.cli.")}
    upper = {"rlcore.api", "rlcore._request"} | cli
    runners = {m for m in graph if m.startswith("rlcore._run")}
    for m in runners:
        assert not graph[m] & ({"rlcore.api"} | cli), m
    for m in ("rlcore.scheduler", "rlcore.deconvolver", "rlcore.placement", "rlcore.iteration",
              "rlcore.blocks", "rlcore.series", "rlcore.pipeline", "rlcore.autostop",
              "rlcore.boundary", "rlcore.protocol", "rlcore.validate", "rlcore.backprojector",
              "rlcore.strata"):
        assert not graph[m] & (upper | runners), (m, graph[m] & (upper | runners))
    for m in graph:
        if m.startswith("rlcore.backends."):
            bad = graph[m] & (upper | runners | {"rlcore.deconvolver", "rlcore.iteration",
                                                 "rlcore.scheduler", "rlcore.autostop"})
            assert not bad, (m, bad)


#: attribute uses of private names: rlcore's modules by their usual aliases, backends
_PRIVATE = re.compile(r"\b((?:rlcore(?:\.\w+)*|\w+_backend|opencl|autostop|be)\._[a-z]\w*)")


def _private_uses(text: str) -> set[str]:
    """``module.name`` for every private rlcore name ``text`` imports or reaches."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlcore"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                if any(p.startswith("_") and p != "__version__" for p in name.split(".")):
                    found.add(name)
    found.update(m.group(1) for m in _PRIVATE.finditer(text))
    return found


def test_no_private_rlcore_names_outside_the_package():
    """bench/, scripts/ and tests/ use public names, or a listed exception with its
    reason."""
    unexplained = []
    for folder in ("bench", "scripts", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if "redlionfish_upstream" in path.parts or path.name == "test_layering.py":
                continue
            rel = path.relative_to(ROOT).as_posix()
            for name in sorted(_private_uses(path.read_text())):
                if not any(rel == r and name.startswith(n) for r, n in PRIVATE_ALLOWED):
                    unexplained.append(f"{rel}: {name}")
    assert not unexplained, unexplained


def test_functions_are_small():
    """No function of rlcore/ above 80 lines (docstring aside) or 8 parameters, except
    the public signatures (scripts/function_sizes.py lists them)."""
    spec = importlib.util.spec_from_file_location("function_sizes",
                                                  ROOT / "scripts" / "function_sizes.py")
    sizes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sizes)
    found = sizes.offenders()
    assert not found, found


def test_every_package_is_in_the_wheel():
    """pyproject's package list names every package folder of rlcore/ (an editable
    install finds them anyway; a wheel would miss one left out)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "rlcore").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
