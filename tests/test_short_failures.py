"""Minimal failures read short: the teardown is shrunk (an early stop) and the trace is printed around the marked events."""

from __future__ import annotations

import json
from pathlib import Path

from harness import JobSpec, Schedule, Stop, load_target, run_schedule
from harness.cli.main import main
from harness.model.schedule import Start
from harness.search.shrink_teardown import MIN_TAIL_CUT, Measured, stop_earlier, story_length
from harness.output.timeline import MAX_EXCERPT, render_trace
from harness.model.trace import Event

#: A one-operation failure (with the stop the shrinker adds) prints at most this many lines.
SCREENFUL = 30


def _events(count: int) -> list[Event]:
    return [Event(t * 1000, "job.start", 0, t, "succeed") for t in range(count)] + [Event(count * 1000, "end")]


def test_the_excerpt_keeps_the_marked_events_their_context_and_counts_the_rest() -> None:
    text = render_trace(_events(100), [40, 90], around=3, hint="see FILE")
    lines = text.splitlines()
    assert lines[1].strip() == "... 37 lines left out"
    assert [line for line in lines if line.startswith(">>")] == [
        ">>       40ms  job.start        0#40    succeed",
        ">>       90ms  job.start        0#90    succeed",
    ]
    assert "... 43 lines left out" in text and "... 6 lines left out" in text
    assert lines[-1] == "(14 of 100 lines shown, around the marked events; see FILE)"
    # Everything, as before, without `around` or without marks.
    assert len(render_trace(_events(100), [40]).splitlines()) == 101
    assert len(render_trace(_events(100), [], around=3).splitlines()) == 101


def test_many_marks_stay_within_the_excerpt_bound() -> None:
    text = render_trace(_events(400), range(0, 400, 20), around=3)
    shown = [line for line in text.splitlines()[1:] if "left out" not in line and not line.startswith("(")]
    assert len(shown) <= MAX_EXCERPT
    assert ">>        0ms" in text and ">>      380ms" in text


def test_a_gap_of_one_line_is_shown_not_counted() -> None:
    text = render_trace(_events(40), [5, 12], around=3)
    assert "left out" in text and "... 1 line left out" not in text


def test_a_trace_that_fits_is_printed_whole() -> None:
    text = render_trace(_events(MAX_EXCERPT), [5], around=3)
    assert "left out" not in text and len(text.splitlines()) == MAX_EXCERPT + 1


def test_the_teardown_pass_adds_the_earliest_stop_that_keeps_the_failure() -> None:
    target = load_target("scenarios.backoff_loop:retry_outlives_stop")
    start = Schedule((Start(0, 0, JobSpec("fail", 0)),))

    def measure(schedule: Schedule) -> Measured | None:
        from harness import check

        run = run_schedule(target, schedule)
        same = [v for v in check(run) if v.invariant == "time.after_stop"]
        return Measured(len(run.trace), story_length(len(run.trace), same[0].events)) if same else None

    long = measure(start)
    assert long is not None and long.length > 40  # ten virtual seconds of retries before the teardown stop
    shrunk = stop_earlier(start, measure)
    assert shrunk.ops == (Start(0, 0, JobSpec("fail", 0)), Stop(0))
    assert measure(shrunk).length < 12
    # A schedule that already stops is left to the other passes; one that passes is left alone.
    assert stop_earlier(shrunk, measure) is shrunk
    assert stop_earlier(start, lambda schedule: None) is start


def test_a_one_operation_failure_prints_a_screenful(tmp_path: Path, capsys) -> None:
    spec = "scenarios.backoff_loop:retry_outlives_stop"
    code = main(["fuzz", spec, "--seed", "1", "--max-examples", "500", "--no-regressions", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL time.after_stop" in out
    assert "minimal schedule: 2 operations" in out  # the start, and the stop the teardown pass added
    assert len(out.splitlines()) <= SCREENFUL, out
    (saved,) = (tmp_path / "failures").glob("*.json")
    # The file keeps the whole trace, and `harness show` prints all of it.
    data = json.loads(saved.read_text())
    assert main(["show", str(saved)]) == 0
    shown = capsys.readouterr().out
    assert len([line for line in shown.splitlines() if "ms  " in line]) >= len(data["trace"]) - 1
    assert main(["replay", str(saved)]) == 1
    assert "reproduced exactly" in capsys.readouterr().out


def test_the_pytest_failure_text_is_as_short(tmp_path: Path) -> None:
    from harness import FailureRecord, check
    from harness.pytest.report import failure_message

    target = load_target("scenarios.backoff_loop:retry_outlives_stop")
    run = run_schedule(target, Schedule((Start(0, 0, JobSpec("fail", 0)),)))  # no early stop: the long teardown
    (violation,) = [v for v in check(run) if v.invariant == "time.after_stop"]
    record = FailureRecord.of_run("scenarios.backoff_loop:retry_outlives_stop", run, violation)
    path = tmp_path / "failures" / f"{record.id}.json"
    text = failure_message(record, path=path, start=tmp_path, rerun="pytest 'test_x.py::test_client'")
    assert len(record.trace) > 40
    assert len(text.splitlines()) <= SCREENFUL, text
    assert ">>" in text and "lines left out" in text and f"harness show failures/{record.id}.json" in text


def test_a_stop_must_shorten_the_story_or_cut_a_long_tail() -> None:
    """Review 8, finding 8: a stop that cut 12 events after a violation at 0 ms was kept as a needless operation;
    one that cuts a periodic loop's long tail (hundreds of events) still is; one that shortens the story too."""
    from harness.search.shrink_teardown import _worth_a_stop

    assert not _worth_a_stop(Measured(16, 13), Measured(28, 13))  # the overflow: only a short tail cut
    assert _worth_a_stop(Measured(14, 7), Measured(2509, 7))  # a fast retry loop's ten virtual seconds
    assert _worth_a_stop(Measured(10, 4), Measured(12, 9))  # the violation comes sooner
    assert not _worth_a_stop(Measured(11, 2), Measured(10, 9))  # a longer trace is never worth a stop
    assert MIN_TAIL_CUT == MAX_EXCERPT  # a tail the excerpt could print whole is no reason for an operation
