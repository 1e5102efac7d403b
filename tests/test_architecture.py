"""The house rules of ``simeval/``, checked on its source: layers that import only downwards, no
import cycles, small modules, and nothing that reaches outside the repository.

Every import counts, also the ones inside functions (a lazy import is a dependency too). Layers,
lowest first: the foundations (errors, paths, atomic, options), ``track``, ``sim``, then ``env``
and ``agents`` (side by side: neither imports the other), ``eval``, ``build``, and the command
modules behind ``python -m simeval.<name>``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from simeval.paths import PACKAGE_DIR, REPO_ROOT

COMMANDS = ("run", "sweep", "replay", "circuits", "dataset", "train", "optimize", "offline", "models")
"""Keep equal to ``simeval.cli.COMMANDS`` (a test checks)."""
LAYERS = {
    "errors": 0, "paths": 0, "atomic": 0, "options": 0, "__init__": 0,
    "track": 1, "sim": 2, "env": 3, "agents": 3, "eval": 4, "build": 5, **dict.fromkeys(COMMANDS, 6),
    "cli": 7, "__main__": 7,
}
MAX_LINES = 500
LONG_MODULE_REASON = "Why this module is long:"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The simeval module an imported name lives in (a name in a module resolves to that module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Every simeval module that ``module`` imports, anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {target for n in names if n.startswith("simeval") and (target := resolve(n)) and target != module}
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def test_every_module_belongs_to_a_layer():
    assert all(layer(m) is not None for m in MODULES)


def test_layers_import_only_downwards():
    """Runtime code (track, sim, env, agents, eval) never imports build code or the commands, and
    no layer imports one above it; env and agents do not import each other."""
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if layer(target) > layer(module) or (layer(target) == layer(module) == 3 and target.split(".")[1] != module.split(".")[1])
    )
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles() == []


def test_the_check_finds_a_cycle_when_there_is_one(monkeypatch):
    monkeypatch.setitem(GRAPH, "simeval.track.lookup", GRAPH["simeval.track.lookup"] | {"simeval.sim.raster"})
    assert ["simeval.sim.raster", "simeval.track.lookup"] in cycles()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_long_modules_say_why(module):
    text = MODULES[module].read_text(encoding="utf-8")
    lines = text.count("\n")
    if lines > MAX_LINES:
        docstring = ast.get_docstring(ast.parse(text)) or ""
        assert LONG_MODULE_REASON in docstring, f"{module} has {lines} lines and no '{LONG_MODULE_REASON}' in its docstring"


def test_nothing_refers_to_files_outside_the_repository():
    """Code, tests and docs name only files inside the repository (a clean clone is all a user has)."""
    texts = [p for d in ("simeval", "tests", "bench") for p in (REPO_ROOT / d).rglob("*.py")]
    texts += [REPO_ROOT / n for n in ("README.md", "ARCHITECTURE.md", "Makefile", "pyproject.toml")]
    texts += list((REPO_ROOT / "circuits").glob("*.md")) + list((REPO_ROOT / "agents").glob("*.md"))
    outside = ["../shared", "shared/tracks", "shared/reference", "DESIGN.md"]
    hits = [f"{p.relative_to(REPO_ROOT)}: {word}" for p in texts if p.is_file() for word in outside
            if word in p.read_text(encoding="utf-8") and p.name != "test_architecture.py"]
    assert not hits, hits


def test_the_console_command_knows_every_command_module() -> None:
    from simeval.cli import COMMANDS as CLI_COMMANDS

    assert sorted(CLI_COMMANDS) == sorted(COMMANDS)
