"""Work-submission scenarios: the reference subjects keep every promise, each buggy one is caught by its invariant."""

from __future__ import annotations

from harness import ClockPolicy, JobSpec, Schedule, Submit, check, load_target, run_schedule


def _ms(kind: str, after_ms: int = 10) -> JobSpec:
    return JobSpec(kind, after_ms if kind in ("succeed", "fail") else 0)


def test_a_serial_subject_on_a_stalled_reactor_is_not_called_deadlocked() -> None:
    # Four 10 ms jobs one after another, each completion fired up to a 5 s stride late: the last
    # finishes at 20 s. The run must drain that long rather than call the last job stranded.
    schedule = Schedule(tuple(Submit(0, job, _ms("succeed")) for job in range(4)), ClockPolicy(step_ms=5_000))
    run = run_schedule(load_target("scenarios.lock:lock_resource"), schedule)
    assert check(run) == []
    assert sum(1 for event in run.trace if event.kind == "result") == 4
