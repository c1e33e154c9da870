"""The report options as a user runs them: fuzz --html, --coverage/--no-coverage, harness report FILE..."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.cli.main import main

from test_coverage_probe import FIXTURES, marker_line
from test_html_report import Page

TIGHT = "covered_pool:tight"  # fails within a few examples
GUARDED = "covered_pool:target"  # passes


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh current directory, with the fixture module importable and not yet imported."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(FIXTURES))
    sys.modules.pop("covered_pool", None)
    yield tmp_path
    sys.modules.pop("covered_pool", None)


def _fuzz(*args: str) -> int:
    return main(["fuzz", *args, "--seed", "1", "--max-examples", "30", "--no-regressions"])


def test_fuzz_html_writes_the_report_with_timeline_and_coverage(workdir, capsys) -> None:
    assert _fuzz(TIGHT, "--html", "--report-dir", "out") == 1
    out = capsys.readouterr().out
    report = workdir / "out" / "report.html"
    assert f"html: {Path('out') / 'report.html'}" in out
    assert "coverage of covered_pool: " in out  # on by default with --html
    page = Page(report.read_text())
    (article,) = page.find("article", class_="failure")
    assert article["data-invariant"] == "concurrency.limit"
    assert len(page.find("svg", class_="timeline")) == 1
    assert page.find("tr", **{"data-file": "covered_pool.py"})
    (saved,) = (workdir / "out" / "failures").glob("*.json")
    assert f"harness replay {Path('out') / 'failures' / saved.name}" in page.all_text


def test_html_without_coverage(workdir, capsys) -> None:
    assert _fuzz(GUARDED, "--html", "--no-coverage") == 0
    out = capsys.readouterr().out
    assert "coverage of" not in out
    page = Page((workdir / "reports" / "report.html").read_text())
    assert "Not measured" in page.all_text and not page.find("article", class_="failure")
    assert "No invariant was violated." in page.all_text


def test_coverage_goes_into_the_json_summary(workdir, capsys) -> None:
    assert _fuzz(GUARDED, "--coverage", "--json", "summary.json") == 0
    summary = json.loads((workdir / "summary.json").read_text())
    (only,) = summary["coverage"]["files"]
    assert only["missing_lines"] == [marker_line("never-run line")]
    assert summary["coverage"]["branches"] == {"covered": 1, "total": 2, "percent": 50.0}
    assert summary["exercised"]["examples"] == summary["examples"] == 30
    assert not (workdir / "reports" / "report.html").exists()  # no --html, no page


def test_by_default_no_coverage_but_the_exercise_counts(workdir, capsys) -> None:
    assert _fuzz(GUARDED, "--json", "summary.json") == 0
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["coverage"] is None
    assert summary["exercised"]["invariants"]["concurrency.limit"] >= 0
    assert set(summary["exercised"]["invariants"]) >= {"concurrency.limit", "completion.deadline"}


def test_report_from_summary_and_failure_files(workdir, capsys) -> None:
    assert _fuzz(TIGHT, "--coverage", "--json", "summary.json") == 1
    capsys.readouterr()
    (saved,) = (workdir / "reports" / "failures").glob("*.json")
    assert main(["report", "summary.json"]) == 0
    assert "html: reports/report.html" in capsys.readouterr().out
    page = Page((workdir / "reports" / "report.html").read_text())
    assert len(page.find("svg", class_="timeline")) == 1
    assert page.find("tr", **{"data-file": "covered_pool.py"})
    assert main(["report", str(saved), "-o", "only-failure.html"]) == 0
    page = Page((workdir / "only-failure.html").read_text())
    assert "No campaign summary was given" in page.all_text and len(page.find("svg", class_="timeline")) == 1


def test_report_refuses_what_it_cannot_read(workdir, capsys) -> None:
    (workdir / "x.json").write_text('{"format": "something-else"}')
    assert main(["report", "x.json"]) == 2
    assert "harness: error:" in capsys.readouterr().err
    assert main(["report", "missing.json"]) == 2


def test_help_states_the_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["fuzz", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--html" in text and "--coverage, --no-coverage" in text and "default: on with --html, else off" in text


def test_coverage_package_names_what_is_measured_and_implies_coverage(workdir, capsys) -> None:
    # The fixture module is top-level; name it explicitly, and name a package of the repository instead.
    assert _fuzz(GUARDED, "--coverage-package", "covered_pool", "--json", "summary.json") == 0
    assert "coverage of covered_pool: " in capsys.readouterr().out
    assert json.loads((workdir / "summary.json").read_text())["coverage"]["scope"] == "covered_pool"
    assert _fuzz(GUARDED, "--coverage-package", "harness.model", "--json", "summary.json") == 0
    coverage = json.loads((workdir / "summary.json").read_text())["coverage"]
    assert coverage["scope"] == "harness.model" and coverage["kind"] == "package"
    assert {f["file"] for f in coverage["files"]} >= {"harness/model/target.py", "harness/model/menu.py"}
    assert not any(f["file"].startswith("harness/run/") for f in coverage["files"])


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--coverage-package", "no_such_package_anywhere"], "--coverage-package 'no_such_package_anywhere' names no package or module"),
        (["--coverage-package", "covered_pool", "--no-coverage"], "--coverage-package says which package --coverage measures; drop --no-coverage"),
    ],
)
def test_coverage_package_refusals_are_one_line(extra, said, workdir, capsys) -> None:
    assert _fuzz(GUARDED, *extra) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
