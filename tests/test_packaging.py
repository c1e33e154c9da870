"""An installed copy of the package is typed: ``harness/py.typed`` is in the wheel (PEP 561).

Without the marker, mypy treats an installed ``harness`` as untyped and a
user's ``Target(limit="two")`` passes unchecked. The editable install the
tests run from reads the source tree, so only a built wheel shows what an
installation gets. (``.ci/run`` type-checks the package itself with mypy.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import harness

ROOT = Path(harness.__file__).parent.parent


def test_py_typed_is_package_data() -> None:
    assert (ROOT / "harness" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["harness"]


def test_every_package_in_the_tree_is_shipped() -> None:
    # The docs send readers to the review scenarios as worked examples (scenarios.review.round2.targets:...):
    # an installed copy must be able to import and read them, and a new package must not be left out.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("harness", "scenarios")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found == listed
    assert {"scenarios.review", "scenarios.review.round2", "scenarios.review.round3"} <= listed


@pytest.mark.slow  # builds the wheel, about 10 s (pip fetches setuptools for the isolated build)
def test_wheel_ships_py_typed(tmp_path: Path) -> None:
    # Built from a copy, so that setuptools' build/ directory is not left in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "harness_console.py"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("harness", "scenarios"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if built.returncode != 0 and "Could not find a version that satisfies the requirement setuptools" in built.stderr:
        pytest.skip("pip cannot fetch setuptools for an isolated build here (no package index)")
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "harness/py.typed" in names
    assert "harness/output/summary.schema.json" in names
    assert "scenarios/review/round2/targets.py" in names and "scenarios/review/targets.py" in names
    # The console script's entry point (it records stop signals before the package is imported).
    assert "harness_console.py" in names
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "harness = harness_console:console" in zipfile.ZipFile(wheel).read(entry_points).decode()
