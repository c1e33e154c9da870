"""Fixes of the sixth outside-user review's findings 3 to 6 (docs/reviews/outside-user-6.md).

3. ``concurrency.key_limit`` / ``concurrency.limit``: a job that overlaps its own earlier attempt is
   named by attempt ("job 0 attempt 1 started at 50ms while its attempt 0 (started at 0ms) still
   ran"), never "job 0 started while  still ran", and the count says executions, not jobs.
4. The docs do not promise that ``callLater`` delays run on monotonic time on a real reactor.
5. JUnit does not say an invariant held over more examples than exercised it: each has its count
   (the HTML report already gave counts; the CLI's closing lines claim none).
6. pytest says ``saved:`` only for a failure file it wrote, never for a regression file it read.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Callable
from xml.etree import ElementTree as ET

import pytest
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import JobSpec, Schedule, Stop, Submit, Target, check, load_target, run_schedule


# -- finding 3 ---------------------------------------------------------------------------------


class HastyRetry:
    """Calls a job again 50 ms after its first call whether or not that call still runs: a retry
    (or an undeclared hedge) beside itself. One job at a time is the promise (limit=1)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        first = defer.maybeDeferred(job)
        self.clock.callLater(0.05, lambda: defer.maybeDeferred(job).addErrback(lambda _: None))
        return first


def _messages(target: Target, *ops) -> dict[str, str]:
    return {v.invariant: v.message for v in check(run_schedule(target, Schedule(ops=tuple(ops))))}


def test_limit_names_the_attempt_a_job_overlaps() -> None:
    """The limit's list of the others was empty when the only other running attempt was the job's own."""
    target = Target(build=HastyRetry, limit=1, retries=1, description="calls a job again beside itself")
    message = _messages(target, Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=200)))["concurrency.limit"]
    assert message == (
        "2 executions running at 50ms but the limit is 1: job 0 attempt 1 started at 50ms while its attempt 0 "
        "(started at 0ms) still ran"
    )


def test_key_limit_names_the_attempt_a_job_overlaps() -> None:
    """The review's specimen: the flusher's retry calls a write of key 0 again while its first call runs."""
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=210)),
           Submit(at_ms=0, job=1, spec=JobSpec(kind="fail", after_ms=0), key=1),
           Stop(at_ms=0))
    messages = _messages(load_target("scenarios.review.round6.targets:flush_gather_sink"), *ops)
    assert messages["concurrency.key_limit"] == (
        "2 executions of key 0 running at 50ms but the key limit is 1: job 0 attempt 1 started at 50ms while its "
        "attempt 0 (started at 0ms) still ran"
    )
    # Another job's two attempts are named once, with their numbers (it said "job 0, job 0").
    assert messages["concurrency.limit"] == (
        "3 executions running at 50ms but the limit is 2: job 1 started while job 0's attempts 0 and 1 still ran"
    )


def test_distinct_jobs_keep_the_old_message() -> None:
    """Jobs that each run once over the limit read as before (README and docs quote this form)."""
    from scenarios.pools import double_release_pool

    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 20)), Submit(0, 1, JobSpec("fail", 10)),
                         Submit(0, 2, JobSpec("succeed", 10)), Submit(0, 3, JobSpec("succeed", 10))))
    [violation] = check(run_schedule(double_release_pool, schedule))
    assert violation.message == "3 jobs running at 10ms but the limit is 2: job 3 started while job 0, job 2 still ran"


# -- finding 4 ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _user_docs() -> dict[str, str]:
    """README and every docs page but the review pages (which quote what the docs once said)."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return {str(p.relative_to(ROOT)): " ".join(p.read_text().split()) for p in pages if "reviews" not in p.parts}


def test_no_page_promises_monotonic_timers_on_a_real_reactor() -> None:
    promises = re.compile(r"monotonic[^.]{0,80}\bas on (a real|the real|twisted's) reactor", re.IGNORECASE)
    assert [page for page, text in _user_docs().items() if promises.search(text)] == []


def test_the_timer_advice_says_what_twisteds_reactors_do() -> None:
    """target.md's advice and concepts.md's design choice both say a jump moves Twisted's own timers,
    and that the harness does not inject it."""
    docs = _user_docs()
    for page in ("docs/reference/target.md", "docs/concepts.md"):
        text = docs[page]
        assert re.search(r"Twisted's own reactors.{0,200}`seconds\(\)` is `time\.time`", text), page
        assert re.search(r"a jump moves (the|their) timers too", text), page
        assert re.search(r"does not inject (it|that)", text), page


def test_twisted_reactor_timers_follow_the_wall_clock() -> None:
    """The fact the docs now state: a reactor's DelayedCall is due at seconds() + delay, and seconds()
    is time.time, so a forward jump fires a pending timer at once and a backward one holds it back."""
    from twisted.internet.base import ReactorBase
    from twisted.internet.selectreactor import SelectReactor

    assert ReactorBase.seconds is time.time
    reactor = SelectReactor()
    try:
        now = [1000.0]
        reactor.seconds = lambda: now[0]  # type: ignore[method-assign]
        fired: list[str] = []
        reactor.callLater(1.0, fired.append, "early")
        now[0] += 0.5 + 5.0  # half a second passes, then the wall clock jumps 5 s forward
        reactor.runUntilCurrent()
        assert fired == ["early"]  # due at 1001.0, fired at 0.5 s
        reactor.callLater(1.0, fired.append, "late")
        now[0] -= 10.0  # a jump back of 10 s
        now[0] += 1.5
        reactor.runUntilCurrent()
        assert fired == ["early"]  # 1.5 s later it still waits the jump out
    finally:
        reactor.removeAll()
        for call in reactor.getDelayedCalls():
            call.cancel()
        reactor.waker.connectionLost(None)


# -- finding 5 ---------------------------------------------------------------------------------


def _summary(exercised: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "target": "pkg:pool", "seed": 1, "examples": 1588, "stopped_by": "budget", "error": None,
        "elapsed_seconds": 20.0, "failures": [], "regressions": {"files": []}, "workers": [],
        "invariants": ["concurrency.limit", "errors.propagate", "errors.poison", "user"],
        "exercised": exercised,
    }


def _outs(xml: str) -> dict[str, str]:
    root = ET.fromstring(xml)
    return {case.get("name"): case.findtext("system-out") for case in root.iter("testcase") if case.find("system-out") is not None}


def test_junit_gives_each_invariant_the_examples_that_judged_it() -> None:
    """The review's campaign: 1588 examples, errors.poison exercised in 371 of them."""
    from harness.output.junit import junit_from_summary

    counts = {"concurrency.limit": 1588, "errors.propagate": 1588, "errors.poison": 371, "user.size_bounded": 0}
    outs = _outs(junit_from_summary(_summary({"examples": 1588, "invariants": counts, "faults": {}})))
    assert "held over" not in " ".join(outs.values())
    assert outs["errors"].endswith(": errors.propagate 1588, errors.poison 371")
    assert outs["errors"].startswith("no violation in 1588 examples;")
    assert outs["user"].endswith(": user.size_bounded 0 (never exercised)")


def test_junit_without_counts_claims_no_count_per_invariant() -> None:
    """A summary that did not gather what was exercised (library use) says no count was recorded."""
    from harness.output.junit import junit_from_summary

    outs = _outs(junit_from_summary(_summary(None)))
    assert outs["errors"] == (
        "no violation in 1588 examples: errors.propagate, errors.poison (how many examples exercised each is not recorded)"
    )


def test_junit_from_a_campaign_counts_what_its_tally_counted(tmp_path) -> None:
    """The library route (``junit_xml`` / ``write_junit``) takes the tally the CLI's summary holds."""
    from harness import CampaignConfig, run_campaign
    from harness.output.junit import junit_xml
    from harness.search.exercised import Tally
    from scenarios.pools import semaphore_pool

    config = CampaignConfig(seed=4, max_examples=40, report_dir=str(tmp_path))
    tally = Tally.for_target(semaphore_pool, config.menu)
    result = run_campaign(semaphore_pool, "scenarios.pools:semaphore_pool", config, on_run=tally)
    counts = tally.to_json()["invariants"]
    assert 0 < counts["concurrency.limit"] < 40  # fewer than all: the old text said "held over 40"
    text = _outs(junit_xml(result, semaphore_pool, tally.to_json()))["concurrency"]
    assert f"concurrency.limit {counts['concurrency.limit']}" in text and "held over" not in text


# -- finding 6 ---------------------------------------------------------------------------------

pytest_plugins = ["pytester"]

BUGGY = "scenarios.pools:double_release_pool"


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A real minimal failure of the buggy pool: (file name, its text), found once for the module."""
    from harness import CampaignConfig, run_campaign

    report_dir = tmp_path_factory.mktemp("reports")
    result = run_campaign(load_target(BUGGY), BUGGY, CampaignConfig(max_examples=200, seed=15, report_dir=str(report_dir)))
    (finding,) = result.findings
    return finding.path.name, finding.path.read_text()


def _corpus(pytester: pytest.Pytester, corpus_file: tuple[str, str]) -> Path:
    name, text = corpus_file
    directory = pytester.path / "harness-regressions"
    directory.mkdir()
    path = directory / name
    path.write_text(text)
    os.utime(path, (1_000_000_000, 1_000_000_000))  # an old file: any write would show in its mtime
    return path


def test_regression_item_names_the_file_it_read_without_saved(pytester: pytest.Pytester, corpus_file) -> None:
    path = _corpus(pytester, corpus_file)
    result = pytester.runpytest("-p", "no:twisted", "harness-regressions")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "reproduced exactly: the bug this regression file records is back" in out
    assert "\nsaved: " not in out and "saved:" not in out
    result.stdout.fnmatch_lines([
        f"regression file: harness-regressions/{path.name}",
        f"replay: harness replay harness-regressions/{path.name}",
    ])
    assert path.stat().st_mtime == 1_000_000_000  # read, never written
    assert not (pytester.path / "reports").exists()


FUZZ_BUGGY = f"""
from harness.pytest import fuzz

@fuzz("{BUGGY}", max_examples=200)
def test_buggy_pool():
    "The hand-rolled pool runs one job too many after a failure."
"""

# A conftest that makes every @fuzz campaign replay the regression corpus first (no setting does so
# today): the finding is then the corpus file, which the campaign read and did not write.
WITH_CORPUS = """
import dataclasses
import importlib
import pytest

fuzz_module = importlib.import_module("harness.pytest.fuzz")  # the attribute harness.pytest.fuzz is the decorator

@pytest.fixture(autouse=True)
def _replay_the_corpus(monkeypatch):
    real = fuzz_module.run_campaign
    def run(target, spec, config, *args, **kwargs):
        return real(target, spec, dataclasses.replace(config, regressions="harness-regressions"), *args, **kwargs)
    monkeypatch.setattr(fuzz_module, "run_campaign", run)
"""


def test_fuzz_item_says_saved_only_for_a_file_it_wrote(pytester: pytest.Pytester, corpus_file) -> None:
    pytester.makepyfile(test_pools=FUZZ_BUGGY)
    result = pytester.runpytest("-p", "no:twisted", "--harness-seed", "15", "test_pools.py")
    result.assert_outcomes(failed=1)
    (written,) = (pytester.path / "reports" / "failures").glob("*.json")
    result.stdout.fnmatch_lines([f"saved: reports/failures/{written.name}"])
    assert "regression file:" not in result.stdout.str()


def test_fuzz_item_replaying_a_corpus_file_does_not_say_saved(pytester: pytest.Pytester, corpus_file) -> None:
    path = _corpus(pytester, corpus_file)
    pytester.makeconftest(WITH_CORPUS)
    pytester.makepyfile(test_pools=FUZZ_BUGGY)
    result = pytester.runpytest("-p", "no:twisted", "--harness-seed", "15", "test_pools.py")
    result.assert_outcomes(failed=1)
    assert "saved:" not in result.stdout.str()
    result.stdout.fnmatch_lines([f"regression file: harness-regressions/{path.name}"])
    assert path.stat().st_mtime == 1_000_000_000
