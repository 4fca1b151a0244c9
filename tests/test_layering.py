"""Layering, checked on the source: data -> models -> engine -> prompts/policy -> service, cli.

Imports are read from the ASTs of src/glmimage wherever they are written: at module level, inside functions (the
usual way to hide a cycle), and as module names given to importlib (a string that names a glmimage module is a
dynamic import). Nothing is imported, so these tests are fast and need no torch.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "glmimage"

# Inference: what `generate`, `edit`, the prompts layer and the service run. None of it may import training.
INFERENCE_LAYERS = ("engine", "models", "prompts", "policy", "service", "cli")
# The command-line entry points that must reach training, and why. Nothing else in INFERENCE_LAYERS may; a module
# that reaches training only through one of these (cli.main registers them all) is fine.
TRAINING_ENTRY_POINTS = {
    "glmimage.cli.train_cmd": "`glmimage train` runs the training stages and `ship`",
}
# Subpackages that import each other, with why; none today (evaluation reads VQ codes through the engine, so only
# training imports evaluation).
KNOWN_PACKAGE_CYCLES: dict[frozenset[str], str] = {}
_MODULE_NAME = re.compile(r"glmimage(\.[A-Za-z_]\w*)+")


@cache
def modules() -> dict[str, Path]:
    """Every module of src/glmimage by dotted name (a package by its __init__)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@cache
def imports(name: str, typing: bool = True) -> frozenset[str]:
    """The glmimage modules `name` imports anywhere in its source; `typing=False` leaves out the imports under
    `if TYPE_CHECKING:`, which never run."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skipped: set[int] = set()
    tree = ast.parse(path.read_text(), str(path))
    if not typing:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node):
                skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.fullmatch(node.value):
            found.add(node.value)
    return frozenset(m for m in found if m in modules() and m != name)


def subpackage(name: str) -> str | None:
    """The top-level subpackage of a module ("glmimage.engine.plan" -> "engine"); None for glmimage's own modules."""
    parts = name.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return None


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def module_graph() -> dict[str, set[str]]:
    return {name: set(imports(name, typing=False)) for name in modules()}


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name in modules():
        source = subpackage(name)
        if source is None:
            continue
        graph.setdefault(source, set())
        for target in imports(name, typing=False):
            if subpackage(target) not in (None, source):
                graph[source].add(subpackage(target))
    return graph


def path_to_training(start: str) -> list[str] | None:
    """The shortest import chain from `start` to a glmimage.training module, not passing through an allowed entry
    point; None if there is none."""
    parent: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        name = queue.pop(0)
        for target in sorted(imports(name)):
            if target in parent or target in TRAINING_ENTRY_POINTS:
                continue
            parent[target] = name
            if target == "glmimage.training" or target.startswith("glmimage.training."):
                chain = [target]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                return chain[::-1]
            queue.append(target)
    return None


# -- the rules --------------------------------------------------------------------------------------------------
def test_the_checker_reads_imports_inside_functions_and_strings():
    assert "glmimage.cli.generate_cmd" in imports("glmimage.cli.main")  # by name, through importlib
    assert "glmimage.models.adapters" in imports("glmimage.cli.generate_cmd")  # inside a function
    assert "glmimage.engine.engine" in imports("glmimage.engine", typing=False)  # a name in its lazy table
    assert path_to_training("glmimage.cli.main") is None  # only through the allowed entry points
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


@pytest.mark.parametrize("entry_point", sorted(TRAINING_ENTRY_POINTS))
def test_each_allowed_entry_point_exists_and_still_needs_training(entry_point):
    assert entry_point in modules(), f"{entry_point} is gone: remove it from TRAINING_ENTRY_POINTS"
    assert path_to_training(entry_point), f"{entry_point} no longer reaches training: remove it from the list"


@pytest.mark.parametrize("layer", INFERENCE_LAYERS)
def test_inference_does_not_import_training(layer):
    offenders = {}
    for name in sorted(modules()):
        if subpackage(name) == layer and name not in TRAINING_ENTRY_POINTS:
            chain = path_to_training(name)
            if chain:
                offenders[name] = " -> ".join(chain)
    assert not offenders, (
        "inference imports training (move what it needs into engine/ or models/, or list a command that must "
        f"train in TRAINING_ENTRY_POINTS): {offenders}")


def test_no_import_cycle_between_subpackages():
    found = [c for c in cycles(package_graph()) if frozenset(c) not in KNOWN_PACKAGE_CYCLES]
    assert not found, f"subpackages import each other: {found}"
    graph = package_graph()
    assert not ("policy" in graph["prompts"] and "prompts" in graph["policy"])  # prompts -> policy, never back
    for pair in KNOWN_PACKAGE_CYCLES:  # a known cycle that is gone should leave the list
        assert any(pair <= c for c in cycles(graph)), f"{set(pair)} no longer import each other: unlist them"


def test_no_import_cycle_between_modules():
    found = cycles(module_graph())
    assert not found, f"modules import each other (function-level imports count): {found}"
    assert "glmimage.service.services" not in imports("glmimage.service.rq_queue")


def test_the_light_layers_load_without_torch():
    # The prompts layer, the policy, the CLI's front and the size and glyph rules load in a blink: torch (and the
    # engine) only when a model is run.
    light = ["glmimage.prompts.batch", "glmimage.policy", "glmimage.cli.main", "glmimage.models.sizes",
             "glmimage.engine.glyph_text", "glmimage.defaults"]
    code = f"import sys; import {', '.join(light)}; print(sorted(m for m in ('torch', 'glmimage.engine.engine') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout
