"""The package's layers point one way: a module imports only from its own layer and the layers below it.

The order is the one each subpackage's docstring states. An import that
points up (the model reaching into the runner, a search module into the
HTML report) fails here, with the module, the line and the layer it may not
use; imports inside functions and under ``TYPE_CHECKING`` count too, since
they tie the layers together just the same.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).parent

#: Bottom to top; each layer may import from itself and the layers before it.
LAYERS = (
    "harness.errors",
    "harness.model",
    "harness.guard",
    "harness.run",
    "harness.invariants",
    "harness.store",
    "harness.search",
    "harness.output",
    "harness.cli",
    "harness.pytest",
)

#: Modules above every layer: the public re-exports and the entry points.
TOP = {"harness", "harness.__main__", "harness.cli.__main__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if module == layer or module.startswith(layer + "."):
            return rank
    raise AssertionError(f"{module} belongs to no layer; add it to a subpackage (see LAYERS in {__file__})")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; the package imports absolutely"
            if node.module == "harness":
                found += [(node.lineno, f"harness.{alias.name}") for alias in node.names]
            elif node.module and node.module.startswith("harness."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("harness.")]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_import_points_down_the_layers() -> None:
    wrong = []
    for path in _modules():
        module = _module_name(path)
        if module in TOP:
            continue
        rank = _layer(module)
        for line, imported in _imports(path):
            if imported == "harness.errors" or imported.startswith("harness.errors."):
                continue
            if _layer(imported) > rank:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({LAYERS[rank]}) imports {imported}")
    assert not wrong, "imports pointing up the layers:\n" + "\n".join(wrong)


def test_every_subpackage_says_what_it_owns_and_may_import() -> None:
    for layer in LAYERS[1:]:
        doc = importlib.import_module(layer).__doc__ or ""
        assert "May import" in doc or "may import" in doc, f"{layer}'s docstring does not say what it may import"


def test_the_layer_check_catches_an_import_pointing_up(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from harness.search.campaign import run_campaign\n")
    assert _imports(bad) == [(1, "harness.search.campaign")]
    assert _layer("harness.search.campaign") > _layer("harness.model.schedule")
