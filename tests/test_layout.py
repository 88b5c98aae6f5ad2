"""The package layout rules of STYLE.md: our `realtime` is the one imported, and `fdp` stays independent."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_realtime_package_is_ours_not_pypi():
    import realtime

    assert Path(realtime.__file__).resolve().is_relative_to(REPO)


def test_fdp_import_does_not_pull_realtime_or_engines():
    code = (
        "import sys, pkgutil, importlib, fdp\n"
        "for m in pkgutil.walk_packages(fdp.__path__, 'fdp.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('realtime', 'engines', 'calibration'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == ""


def import_graph(*packages: str) -> dict[str, set[str]]:
    """Module -> the modules of `packages` it imports anywhere (top level, in functions, under TYPE_CHECKING),
    read from the source, so an import hidden inside a function still counts."""
    paths = {}
    for package in packages:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            paths[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    module = ".".join(base[:len(base) - node.level + 1] + ([module] if module else []))
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_layout_packages_have_no_import_cycles():
    assert import_cycles(import_graph("fdp", "engines", "realtime", "calibration")) == []


def test_layout_engines_never_import_realtime_or_calibration():
    graph = import_graph("engines", "realtime", "calibration")
    upward = {module: sorted(t for t in targets if t.split(".")[0] in ("realtime", "calibration"))
              for module, targets in graph.items() if module.split(".")[0] == "engines"}
    assert upward and all(not targets for targets in upward.values()), upward


def test_layout_pyproject_lists_every_package_and_no_other():
    """`realtime` forces an explicit package list: a package missing from it is missing from the wheel."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(REPO).parts)
             for top in ("fdp", "realtime", "engines", "calibration") for init in (REPO / top).rglob("__init__.py")}
    assert listed - {"fdp_models"} == found


def test_layout_datasets_and_synthesis_are_separate_packages():
    """The dataset loaders and the synthesizer each have a package; datasets reach the synthesizer only where the
    synthetic set is read like a dataset."""
    assert not (REPO / "fdp" / "data").exists()
    assert {"casme2", "samm", "casme_sq", "casme3"} <= {p.stem for p in (REPO / "fdp" / "datasets").glob("*.py")}
    assert {"synthetic", "warp", "long_videos"} <= {p.stem for p in (REPO / "fdp" / "synthesis").glob("*.py")}
    graph = import_graph("fdp")
    into_synthesis = {(module, target) for module, targets in graph.items() if module.startswith("fdp.datasets")
                      for target in targets if target.startswith("fdp.synthesis")}
    assert into_synthesis == {("fdp.datasets.sources", "fdp.synthesis.synthetic")}


def test_layout_ruff_is_configured_in_pyproject_and_a_dev_dependency():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    ruff = project["tool"]["ruff"]
    assert ruff["line-length"] == 120 and {"E", "W", "F", "I", "B", "UP"} <= set(ruff["lint"]["select"])
    assert any(dep.startswith("ruff") for dep in project["project"]["optional-dependencies"]["dev"])


def test_layout_ruff_passes_on_the_whole_tree():
    """The lint rules (line length 120 among them) hold everywhere; .ci/run also runs `ruff check .` first."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_layout_the_aligner_version_is_written_once():
    """One definition (`fdp.config.ALIGNER_VERSION`, the default of `AlignerSettings.version`): two copies could
    drift apart and let a model run on crops of another aligner."""
    written = [f"{path.relative_to(REPO)}" for folder in ("fdp", "realtime", "engines", "calibration")
               for path in sorted((REPO / folder).rglob("*.py")) if '"fdp-align/' in path.read_text(encoding="utf-8")]
    assert written == ["fdp/config.py"]


def test_layout_reports_live_apart_from_the_evaluate_command():
    """Training pools its run through `fdp.reporting`; only the commands import `fdp.evaluate`."""
    graph = import_graph("fdp")
    assert "fdp.evaluate" not in graph["fdp.train"] and "fdp.reporting" in graph["fdp.train"]
    assert not graph["fdp.reporting"] & {"fdp.evaluate", "fdp.train", "fdp.fold_runner", "fdp.cli"}
    importers = {module for module, targets in graph.items() if "fdp.evaluate" in targets}
    assert importers == {"fdp.commands"}
