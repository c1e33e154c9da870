"""The HTML report: a self-contained page with the campaign, each failure's timeline, what was exercised, coverage."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from harness import CampaignConfig, check, run_campaign, run_schedule
from harness.store.failure_file import FailureRecord, save
from harness.output.report import Tally, load_inputs, render_report, view_of_finding
from harness.output.report.page import branch_list, line_ranges
from harness.errors import FailureFileError
from harness.output.summary import schema, summarize
from scenarios.pools import double_release_pool

from test_svg_timeline import KNOWN

BUGGY = "scenarios.pools:double_release_pool"


class Page(HTMLParser):
    """The parts of a page the tests look at: every start tag with its attributes, and the text by element id."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self._stack: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(v in a.get(k.rstrip("_"), "").split() or a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


def known_record(tmp_path: Path) -> tuple[FailureRecord, Path]:
    run = run_schedule(double_release_pool, KNOWN)
    (violation,) = [v for v in check(run) if v.invariant == "concurrency.limit"]
    record = FailureRecord(
        target=BUGGY,
        schedule=KNOWN,
        invariant=violation.invariant,
        message=violation.message,
        trace_hash=run.trace.digest(),
        seed=7,
        trace=tuple(run.trace),
        marked=violation.events,
    )
    return record, save(record, tmp_path / "failures")


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A failing campaign with its summary, tally and findings, as 'harness fuzz --html' has them."""
    folder = tmp_path_factory.mktemp("reports")
    config = CampaignConfig(seed=2, report_dir=str(folder))
    tally = Tally.for_target(double_release_pool)
    result = run_campaign(double_release_pool, BUGGY, config, on_run=tally)
    coverage = {
        "scope": "scenarios",
        "kind": "package",
        "percent": 80.0,
        "lines": {"covered": 8, "total": 10, "percent": 80.0},
        "branches": {"covered": 1, "total": 2, "percent": 50.0},
        "files": [
            {
                "file": "scenarios/pools.py",
                "statements": 10,
                "covered_lines": 8,
                "missing_lines": [12, 13, 20],
                "branches": 2,
                "covered_branches": 1,
                "missing_branches": [[11, 12], [19, -18]],
                "percent": 75.0,
            }
        ],
        "note": None,
    }
    summary = json.loads(json.dumps(summarize(result, config, exercised=tally.to_json(), coverage=coverage)))
    return result, summary, folder


def test_the_summary_with_exercise_and_coverage_matches_the_schema(campaign) -> None:
    _, summary, _ = campaign
    jsonschema.validate(summary, schema(), cls=jsonschema.Draft202012Validator)
    assert summary["exercised"]["examples"] == summary["examples"]
    assert summary["exercised"]["invariants"]["concurrency.limit"] > 0


def test_the_page_is_self_contained(campaign) -> None:
    result, summary, _ = campaign
    text = render_report(summary, [view_of_finding(f) for f in result.findings])
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>")
    assert not page.find("script") and not page.find("link") and not page.find("img") and not page.find("iframe")
    for _, attrs in page.tags:
        for key in ("src", "href", "action"):
            assert not attrs.get(key) or attrs[key].startswith("#"), attrs
    assert "url(" not in text and "@import" not in text
    assert len(page.find("style")) == 1
    assert page.find("meta", charset="utf-8")


def test_the_page_has_each_section(campaign) -> None:
    result, summary, _ = campaign
    page = Page(render_report(summary, [view_of_finding(f) for f in result.findings]))
    ids = [a["id"] for _, a in page.tags if "id" in a]
    for section in ("campaign", "failures", "invariants", "faults", "coverage"):
        assert section in ids
    text = page.all_text
    for figure in (BUGGY, str(summary["seed"]), f"{summary['examples']:,}", "max-failures"):
        assert figure in text


def test_each_failure_has_its_timeline_message_and_replay_command_beside_it(campaign) -> None:
    result, summary, _ = campaign
    views = [view_of_finding(f) for f in result.findings]
    text = render_report(summary, views)
    page = Page(text)
    (article,) = page.find("article", class_="failure")
    assert article["data-invariant"] == "concurrency.limit"
    assert len(page.find("svg", class_="timeline")) == 1
    finding = result.findings[0]
    assert f"harness replay {finding.path}" in page.all_text
    assert finding.violation.message in page.all_text
    # The SVG and the facts are siblings in one flex row: the message beside the picture.
    body = text[text.index('<div class="failure-body">') :]
    assert body.index('<div class="figure"><svg') < body.index('<aside class="facts">') < body.index("</article>")
    assert len(page.find("g", class_="violating")) == len(finding.violation.events)


def test_invariants_table_counts_and_flags_what_was_never_exercised(campaign) -> None:
    _, summary, _ = campaign
    page = Page(render_report(summary, []))
    rows = {a["data-invariant"] for a in page.find("tr") if "data-invariant" in a}
    assert rows == set(summary["exercised"]["invariants"])
    never = [name for name, count in summary["exercised"]["invariants"].items() if count == 0]
    assert len(page.find("tr", class_="zero")) >= len(never)
    assert "broken" in page.all_text and "held" in page.all_text


def test_faults_table_lists_every_fault_with_its_count(campaign) -> None:
    _, summary, _ = campaign
    page = Page(render_report(summary, []))
    faults = {a["data-fault"] for a in page.find("tr") if "data-fault" in a}
    assert faults == set(summary["exercised"]["faults"])
    assert "a job fails with ValueError" in page.all_text


def test_coverage_lists_uncovered_lines_and_branches_by_file(campaign) -> None:
    _, summary, _ = campaign
    page = Page(render_report(summary, []))
    assert page.find("tr", **{"data-file": "scenarios/pools.py"})
    assert "12-13, 20" in page.all_text and "11->12, 19->exit" in page.all_text
    assert "80.0%" in page.all_text and "50.0%" in page.all_text


def test_without_coverage_the_page_says_how_to_get_it(campaign) -> None:
    _, summary, _ = campaign
    page = Page(render_report({**summary, "coverage": None}, []))
    assert "Not measured" in page.all_text and "--coverage" in page.all_text


def test_range_helpers() -> None:
    assert line_ranges([9, 3, 4, 5, 11]) == "3-5, 9, 11"
    assert line_ranges([]) == ""
    assert branch_list([[3, 5], [7, -2]]) == "3->5, 7->exit"


# -- building from files ('harness report') ------------------------------------------------------


def test_failure_files_alone_make_a_page_without_a_campaign(tmp_path) -> None:
    record, path = known_record(tmp_path)
    summary, views, notes = load_inputs([str(path)])
    assert summary is None and notes == [] and len(views) == 1
    assert views[0].events == record.trace and views[0].marked == record.marked
    page = Page(render_report(summary, views))
    assert "No campaign summary was given" in page.all_text
    assert len(page.find("svg", class_="timeline")) == 1
    assert not page.find("section", id="coverage")


def _failure_entry(invariant: str, file: str) -> dict:
    return {"invariant": invariant, "family": invariant.split(".")[0], "message": "m", "file": file,
            "source": "fuzz", "shrunk": True, "operations": 1, "replay": None, "regression_file": None}


def minimal_summary(failures: list) -> dict:
    """The smallest summary a report accepts: the keys every version wrote, checked against the schema."""
    return {
        "format": "harness-summary",
        "version": 1,
        "target": BUGGY,
        "seed": 1,
        "outcome": "failed" if failures else "clean",
        "stopped_by": "max-failures",
        "examples": 1,
        "shrink_runs": 0,
        "elapsed_seconds": 0.1,
        "limits": {"max_examples": None, "budget_seconds": None, "max_failures": 1},
        "database": None,
        "regressions": {"directory": None, "replayed": 0, "failing": 0, "fixed": 0, "files": []},
        "failures": failures,
    }


def test_a_summary_brings_its_failures_once_and_notes_missing_ones(tmp_path) -> None:
    record, path = known_record(tmp_path)
    summary = minimal_summary([_failure_entry(record.invariant, str(path)), _failure_entry("errors.poison", str(tmp_path / "gone.json"))])
    summary_path = tmp_path / "summary.json"
    summary_path.write_text(json.dumps(summary))
    loaded, views, notes = load_inputs([str(summary_path), str(path)])
    assert loaded == summary and len(views) == 1 and views[0].file == str(path)
    assert len(notes) == 1 and "gone.json" in notes[0]


def test_two_summaries_or_a_foreign_file_are_refused(tmp_path) -> None:
    first = tmp_path / "a.json"
    first.write_text(json.dumps(minimal_summary([])))
    with pytest.raises(FailureFileError, match="only one campaign summary"):
        load_inputs([str(first), str(first)])
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(FailureFileError, match="not a harness failure file"):
        load_inputs([str(other)])
    with pytest.raises(FailureFileError, match="not valid JSON"):
        (tmp_path / "broken.json").write_text("{")
        load_inputs([str(tmp_path / "broken.json")])


def test_each_failure_says_how_far_the_search_got_before_it_was_first_seen(campaign, tmp_path) -> None:
    result, summary, _ = campaign
    (finding,) = result.findings
    (failure,) = summary["failures"]
    detected = failure["detected"]
    assert detected["examples"] == finding.examples_to_detect and 1 <= detected["examples"] <= result.examples
    assert 0 <= detected["search_seconds"] <= result.elapsed_s and detected["shrink_seconds"] > 0
    text = Page(render_report(summary, [view_of_finding(finding)])).all_text
    assert f"{detected['examples']} examples" in text and "s of search" in text
    # The same line from the summary alone, and none from a summary written before the field existed.
    summary_path = tmp_path / "summary.json"
    summary_path.write_text(json.dumps(summary))
    _, views, _ = load_inputs([str(summary_path)])
    assert views[0].detected == (detected["examples"], detected["search_seconds"])
    old = {**summary, "failures": [{k: v for k, v in failure.items() if k != "detected"}]}
    jsonschema.validate(old, schema(), cls=jsonschema.Draft202012Validator)
    summary_path.write_text(json.dumps(old))
    _, views, _ = load_inputs([str(summary_path)])
    assert views[0].detected is None and "s of search" not in Page(render_report(old, views)).all_text


def never_judged(run) -> bool:
    """Returns False every time: the runs never give it anything to judge."""
    return False


def judges_cancels(run) -> bool | None:
    """Judges only the runs with a cancel in them."""
    from harness.model.trace import EventKind

    if not any(event.kind == EventKind.CANCEL for event in run.trace.events):
        return False
    return None


def judges_all(run) -> None:
    """Judges every run (returns None, as most invariants do)."""


from harness import Target  # noqa: E402  (beside the functions it uses)
from scenarios.pools import SemaphorePool  # noqa: E402

judging = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, invariants=(never_judged, judges_cancels, judges_all))


def test_each_user_invariant_has_its_row_with_the_examples_it_judged(tmp_path) -> None:
    tally = Tally.for_target(judging)
    assert [name for name in tally.invariants if name.startswith("user")] == ["user.never_judged", "user.judges_cancels", "user.judges_all"]
    config = CampaignConfig(seed=3, max_examples=60, report_dir=str(tmp_path))
    result = run_campaign(judging, "test_html_report:judging", config, on_run=tally)
    assert result.findings == [] and result.examples == 60
    counts = tally.invariants
    assert counts["user.never_judged"] == 0 and counts["user.judges_all"] == 60
    assert counts["user.judges_cancels"] == tally.faults["cancel"] and 0 < counts["user.judges_cancels"] < 60
    summary = json.loads(json.dumps(summarize(result, config, exercised=tally.to_json())))
    jsonschema.validate(summary, schema(), cls=jsonschema.Draft202012Validator)
    text = render_report(summary, [])
    rows = {name: text.split(f'data-invariant="{name}"', 1)[1].split("</tr>", 1)[0] for name in counts if name.startswith("user.")}
    assert "never exercised" in rows["user.never_judged"] and ">0<" in rows["user.never_judged"]
    assert "held" in rows["user.judges_all"] and ">60<" in rows["user.judges_all"]
    assert "held" in rows["user.judges_cancels"] and "did not return False" in rows["user.judges_cancels"]
    assert 'data-invariant="user"' not in text
