"""Coverage of the target's own code: exact numbers on a fixture with a branch no schedule takes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import CampaignConfig, load_target, run_campaign
from harness.output.report.coverage_probe import CoverageProbe, coverage_scope, target_source

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


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """A project with a component package, targets in a sub-package, and a top-level module, not yet imported."""
    names = ("proj", "proj.app", "proj.app.pool", "proj.app.targets", "proj.other", "loose")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    app = tmp_path / "proj" / "app"
    app.mkdir(parents=True)
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "proj" / "other.py").write_text("def unrelated(x):\n    if x:\n        return 1\n    return 2\n")
    (app / "__init__.py").write_text("")
    (app / "pool.py").write_text(
        "from twisted.internet import defer\n\n"
        "class Pool:\n    def __init__(self, clock):\n        self.sem = defer.DeferredSemaphore(2)\n\n"
        "    def submit(self, job):\n        return self.sem.run(job)\n"
    )
    (app / "targets.py").write_text("from harness import Target\nfrom proj.app.pool import Pool\n\nt = Target(build=Pool, limit=2)\n")
    (tmp_path / "loose.py").write_text("x = 1\n")
    yield tmp_path
    for name in names:
        sys.modules.pop(name, None)


def test_the_scope_is_the_package_holding_the_target_module_or_the_one_named(layout) -> None:
    app = layout / "proj" / "app"
    assert coverage_scope("proj.app.targets:t") == ("proj.app", [app])
    assert coverage_scope("proj.app:t") == ("proj.app", [app])  # a target in a package's __init__: that package
    assert coverage_scope("proj.other:t") == ("proj", [layout / "proj"])
    assert coverage_scope("loose:t") == ("loose", [layout / "loose.py"])  # a top-level module: that file
    assert coverage_scope("proj.app.targets:t", "proj") == ("proj", [layout / "proj"])
    assert coverage_scope("proj.app.targets:t", "proj.app.pool") == ("proj.app.pool", [app / "pool.py"])
    assert coverage_scope("proj.app.targets:t", "proj.nothing") is None
    assert coverage_scope("proj.app.targets:t", "../proj") is None
    # A module the folders do not show (made at import) falls back to its whole top-level package.
    assert coverage_scope("proj.made_at_import:t") == ("proj", [layout / "proj"])
    assert "proj" not in sys.modules  # nothing was imported


def test_the_probe_measures_the_targets_own_package_not_its_neighbours(layout, tmp_path) -> None:
    probe = CoverageProbe("proj.app.targets:t")
    with probe:
        run_campaign(load_target("proj.app.targets:t"), "proj.app.targets:t", CampaignConfig(seed=1, max_examples=5, report_dir=str(tmp_path / "r")))
    report = probe.report()
    assert report["scope"] == "proj.app" and report["kind"] == "package"
    # Paths from the folder holding the top-level package, as for a whole top-level package.
    assert [f["file"] for f in report["files"]] == ["proj/app/__init__.py", "proj/app/pool.py", "proj/app/targets.py"]
    wide = CoverageProbe("proj.app.targets:t", "proj")
    assert wide.name == "proj" and wide.paths == [layout / "proj"]


def test_the_branch_total_is_the_packages_own_count_not_a_cap(tmp_path, monkeypatch) -> None:
    # Review 3 saw 1,000 branches twice: that was the static count of scenarios/ then (4,728 lines,
    # 1,000 branches at 94dd705), not a limit. A package with 1,200 branches reports 1,200.
    monkeypatch.syspath_prepend(str(tmp_path))
    package = tmp_path / "many_branches_fix3b"
    package.mkdir()
    (package / "__init__.py").write_text("")
    body = "".join(f"    if x == {i}:\n        x += 1\n" for i in range(300))
    for name in ("a", "b"):
        (package / f"{name}.py").write_text(f"def f(x):\n{body}    return x\n")
    probe = CoverageProbe("many_branches_fix3b.a:t", "many_branches_fix3b")
    with probe:
        import many_branches_fix3b.a as a

        a.f(0)
    sys.modules.pop("many_branches_fix3b", None)
    sys.modules.pop("many_branches_fix3b.a", None)
    report = probe.report()
    assert report["branches"]["total"] == 1_200 and report["lines"]["total"] == 2 * (300 * 2 + 2)
    assert report["branches"]["covered"] == 300  # f(0) takes every test's true branch (x counts up), no false one
