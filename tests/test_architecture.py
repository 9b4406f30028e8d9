"""The package's layering: every import of an mdm module points down the layers, and
no two modules import each other, directly or in a cycle (README, Layout)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "mdm"
# Lower numbers sit below higher ones. Subpackages of one layer never import each other.
LAYERS = {
    "mdm.core": 0,
    "mdm.data": 1, "mdm.model": 1,
    "mdm.checkpoint": 2,
    "mdm.evaluate": 3,
    "mdm.train": 4, "mdm.serve": 4,
    "mdm.cli": 4,
    "mdm.infer": 5, "mdm.calibrate": 5, "mdm.synthetic": 5, "mdm": 5,
}


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module):
    """The layered part a module belongs to: its subpackage, or itself at the top."""
    for part in sorted(LAYERS, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    raise AssertionError(f"{module} is in no layer")


def imported_modules(path):
    """Every mdm module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mdm"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mdm"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() \
                    or (PACKAGE.parent / candidate.replace(".", "/")).is_dir()
                found.add(candidate if is_module else node.module)
    return found


def import_graph():
    return {module_name(path): imported_modules(path) for path in PACKAGE.rglob("*.py")}


def upward_imports(graph):
    wrong = []
    for module, imports in graph.items():
        own = part_of(module)
        for target in imports:
            other = part_of(target)
            if other != own and LAYERS[other] >= LAYERS[own]:
                wrong.append(f"{module} -> {target}")
    return sorted(wrong)


def cycles(graph):
    """Every import cycle, as a list of modules (depth-first search)."""
    found, state = [], {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                found.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_every_import_points_down():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_checker_catches_an_upward_import_and_a_cycle():
    graph = {"mdm.model.network": {"mdm.train.loop"}, "mdm.train.loop": {"mdm.model.network"}}
    assert upward_imports(graph) == ["mdm.model.network -> mdm.train.loop"]
    assert cycles(graph) == [["mdm.model.network", "mdm.train.loop", "mdm.model.network"]]
    assert upward_imports({"mdm.data.pipeline": {"mdm.model.mixture"}}) == [
        "mdm.data.pipeline -> mdm.model.mixture"]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= 420, f"{path} has grown past ~400 lines"
