"""``Trace.events``: a view of the plain tuples a run records, which behaves as the list of ``Event``s it was.

The run records each event as a plain tuple (``Trace.raw``: cheaper to make, free and scan than a
tuple subclass); everything a user reads through ``trace.events``, ``iter(trace)`` and ``trace[i]``
is an ``Event`` named tuple, and changing ``trace.events`` changes the trace.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import Event, Trace
from harness.model.trace import EventKind, digest_lines
from harness.run.facts import facts_of
from harness.run.runner import run_schedule
from harness.search.generate import Examples

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def _trace() -> Trace:
    now = [0]
    trace = Trace(lambda: now[0])
    trace.record(EventKind.SUBMIT, 0, "p0")
    now[0] = 5
    trace.record(EventKind.JOB_START, 0, "succeed")
    trace.record(EventKind.JOB_FINISH, 0, "", 0)
    trace.record(EventKind.RESULT, 0, "'job0.0'")
    return trace


def test_the_run_records_plain_tuples_and_every_read_is_an_event() -> None:
    trace = _trace()
    assert all(type(raw) is tuple for raw in trace.raw)
    assert all(type(event) is Event for event in trace.events)
    assert all(type(event) is Event for event in trace)
    assert type(trace[1]) is Event and trace[1].kind == EventKind.JOB_START and trace[1].t_us == 5
    assert type(trace.events[-1]) is Event and trace.events[-1].detail == "'job0.0'"
    assert [type(e) for e in trace.events[1:3]] == [Event, Event]
    assert trace.events[2] == Event(5, EventKind.JOB_FINISH, 0, 0, "")
    assert len(trace.events) == len(trace) == 4
    assert list(trace.events) == [Event(*raw) for raw in trace.raw]


def test_lines_and_digest_are_those_of_the_events() -> None:
    trace = _trace()
    assert trace.lines() == [event.line() for event in trace.events]
    assert trace.digest() == digest_lines([event.line() for event in trace.events])


def test_changing_the_view_changes_the_trace() -> None:
    trace = _trace()
    trace.events.append(Event(9, EventKind.END, -1, 0, ""))
    assert len(trace) == 5 and trace[4].kind == EventKind.END
    trace.events.extend([Event(10, EventKind.END, -1, 0, "x")])
    assert trace.raw[-1] == (10, "end", -1, 0, "x")
    del trace.events[-1]
    assert len(trace.raw) == 5
    trace.events[:] = [e for e in trace if e.kind != EventKind.SUBMIT]
    assert [e.kind for e in trace] == ["job.start", "job.finish", "result", "end"]
    trace.events[0] = Event(1, EventKind.JOB_START, 0, 0, "hang")
    assert trace[0].detail == "hang"
    trace.events.insert(0, Event(0, EventKind.SUBMIT, 0, 0, "p0"))
    assert trace[0].kind == EventKind.SUBMIT and len(trace) == 5


def test_views_compare_as_the_lists_of_events_they_stand_for() -> None:
    first, second = _trace(), _trace()
    assert first.events == second.events
    assert first.events == list(second.events) and first.events == tuple(second.events)
    second.events.append(Event(9, EventKind.END, -1, 0, ""))
    assert first.events != second.events
    assert first.events != list(second.events)
    assert repr(first.events) == repr(list(first.events))


def test_the_facts_of_a_run_read_the_recorded_tuples_and_give_events_by_name() -> None:
    import bench

    target = bench._pool_target(20)
    examples = Examples(target.default_menu(), 3)
    for _ in range(10):
        run = run_schedule(target, next(examples))
        facts = facts_of(run)
        assert facts.events is run.trace.raw
        for index, event in enumerate(run.trace.events):
            assert facts.event(index) == event and type(facts.event(index)) is Event
            assert facts.time(index) == event.t_us


def test_a_trace_of_events_from_a_file_reads_the_same() -> None:
    """Events appended as ``Event``s (a failure file, a test) are read, indexed and judged alike."""
    recorded = _trace()
    loaded = Trace(lambda: 0)
    loaded.events.extend(Event(*raw) for raw in recorded.raw)
    assert loaded.events == recorded.events and loaded.digest() == recorded.digest()
    assert all(type(e) is Event for e in loaded.raw)
