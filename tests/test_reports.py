"""What CI reads: the JSON summary against its schema and its reference page, the JUnit XML, the progress line."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from harness import CampaignConfig, Target, run_campaign
from harness.invariants.families import family_of, ordered
from harness.output.junit import junit_xml
from harness.output.progress import Progress
from harness.output.summary import schema, summarize
from scenarios.pools import SemaphorePool, double_release_pool, semaphore_pool

BUGGY = "scenarios.pools:double_release_pool"
CORRECT = "scenarios.pools:semaphore_pool"
SUMMARY_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "summary.md"

#: The correct pool without its promise: no built-in invariant applies to it.
unpromised_pool = Target(build=lambda clock: SemaphorePool(clock, 2), description="no promises")


@pytest.fixture(scope="module")
def failed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    config = CampaignConfig(seed=2, report_dir=str(folder))
    return run_campaign(double_release_pool, BUGGY, config), config


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    config = CampaignConfig(seed=1, max_examples=20, report_dir=str(tmp_path_factory.mktemp("reports")))
    return run_campaign(semaphore_pool, CORRECT, config), config


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("which", ["failed", "clean"])
def test_summary_matches_the_schema(which, request) -> None:
    result, config = request.getfixturevalue(which)
    summary = json.loads(json.dumps(summarize(result, config)))  # exactly what --json writes
    jsonschema.validate(summary, schema(), cls=jsonschema.Draft202012Validator)
    for key in ("target", "seed", "examples", "elapsed_seconds", "examples_per_second", "failures"):
        assert key in summary
    if which == "failed":
        (failure,) = summary["failures"]
        assert failure["invariant"] == "concurrency.limit" and failure["message"] and Path(failure["file"]).exists()
        assert summary["exit_code"] == 1
    else:
        assert summary["failures"] == [] and summary["exit_code"] == 0


def test_schema_rejects_a_summary_missing_a_key(clean) -> None:
    summary = summarize(*clean)
    del summary["seed"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(summary, schema(), cls=jsonschema.Draft202012Validator)


def test_the_summary_page_documents_every_summary_key() -> None:
    section = SUMMARY_PAGE.read_text()
    documented = set(re.findall(r"^\| `([a-z_.\[\]]+)`", section, flags=re.MULTILINE))

    def keys(node: dict, prefix: str = "") -> set[str]:
        found = set()
        for name, sub in node.get("properties", {}).items():
            found.add(prefix + name)
            if "properties" in sub:
                found |= keys(sub, f"{prefix}{name}.")
            if "properties" in sub.get("items", {}):
                found |= keys(sub["items"], f"{prefix}{name}[].")
        return found

    assert keys(schema()) <= documented, keys(schema()) - documented


def test_junit_has_one_testcase_per_family_and_the_failure_message(failed) -> None:
    result, _ = failed
    root = ET.fromstring(junit_xml(result, double_release_pool))
    assert root.tag == "testsuites" and root.get("failures") == "1"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ordered({c.get("name") for c in cases})
    concurrency = next(c for c in cases if c.get("name") == "concurrency")
    failure = concurrency.find("failure")
    assert failure is not None and failure.get("type") == "concurrency.limit"
    assert failure.get("message").startswith("concurrency.limit: 3 jobs running")
    assert "replay: harness replay " in failure.text
    assert int(suite.get("tests")) == len(cases)
    assert {p.get("name"): p.get("value") for p in suite.find("properties")}["seed"] == "2"


def test_junit_passes_applicable_families_and_skips_the_rest(clean) -> None:
    result, _ = clean
    passing = ET.fromstring(junit_xml(result, semaphore_pool)).find("testsuite/testcase[@name='concurrency']")
    assert passing.find("failure") is None and passing.find("skipped") is None
    skipped = ET.fromstring(junit_xml(result, unpromised_pool)).find("testsuite/testcase[@name='concurrency']")
    assert "no concurrency invariant applies" in skipped.find("skipped").get("message")


def test_junit_file_from_the_cli_parses(tmp_path, monkeypatch) -> None:
    from harness.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["fuzz", CORRECT, "--seed", "1", "--max-examples", "10", "--junit", "out/junit.xml"]) == 0
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert root.find("testsuite").get("failures") == "0"


def test_families_are_named_before_the_dot_and_ordered() -> None:
    assert family_of("concurrency.limit") == "concurrency"
    assert ordered(["leaks", "user", "mine", "concurrency", "time"]) == ["concurrency", "time", "leaks", "user", "mine"]


# -- progress ------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_redraws_in_place_a_few_times_a_second_on_a_terminal(clean) -> None:
    result, _ = clean
    stream, clock = io.StringIO(), _Clock()
    progress = Progress(stream, live=True, clock=clock)
    for step in range(100):  # 100 examples over 2 seconds
        clock.now = step * 0.02
        progress(result)
    text = stream.getvalue()
    assert 5 <= text.count("\r") <= 12 and "\n" not in text
    assert re.search(r"harness: 20 examples, \d+/s, 1\.\ds, 0 failures", text)
    progress.clear()
    assert stream.getvalue().endswith("\r")


def test_progress_is_quiet_when_not_a_terminal(clean) -> None:
    result, _ = clean
    stream, clock = io.StringIO(), _Clock()
    progress = Progress(stream, clock=clock)  # StringIO is not a TTY
    for step in range(1000):
        clock.now = step * 0.05  # 50 seconds
        progress(result)
    assert stream.getvalue() == ""
    clock.now = 61.0
    progress(result)
    assert stream.getvalue().count("\n") == 1  # one heartbeat a minute for CI logs
