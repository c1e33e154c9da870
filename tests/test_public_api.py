"""The public API: ``harness.__all__`` is what docs/api.md documents, every name imports, and the names
dropped from it still import with a DeprecationWarning."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import harness

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
DIRECTIVE = re.compile(r"^\.\. auto(?:class|function|exception|data):: (harness(?:\.[A-Za-z_]\w*)+)", re.M)


def _documented() -> tuple[set[str], set[str]]:
    """The public names docs/api.md documents (``harness.X``, or ``harness.mod.X`` for the object
    ``harness.X`` is), and every top-level ``harness.X`` it names."""
    public, top = set(), set()
    for path in DIRECTIVE.findall(API_PAGE.read_text()):
        parts = path.split(".")
        if len(parts) == 2:
            top.add(parts[1])
        module = __import__(".".join(parts[:-1]), fromlist=[parts[-1]])
        obj = getattr(module, parts[-1])
        if parts[-1] in harness.__all__ and getattr(harness, parts[-1]) is obj:
            public.add(parts[-1])
    return public, top


def test_all_and_the_api_page_agree() -> None:
    public, top = _documented()
    assert sorted(set(harness.__all__) - public) == [], "public but not in docs/api.md"
    assert sorted(top - set(harness.__all__)) == [], "documented as harness.X but not in __all__"
    assert len(harness.__all__) == len(set(harness.__all__))


def test_every_public_name_imports_and_what_users_need_is_there() -> None:
    for name in harness.__all__:
        assert getattr(harness, name) is not None
    # What a target, an invariant and a pytest property are written with (docs/tutorial.md, scenarios/).
    for name in ("Target", "Menu", "Operation", "Schedule", "Submit", "Start", "ScheduleError", "JobSpec",
                 "schedules", "run_schedule", "check", "Invariant", "Violation", "Run", "RunView", "format_ms"):
        assert name in harness.__all__, name


@pytest.mark.parametrize("name", sorted(harness._DEPRECATED))
def test_a_name_dropped_from_the_api_still_imports_with_a_deprecation_warning(name) -> None:
    assert name not in harness.__all__
    module, _ = harness._DEPRECATED[name]
    with pytest.warns(DeprecationWarning, match=f"harness.{name} is no longer public.*{module}"):
        value = getattr(harness, name)
    assert value is getattr(__import__(module, fromlist=[name]), name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        harness.Nope  # noqa: B018


def test_importing_harness_warns_about_nothing() -> None:
    code = "import warnings; warnings.simplefilter('error'); import harness; from harness import *"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_scenarios_use_only_public_names() -> None:
    scenarios = Path(__file__).resolve().parent.parent / "scenarios"
    for path in scenarios.glob("*.py"):
        for group in re.findall(r"^from harness import \(?([^)\n]*(?:\n[^)\n]*)*?)\)?$", path.read_text(), re.M):
            for name in re.split(r"[,\s]+", group.strip()):
                if name:
                    assert name in harness.__all__, (path.name, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import scenarios  # noqa: F401
