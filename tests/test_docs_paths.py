"""Every repository file and scenario module the documentation names exists (review 3, finding 10:
target.md sent readers to a ``REVIEW.md`` that was not there).

The review pages under ``docs/reviews/`` are records of what was true when they were written, so
they are left out; every other page is checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if "reviews" not in p.parts and "_build" not in p.parts)

#: A backticked path into the repository (``scenarios/review/targets.py``), or a file at its root (``REVIEW.md``).
PATH = re.compile(r"`((?:harness|scenarios|tests|benchmarks|docs|\.ci)/[\w./-]*|[A-Z][A-Z_-]*\.md)[`:\s]")
#: A backticked scenario module or target spec (``scenarios.review.round2.targets:lease_ok``).
SPEC = re.compile(r"`(scenarios(?:\.\w+)+)(?::([\w.]+))?`")


def _module_file(dotted: str) -> Path | None:
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _names_something(dotted: str) -> bool:
    """A module, or an attribute defined in one (``scenarios.HARD_MODULES``)."""
    if _module_file(dotted) is not None:
        return True
    module, _, attr = dotted.rpartition(".")
    found = _module_file(module)
    return found is not None and re.search(rf"^{re.escape(attr)}\b", found.read_text(), re.M) is not None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_files_and_modules_a_page_names_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    dead = [m.group(1) for m in PATH.finditer(text) if "_build" not in m.group(1) and not (ROOT / m.group(1).rstrip("/.")).exists()]
    dead += [m.group(1) for m in SPEC.finditer(text) if not _names_something(m.group(1))]
    missing_targets = [
        m.group(0)
        for m in SPEC.finditer(text)
        if m.group(2) and (found := _module_file(m.group(1))) is not None
        and re.search(rf"^{re.escape(m.group(2).split('.')[0])}\s*[:=]|^def {re.escape(m.group(2).split('.')[0])}\b|^class {re.escape(m.group(2).split('.')[0])}\b", found.read_text(), re.M) is None
    ]
    assert dead == [] and missing_targets == [], (dead, missing_targets)


def test_the_check_catches_a_dead_reference() -> None:
    assert PATH.search("see `REVIEW.md` at the root") and not (ROOT / "REVIEW.md").exists()
    assert not _names_something("scenarios.review.round99.targets")
    assert _names_something("scenarios.review.round2.targets") and _names_something("scenarios.HARD_MODULES")
