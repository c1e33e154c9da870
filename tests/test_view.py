"""The documented run API: typed records of a run, without parsing detail strings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import AttemptRecord, Call, CallRecord, EventKind, JobRecord, JobSpec, Run, RunView, Schedule, Submit, Target, check, run_schedule
from harness.model.schedule import Cancel
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


class _Stamping:
    """Runs every job at once and notes what ``clock.seconds()`` read when each was submitted and started."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.submitted: dict[int, float] = {}
        self.started: dict[int, float] = {}

    def submit(self, job):
        from twisted.internet import defer

        self.submitted[job.id] = self.clock.seconds()
        d = defer.Deferred()

        def go() -> None:
            self.started[job.id] = self.clock.seconds()
            defer.maybeDeferred(job).chainDeferred(d)

        self.clock.callLater(0.002, go)
        return d


def test_records_carry_what_the_wall_clock_read_and_the_clocks_lateness() -> None:
    from harness import ClockPolicy, Jump

    schedule = Schedule(
        (Submit(0, 0, JobSpec("succeed", 10)), Jump(1, 5_000), Submit(3, 1, JobSpec("succeed", 10)), Jump(4, -2_000)),
        ClockPolicy(step_ms=3, jitter_ms=4),
    )
    seen: dict[str, object] = {}

    def note(run: Run) -> None:
        seen["submitted"], seen["started"], seen["view"] = run.subject.submitted, run.subject.started, run.view

    run_schedule(Target(build=_Stamping, invariants=(note,)), schedule)
    view = seen["view"]
    assert view.late_us == 7_000
    for job in view.jobs.values():
        assert job.submitted_wall_us == round(seen["submitted"][job.id] * 1e6)
        assert job.attempts[0].start_wall_us == round(seen["started"][job.id] * 1e6)
        assert job.attempts[0].end_wall_us - job.attempts[0].start_wall_us == job.attempts[0].end_us - job.attempts[0].start_us
    assert view.jobs[1].submitted_wall_us == view.jobs[1].submitted_us + 5_000_000
    jump_back = next(i for i, e in view.of_kind(EventKind.CLOCK_JUMP) if e.t_us == 4_000)
    assert view.wall_us(jump_back) == 4_000 + 3_000_000
    assert all(step.wall_us is not None for step in view.steps())


def test_the_target_pages_breaker_invariant_fits_in_15_lines_and_catches_an_open_gate() -> None:
    import scenarios.breaker as breaker

    text = (ROOT / "docs" / "reference" / "target.md").read_text()
    code = next(block.split("```", 1)[0] for block in text.split("```python\n") if "def one_trial_at_a_time" in block)
    body = code.split("def one_trial_at_a_time", 1)[1].split("\n\n", 1)[0]
    assert len(body.splitlines()) <= 15
    schedule = Schedule(
        (Submit(0, 0, JobSpec("fail", 10)), Submit(0, 1, JobSpec("fail", 10)), Submit(110, 2, JobSpec("succeed", 10)), Submit(110, 3, JobSpec("succeed", 10)))
    )
    for subject, expected in ((breaker.CircuitBreaker, []), (breaker.OpenGateBreaker, ["user.one_trial_at_a_time"])):
        namespace = {name: getattr(breaker, name) for name in ("THRESHOLD", "COOLDOWN_MS", "CircuitOpen")}
        namespace["CircuitBreaker"] = subject
        exec(compile(code, "docs/reference/target.md", "exec"), namespace)
        assert [v.invariant for v in check(run_schedule(namespace["breaker"], schedule))] == expected


def test_every_record_field_is_in_the_reference() -> None:
    import dataclasses

    from harness import ClockPolicy
    from harness.run.view import Step

    text = (ROOT / "docs" / "run-api.md").read_text()
    for record in (JobRecord, AttemptRecord, CallRecord, Step, ClockPolicy):
        for field in dataclasses.fields(record):
            assert f"`{field.name}" in text or f", {field.name}" in text or f"`, `{field.name}`" in text, (record.__name__, field.name)


def test_an_attempt_whose_canceller_raised_never_ends_in_the_view() -> None:
    """docs/reviews/outside-user.md F4: its Deferred was cancelled (outcome and end_us say so) but the job never ends and
    keeps what it holds, so ``running_at`` keeps it; an attempt cancelled normally ends at the cancel."""
    from scenarios.pools import SemaphorePool

    target = Target(build=lambda clock: SemaphorePool(clock, 2))
    schedule = Schedule((
        Submit(0, 0, JobSpec("fail", after_ms=440, canceller_raises=True)),
        Submit(0, 1, JobSpec("succeed", after_ms=440)),
        Cancel(10, 0),
        Cancel(10, 1),
    ))
    view = run_schedule(target, schedule).view
    hostile, normal = view.jobs[0].attempts[0], view.jobs[1].attempts[0]
    assert (hostile.outcome, hostile.end_us, hostile.canceller_raised) == ("cancelled", 10_000, True)
    assert (normal.outcome, normal.end_us, normal.canceller_raised) == ("cancelled", 10_000, False)
    assert [a.job for a in view.running_at(5_000)] == [0, 1]
    assert [a.job for a in view.running_at(20_000)] == [0]
    assert hostile.running_at(10**9) and not normal.running_at(10_000)


def test_call_records_hold_the_trace_index_of_their_call_event() -> None:
    """docs/reviews/outside-user.md F12: relate a call to other events without zipping of_kind("call") with calls."""
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Call(0, "trip"), Submit(100, 1, JobSpec("succeed", 10)), Call(100, "reset")))
    view = run_schedule(circuit_breaker, schedule).view
    assert [c.index for c in view.calls] == [i for i, _ in view.of_kind("call")]
    [(submit_1, _)] = [(i, e) for i, e in view.of_kind("submit") if e.job == 1]
    trip, reset = view.calls
    assert trip.index < submit_1 < reset.index
    assert view.events[trip.index].t_us == trip.t_us


def test_an_outcome_names_the_declared_types_its_error_is_an_instance_of() -> None:
    """docs/reviews/outside-user.md F12: the builtin TimeoutError a schedule injects and Twisted's (declared) share a name:
    ``error`` reads the same, ``error_is`` tells them apart; a subclass of a declared type counts."""
    from twisted.internet import defer

    from scenarios.pools import SemaphorePool

    class Refused(KeyError):
        pass

    class Refusing(SemaphorePool):
        def submit(self, job: Any) -> defer.Deferred[Any]:
            if self.clock.seconds() >= 0.05:
                return defer.fail(Refused("full"))
            return super().submit(job)

    target = Target(build=lambda clock: Refusing(clock, 2), rejects=(defer.TimeoutError, KeyError))
    schedule = Schedule((
        Submit(0, 0, JobSpec("fail", 10, error="TimeoutError")),
        Submit(0, 1, JobSpec("fail", 10, error="KeyError")),
        Submit(0, 2, JobSpec("succeed", 10)),
        Submit(0, 3, JobSpec("hang")),
        Cancel(5, 3),
        Submit(100, 4),
    ))
    view = run_schedule(target, schedule).view
    got = {job: (view.received(job).error, view.received(job).error_is) for job in range(5)}
    assert got == {
        0: ("TimeoutError", ()),  # the builtin one: not Twisted's TimeoutError, though the name is the same
        1: ("KeyError", ("KeyError",)),
        2: (None, ()),
        3: ("CancelledError", ("CancelledError",)),
        4: ("Refused", ("KeyError",)),  # a subclass of a declared type
    }


def test_job_and_attempt_records_hold_the_trace_indices_of_their_events() -> None:
    """docs/reviews/outside-user-8.md finding 5: a submit, a start and an end ordered against an operation
    of the same instant (the call between submissions at 0 ms), without rebuilding them from of_kind."""
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Call(0, "trip"), Submit(0, 1, JobSpec("succeed", 10)), Submit(0, 2, JobSpec("hang"))))
    view = run_schedule(circuit_breaker, schedule).view
    submits = {e.job: i for i, e in view.of_kind("submit")}
    starts = {e.job: i for i, e in view.of_kind("job.start")}
    ends = {e.job: i for i, e in view.of_kind("job.finish")}
    assert {job.id: job.submit_index for job in view.jobs.values()} == submits
    [trip] = view.calls
    assert view.jobs[0].submit_index < trip.index < view.jobs[1].submit_index  # all three at 0 ms
    [attempt] = view.jobs[0].attempts
    assert (attempt.start_index, attempt.end_index) == (starts[0], ends[0])
    assert attempt.start_index < trip.index < attempt.end_index
    assert all(a.end_index is None for a in view.jobs[2].attempts)
