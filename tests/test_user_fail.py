"""A user invariant names the events its message is about (docs/reviews/outside-user-2.md F10).

``InvariantFailed(message, events=...)`` marks those events with ``>>`` and the
printed trace is centred on them; a plain ``AssertionError`` marks the
``user.fail`` line, as it always did, with the same trace and hash, so failure
files written before keep replaying exactly.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from harness import (
    CampaignConfig,
    EventKind,
    InvariantFailed,
    JobSpec,
    Schedule,
    Submit,
    Target,
    TargetError,
    check,
    run_campaign,
    run_schedule,
)
from harness.cli.main import main
from harness.model.user_fail import parse_fail
from harness.output.timeline import CONTEXT, render_trace
from harness.store import failure_file
from scenarios.pools import semaphore_pool
from scenarios.review.round2 import targets as round2

OLD_FILE = Path(__file__).resolve().parent / "fixtures" / "failure_files" / "user_invariant_0359ec5.json"

#: Ten jobs one after another: a trace of some 40 lines, far more than an excerpt prints.
LONG = Schedule(ops=tuple(Submit(at_ms=10 * n, job=n, spec=JobSpec("succeed", 5)) for n in range(10)))


def first_start_named(run) -> None:
    """Fails on every run, naming job 0's start (near the beginning of the trace)."""
    (index,) = [i for i, e in run.view.of_kind(EventKind.JOB_START) if e.job == 0]
    raise InvariantFailed("job 0 started (named)", events=(index,))


def first_start_plain(run) -> None:
    """The same failure as a plain assert: it names no event."""
    raise AssertionError("job 0 started (plain)")


def _failing(invariant) -> tuple:
    run = run_schedule(dataclasses.replace(semaphore_pool, invariants=(invariant,)), LONG)
    (violation,) = [v for v in check(run) if v.invariant.startswith("user.")]
    return run, violation


def test_the_named_events_are_marked_and_shown_in_the_printed_window() -> None:
    run, violation = _failing(first_start_named)
    (start,) = [i for i, e in enumerate(run.trace) if e.kind == EventKind.JOB_START and e.job == 0]
    assert violation.events == (start,) and violation.message == "job 0 started (named)"
    assert len(run.trace) > 30 and start < 5  # far from the user.fail line at the end
    text = render_trace(run.trace, violation.events, around=CONTEXT)
    (marked,) = [line for line in text.splitlines() if line.startswith(">>")]
    assert "job.start" in marked and " 0 " in marked
    assert "user.fail" not in text  # the window is around the named event, not the end


def test_a_plain_assertion_error_marks_the_user_fail_line_as_before() -> None:
    run, violation = _failing(first_start_plain)
    (fail,) = [i for i, e in enumerate(run.trace) if e.kind == EventKind.USER_FAIL]
    assert violation.events == (fail,) and violation.message == "job 0 started (plain)"
    assert run.trace[fail].detail == "first_start_plain: job 0 started (plain)"  # the detail it always had
    (marked,) = [line for line in render_trace(run.trace, violation.events, around=CONTEXT).splitlines() if line.startswith(">>")]
    assert "user.fail" in marked


def test_the_named_events_are_kept_in_the_trace_so_the_failure_file_replays_exactly(tmp_path, capsys) -> None:
    target = "scenarios.review.round2.targets:batcher_user_invariant"
    config = CampaignConfig(seed=1, max_examples=3000, report_dir=str(tmp_path))
    (finding,) = run_campaign(round2.batcher_user_invariant, target, config).findings
    assert finding.violation.invariant == "user.batches_cut_on_size_or_delay"
    record = failure_file.load(finding.path)
    named = [record.trace[i] for i in record.marked]
    assert {e.kind for e in named} == {"submit", "job.start"} and record.trace[-2].kind == "user.fail"
    assert record.trace[-2].detail.endswith(" >> events " + ", ".join(map(str, record.marked)))
    assert main(["replay", str(finding.path)]) == 1
    out = capsys.readouterr().out
    assert "reproduced exactly" in out
    assert [line.split()[2] for line in out.splitlines() if line.startswith(">>")] == ["submit", "job.start"]


def test_harness_fuzz_prints_the_events_of_the_batcher_message(tmp_path, capsys) -> None:
    """The F10 case: the window held only the teardown; now it holds the late submit and the early start."""
    argv = ["fuzz", "scenarios.review.round2.targets:batcher_user_invariant", "--seed", "1", "--max-examples", "3000",
            "--report-dir", str(tmp_path), "--no-regressions"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    window = out.split("trace (>> marks the events that break the invariant):\n")[1].split("\nsaved: ")[0]
    assert "FAIL user.batches_cut_on_size_or_delay: batch [" in out
    kinds = [line.split()[2] for line in window.splitlines() if line.startswith(">>")]
    assert kinds[0] == "submit" and kinds[1:] and set(kinds[1:]) == {"job.start"}
    assert "timer.fire" in window  # the orphan timer that sent the batch early is in view


def test_a_failure_file_of_an_older_version_still_replays_exactly(tmp_path, capsys) -> None:
    """Written by the harness at 0359ec5 (before InvariantFailed): a plain AssertionError of the round-2 lease."""
    path = tmp_path / OLD_FILE.name
    shutil.copy(OLD_FILE, path)
    record = failure_file.load(path)
    assert record.invariant == "user.no_timer_after_stop" and record.marked == (len(record.trace) - 2,)
    assert main(["replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "reproduced exactly" in out and "FAIL user.no_timer_after_stop: the subject armed a timer at" in out
    assert main(["show", str(path)]) == 0


def test_a_message_that_only_looks_like_named_events_stays_a_message() -> None:
    # Indices at or after the user.fail event cannot have been named: an older message that ends so is kept whole.
    assert parse_fail("inv: queue full >> events 3, 40", 20) == ("inv", "queue full >> events 3, 40", (20,))
    assert parse_fail("inv: queue full >> events 3, 7", 20) == ("inv", "queue full", (3, 7))
    assert parse_fail("inv: a: b", 5) == ("inv", "a: b", (5,))


def test_named_events_must_be_indices_into_the_trace() -> None:
    with pytest.raises(TypeError, match=r"InvariantFailed events are indices into run.trace .*got 'x'"):
        InvariantFailed("m", events=["x"])
    with pytest.raises(TypeError, match="got -1"):
        InvariantFailed("m", events=[-1])
    assert InvariantFailed("m", events=[7, 3, 7]).events == (3, 7)
    assert isinstance(InvariantFailed("m"), AssertionError) and str(InvariantFailed("m")) == "m"

    def beyond(run) -> None:
        raise InvariantFailed("too far", events=(len(run.trace) + 5,))

    with pytest.raises(TargetError, match=r"the target's invariant beyond names event \d+, but the trace has \d+ events"):
        run_schedule(dataclasses.replace(semaphore_pool, invariants=(beyond,)), LONG)


def test_a_non_assertion_error_is_still_a_target_error() -> None:
    def broken(run) -> None:
        raise KeyError("oops")

    target = Target(build=semaphore_pool.build, limit=2, invariants=(broken,))
    with pytest.raises(TargetError, match="raised KeyError"):
        run_schedule(target, LONG)


def test_the_old_file_fixture_is_what_the_old_harness_wrote() -> None:
    data = json.loads(OLD_FILE.read_text())
    assert data["format"] == "harness-failure" and data["version"] == 1 and ">> events" not in data["message"]


def test_the_example_in_the_target_page_runs() -> None:
    from md_pages import fences

    page = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "target.md").read_text()
    (code,) = [body for info, body in fences(page) if "InvariantFailed" in body]
    namespace: dict = {}
    exec(compile(code, "target.md", "exec"), namespace)
    run = run_schedule(dataclasses.replace(semaphore_pool, invariants=(namespace["starts_after_submission"],)), LONG)
    assert not [e for e in run.trace if e.kind == EventKind.USER_FAIL]
    trace = list(run.trace)
    run.trace.events[:] = [e for e in trace if e.kind != EventKind.SUBMIT or e.job != 3]  # job 3 never submitted
    with pytest.raises(InvariantFailed, match="job 3 started at 30ms, before it was submitted") as caught:
        namespace["starts_after_submission"](run)
    assert [run.trace.events[i].kind for i in caught.value.events] == ["job.start"]


def test_a_message_ending_in_a_number_too_long_for_int_stays_a_message() -> None:
    # attack5: int() refuses over 4,300 digits; a plain assert's message ending so crashed every check of the run.
    digits = "1" * 5000
    assert parse_fail(f"inv: x >> events {digits}", 20) == ("inv", f"x >> events {digits}", (20,))
    assert parse_fail("inv: x >> events 3, 007", 20) == ("inv", "x >> events 3, 007", (20,))  # 3 digits for index 20
    assert parse_fail("inv: x >> events \u0661", 20) == ("inv", "x >> events \u0661", (20,))  # fail_detail writes ASCII

    def huge(run) -> None:
        raise AssertionError(f"x >> events {digits}")

    run, violation = _failing(huge)
    (fail,) = [i for i, e in enumerate(run.trace) if e.kind == EventKind.USER_FAIL]
    assert violation.message == f"x >> events {digits}" and violation.events == (fail,)


def test_one_index_given_as_events_is_refused_with_the_fix() -> None:
    with pytest.raises(TypeError, match=r"InvariantFailed events are a collection of indices into run.trace, got 3; give a tuple: events=\(3,\)"):
        InvariantFailed("m", events=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("message", ["queue full >> events 0, 1", "queue full >> events none", "x >> events 0 >> events none"])
def test_a_plain_assertion_that_ends_like_the_mark_names_no_events(message: str) -> None:
    # A plain AssertionError names no events, whatever its message says; its message comes back whole.
    def plain(run) -> None:
        raise AssertionError(message)

    run, violation = _failing(plain)
    (fail,) = [i for i, e in enumerate(run.trace) if e.kind == EventKind.USER_FAIL]
    assert violation.message == message and violation.events == (fail,)
    assert parse_fail(run.trace[fail].detail, fail) == ("plain", message, (fail,))


def test_an_invariant_failed_whose_message_ends_like_the_escape_still_names_its_events() -> None:
    def named(run) -> None:
        raise InvariantFailed("odd >> events none", events=(0, 2))

    run, violation = _failing(named)
    assert violation.message == "odd >> events none" and violation.events == (0, 2)
