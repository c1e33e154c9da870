"""The documented run API: typed records of a run, without parsing detail strings."""

from __future__ import annotations

import re
from pathlib import Path

from harness import Call, EventKind, JobSpec, Run, RunView, Schedule, Submit, Target, check, run_schedule
from harness.schedule import Cancel
from scenarios.batching import batching_queue
from scenarios.breaker import circuit_breaker
from scenarios.single_flight import single_flight

ROOT = Path(__file__).resolve().parent.parent


def test_job_records_hold_attempts_outcomes_and_cancels() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("fail", 20)), Submit(0, 2, JobSpec("hang")), Cancel(5, 2)))
    view = run_schedule(batching_queue, schedule).view
    zero, one, two = view.jobs[0], view.jobs[1], view.jobs[2]
    assert (zero.submitted_us, zero.key, zero.priority) == (0, 0, 0)
    [attempt] = zero.attempts
    assert (attempt.start_us, attempt.end_us, attempt.outcome, attempt.error) == (0, 10_000, "finished", None)
    assert zero.received.kind == "result" and zero.received.value == "'job0.0'" and zero.served_by is attempt
    assert one.attempts[0].outcome == "failed" and one.attempts[0].error == "InjectedError"
    assert one.received.kind == "failure" and one.received.error == "InjectedError" and one.received.source == (1, 0)
    assert two.cancelled_us == (5_000,) and two.received.error == "CancelledError"
    assert two.attempts[0].outcome is None  # detached: the hanging work runs on
    assert [a.job for a in view.running_at(15_000)] == [1, 2]
    assert view.received(0) is zero.received and view.served_by(1) is one.attempts[0]


def test_shared_callers_point_at_the_execution_they_joined() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(5, 1, JobSpec("succeed", 10))))
    view = RunView.of(run_schedule(single_flight, schedule))
    execution = view.jobs[0].attempts[0]
    assert not view.jobs[1].ran and view.served_by(1) is execution
    assert [job.id for job in view.callers_of(execution)] == [0, 1]


def test_calls_and_steps_come_in_trace_order_with_what_they_raised() -> None:
    schedule = Schedule((Call(0, "trip"), Submit(0, 0, JobSpec("succeed", 10)), Submit(100, 1, JobSpec("succeed", 10)), Call(100, "reset")))
    view = run_schedule(circuit_breaker, schedule).view
    assert [(c.operation, c.args, c.t_us, c.raised) for c in view.calls] == [("trip", (), 0, None), ("reset", (), 100_000, None)]
    assert [(s.kind, s.attempt.job if s.attempt else s.call.operation) for s in view.steps()] == [
        ("call", "trip"), ("start", 1), ("call", "reset"), ("end", 1)
    ]
    assert view.jobs[0].received.error == "CircuitOpen"


def test_every_event_kind_the_harness_records_is_in_the_enum() -> None:
    recorded = set()
    for path in (ROOT / "harness").rglob("*.py"):
        recorded |= set(re.findall(r'record\(\s*"([a-z.]+)"', path.read_text()))
    recorded |= {"unhandled", "call.raised", "call.failure", "call.refused", "failure", "stop.failure"}
    assert recorded <= {kind.value for kind in EventKind}
    assert EventKind.RESULT == "result" and EventKind("job.start") is EventKind.JOB_START


def test_a_user_invariant_on_the_view_is_reported_like_a_built_in_one() -> None:
    def never_two_at_once(run: Run) -> None:
        for attempt in run.view.attempts():
            assert len(run.view.running_at(attempt.start_us)) <= 1, f"job {attempt.job} overlapped"

    from scenarios.pools import SemaphorePool

    target = Target(build=lambda clock: SemaphorePool(clock, 2), invariants=(never_two_at_once,))
    run = run_schedule(target, Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("succeed", 10)))))
    [violation] = check(run)
    assert violation.invariant == "user.never_two_at_once" and "job 0 overlapped" in violation.message


def test_the_example_in_the_reference_runs_and_catches_what_it_says() -> None:
    text = (ROOT / "docs" / "run-api.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    from scenarios.keyed_lock import EarlyDropKeyedLock, KeyedLock

    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("succeed", 10)), Submit(15, 2, JobSpec("succeed", 10))))
    for subject, expected in ((KeyedLock, []), (EarlyDropKeyedLock, ["user.one_at_a_time_per_key"])):
        namespace = {"MyLock": subject}
        exec(compile(code, "docs/run-api.md", "exec"), namespace)
        names = [v.invariant for v in check(run_schedule(namespace["target"], schedule)) if v.invariant.startswith("user.")]
        assert names == expected
