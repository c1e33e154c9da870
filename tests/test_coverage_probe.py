"""Coverage of the target's own code: exact numbers on a fixture with a branch no schedule takes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import CampaignConfig, load_target, run_campaign
from harness.output.report.coverage_probe import CoverageProbe, target_source

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPEC = "covered_pool:target"


def marker_line(text: str) -> int:
    lines = (FIXTURES / "covered_pool.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if f"# marker: {text}" in line)


@pytest.fixture
def fresh_fixture(monkeypatch):
    """The fixture module importable and not yet imported, so the probe sees its import."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    sys.modules.pop("covered_pool", None)
    yield
    sys.modules.pop("covered_pool", None)


def test_target_source_is_the_top_level_package_or_module(fresh_fixture) -> None:
    name, paths = target_source("scenarios.pools:semaphore_pool")
    assert name == "scenarios" and paths == [Path(__import__("scenarios").__file__).resolve().parent]
    assert target_source(SPEC) == ("covered_pool", [FIXTURES / "covered_pool.py"])
    assert target_source("no_such_module_anywhere:x") is None
    assert "covered_pool" not in sys.modules  # finding the source imports nothing


def test_probe_reports_the_branch_no_schedule_takes(fresh_fixture, tmp_path) -> None:
    probe = CoverageProbe(SPEC)
    with probe:
        target = load_target(SPEC)
        run_campaign(target, SPEC, CampaignConfig(seed=1, max_examples=25, report_dir=str(tmp_path)))
    report = probe.report()
    assert report["scope"] == "covered_pool" and report["kind"] == "module" and report["note"] is None
    (only,) = report["files"]
    guard, never = marker_line("never-taken branch"), marker_line("never-run line")
    assert only["file"] == "covered_pool.py"
    assert only["missing_lines"] == [never]
    assert only["missing_branches"] == [[guard, never]]
    assert (only["branches"], only["covered_branches"]) == (2, 1)
    assert only["covered_lines"] == only["statements"] - 1
    assert report["lines"] == {
        "covered": only["statements"] - 1,
        "total": only["statements"],
        "percent": round(100 * (only["statements"] - 1) / only["statements"], 1),
    }
    assert report["branches"] == {"covered": 1, "total": 2, "percent": 50.0}
    combined = 100 * (only["statements"] - 1 + 1) / (only["statements"] + 2)
    assert report["percent"] == round(combined, 1) == only["percent"]


def test_a_package_already_imported_is_measured_with_a_note(tmp_path) -> None:
    import scenarios.pools  # noqa: F401  (imported before the probe starts, as in a test suite)
    from scenarios.pools import semaphore_pool

    probe = CoverageProbe("scenarios.pools:semaphore_pool")
    with probe:
        run_campaign(
            semaphore_pool, "scenarios.pools:semaphore_pool", CampaignConfig(seed=1, max_examples=10, report_dir=str(tmp_path))
        )
    report = probe.report()
    assert report["scope"] == "scenarios" and report["kind"] == "package"
    files = {f["file"]: f for f in report["files"]}
    assert "scenarios/pools.py" in files and "scenarios/__init__.py" in files
    pools = files["scenarios/pools.py"]
    # The semaphore pool ran; the double-release pool, in the same file, never did.
    source = (Path(scenarios.pools.__file__)).read_text().splitlines()
    release = next(n for n, line in enumerate(source, 1) if "def _release" in line)
    assert release + 1 in pools["missing_lines"]
    assert "scenarios.pools" in report["note"] and "import" in report["note"]


def test_a_probe_for_an_unknown_target_measures_nothing() -> None:
    probe = CoverageProbe("no_such_module_anywhere:x")
    with probe:
        pass
    assert probe.report() is None


def test_the_probe_hands_the_tracer_back(fresh_fixture, tmp_path) -> None:
    before = sys.gettrace()
    with CoverageProbe(SPEC):
        assert sys.gettrace() is not None
    assert sys.gettrace() is before
