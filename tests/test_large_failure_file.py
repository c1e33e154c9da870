"""A failure file of a million trace events loads and prints in time linear in its size, and prints as before.

``harness show`` of a 43 MB file (900,000 events) took 29 s (hostile-inputs
review). The work was linear but slow: a Python-level check of every field
of every event, the garbage collector re-scanning every list ``json.loads``
had made, and per-event formatting. No test here times anything: the costs
are counted (Python lines executed, garbage collections started), so a
quadratic regression, or the collector back at work during a load, fails on
any machine, however loaded.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness import JobSpec, Schedule, Submit
from harness.cli.main import main
from harness.errors import FailureFileError
from harness.model.trace import Event, EventKind, digest_lines, format_ms, one_line
from harness.output.timeline import MARK, render_trace
from harness.store import failure_file
from harness.store.failure_file import FailureRecord, save

KINDS = ("submit", "job.start", "timer.set", "timer.fire", "job.finish", "log", str(EventKind.END))


def _trace(n: int) -> tuple[Event, ...]:
    """``n`` varied events: instants shared by runs of events, no job, attempts, unprintable details, ends."""
    return tuple(
        Event(
            (i // 3) * 1500 - (5000 if i % 97 == 0 else 0),
            KINDS[i % len(KINDS)],
            -1 if i % 11 == 0 else i % 50,
            i % 3,
            f"detail {i}" + ("\n\x1b[31mred" if i % 13 == 0 else ""),
        )
        for i in range(n)
    )


def _record(n: int) -> FailureRecord:
    trace = _trace(n)
    return FailureRecord(
        target="scenarios.pools:semaphore_pool",
        schedule=Schedule(tuple(Submit(0, job, JobSpec("succeed", 10)) for job in range(3))),
        invariant="concurrency.limit",
        message="m",
        trace_hash=digest_lines([event.line() for event in trace]),
        seed=1,
        trace=trace,
        marked=tuple(range(1, n, 50)),  # marks grow with the trace too
    )


def _old_render(events, marked=(), around=None, hint="HINT") -> str:
    """``render_trace`` as it was before it was made fast (the reference its output must equal)."""
    from harness.output.timeline import _excerpt, _left_out

    marks = set(marked)
    rows = [(index, event) for index, event in enumerate(events) if event.kind != EventKind.END]
    lines = [f"   {'time':>10}  {'event':<16} {'job':<7} detail"]
    kept = _excerpt([index for index, _ in rows], marks, around) if around is not None and marks else None
    skipped = 0
    for index, event in rows:
        if kept is not None and index not in kept:
            skipped += 1
            continue
        if skipped:
            lines.append(_left_out(skipped))
            skipped = 0
        job = "" if event.job < 0 else f"{event.job}" + (f"#{event.attempt}" if event.attempt else "")
        margin = MARK if index in marks else "  "
        lines.append(f"{margin} {format_ms(event.t_us):>10}  {one_line(event.kind):<16} {job:<7} {one_line(event.detail)}".rstrip())
    if skipped:
        lines.append(_left_out(skipped))
    if kept is not None and len(kept) < len(rows):
        lines.append(f"({len(kept)} of {len(rows)} lines shown, around the marked events; {hint})")
    return "\n".join(lines)


@pytest.mark.parametrize("around", [None, 0, 3])
@pytest.mark.parametrize("marked", [(), (0, 5, 6, 200, 398), tuple(range(0, 400, 7))])
def test_the_timeline_prints_exactly_as_before(around, marked) -> None:
    trace = _trace(400)
    assert render_trace(trace, marked, around=around, hint="HINT") == _old_render(trace, marked, around=around)
    assert render_trace(iter(trace), marked, around=around, hint="HINT") == _old_render(trace, marked, around=around)


@contextmanager
def _counting_lines() -> Iterator[list[int]]:
    """Count the Python lines executed in the block (every frame): a measure of work no load can skew."""
    count = [0]

    def tracer(frame, event, arg):
        count[0] += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield count
    finally:
        sys.settrace(previous)


def _show_cost(path: Path, capsys) -> int:
    with _counting_lines() as count:
        assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") > 1000
    return count[0]


def test_show_costs_linear_work_in_the_events(tmp_path, capsys) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    costs = [_show_cost(save(_record(n), directory), capsys) for n, directory in ((2_000, small), (8_000, large))]
    # Linear: 4x the events cost 4x the lines (plus a little); a pass over the trace per event would be 16x.
    assert costs[1] < 4.4 * costs[0], costs


def test_a_large_file_is_parsed_without_the_garbage_collector_rescanning_it(tmp_path) -> None:
    path = save(_record(20_000), tmp_path)
    started: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.collect()  # every generation's count from zero: what earlier tests left could make the one due older
    gc.callbacks.append(watch)
    try:
        record = failure_file.load(path)
    finally:
        gc.callbacks.remove(watch)
    assert len(record.trace) == 20_000 and record.trace == _trace(20_000)
    # 40,000 lists parsed and 20,000 events made: at most the one young collection when collection resumes
    # (before: 57 collections, one every 700 objects made, 5 of them of older generations).
    assert started in ([], [0]), started
    assert gc.isenabled()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda events: events.__setitem__(3, [1, "log", 2, 0]), "trace event [1, 'log', 2, 0] is not [t_us"),
        (lambda events: events.__setitem__(3, [1, "log", True, 0, ""]), "is not [t_us, kind, job, attempt, detail]"),
        (lambda events: events.__setitem__(3, [2**63, "log", 1, 0, ""]), "holds a number beyond 64 bits"),
        (lambda events: events.__setitem__(3, [1, "log", 1, 0, "\ud800"]), "'trace detail' holds an invalid Unicode"),
        (lambda events: events.__setitem__(3, [1, "\udc80", 1, 0, ""]), "'trace kind' holds an invalid Unicode"),
    ],
)
def test_a_bad_event_among_many_is_still_named_in_one_line(change, said) -> None:
    data = _record(50).to_json()
    change(data["trace"])
    with pytest.raises(FailureFileError, match=said.replace("[", r"\[").replace("(", r"\(")):
        FailureRecord.from_json(data)


def test_the_first_bad_event_is_the_one_named() -> None:
    data = _record(50).to_json()
    data["trace"][3] = [1, "log", 1, 0, "\ud800"]  # text: found only once every shape was checked
    data["trace"][9] = [1, "log", 1, 0]
    with pytest.raises(FailureFileError, match="'trace detail' holds an invalid Unicode"):
        FailureRecord.from_json(data)
