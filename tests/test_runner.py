"""The runner: deterministic traces, job ground truth, clock policies and target errors."""

from __future__ import annotations

import pytest
from hypothesis import given

from harness import ClockPolicy, JobSpec, Jump, Schedule, Submit, Target, TargetError, run_schedule, schedules
from harness.model.schedule import Cancel
from harness.model.menu import Menu
from scenarios.pools import double_release_pool, semaphore_pool


@given(schedules(Menu(stops=True, canceller_raises=True)))
def test_same_schedule_gives_byte_identical_trace(schedule: Schedule) -> None:
    for target in (semaphore_pool, double_release_pool):
        first = run_schedule(target, schedule)
        second = run_schedule(target, schedule)
        assert first.trace.lines() == second.trace.lines()
        assert first.trace.digest() == second.trace.digest()


def _kinds(run, job: int) -> list[str]:
    return [e.kind for e in run.trace if e.job == job]


def test_jobs_record_ground_truth_for_each_behaviour() -> None:
    specs = [
        JobSpec("succeed", 10),
        JobSpec("immediate"),
        JobSpec("value"),
        JobSpec("fail", 5, "ValueError"),
        JobSpec("raise", 0, "KeyError"),
        JobSpec("hang"),
    ]
    target = Target(build=lambda clock: _Direct())
    run = run_schedule(target, Schedule(tuple(Submit(0, i, s) for i, s in enumerate(specs))))
    assert _kinds(run, 0) == ["submit", "job.start", "job.finish", "result"]
    assert _kinds(run, 1) == ["submit", "job.start", "job.finish", "result"]
    assert _kinds(run, 2) == ["submit", "job.start", "job.finish", "result"]
    assert _kinds(run, 3) == ["submit", "job.start", "job.fail", "failure"]
    assert _kinds(run, 4) == ["submit", "job.start", "job.fail", "failure"]
    assert _kinds(run, 5) == ["submit", "job.start"]
    fail = next(e for e in run.trace if e.kind == "failure" and e.job == 3)
    assert fail.detail.startswith("ValueError: injected by job 3")
    finish = next(e for e in run.trace if e.kind == "job.finish" and e.job == 0)
    assert finish.t_us == 10_000


def test_cancel_reaches_the_job_and_canceller_errors_are_recorded() -> None:
    target = Target(build=lambda clock: _Direct())
    schedule = Schedule(
        (
            Submit(0, 0, JobSpec("hang")),
            Submit(0, 1, JobSpec("hang", canceller_raises=True)),
            Cancel(5, 0),
            Cancel(5, 1),
            Cancel(6, 7),
        )
    )
    run = run_schedule(target, schedule)
    assert _kinds(run, 0) == ["submit", "job.start", "cancel", "job.cancel", "failure"]
    assert _kinds(run, 1) == ["submit", "job.start", "cancel", "job.cancel", "cancel.raised"]
    assert _kinds(run, 7) == ["cancel.skip"]


def test_strided_advance_fires_calls_late_on_the_stride_grid() -> None:
    target = Target(build=lambda clock: _Direct())
    run = run_schedule(target, Schedule((Submit(0, 0, JobSpec("succeed", 130)),), ClockPolicy(step_ms=100)))
    finish = next(e for e in run.trace if e.kind == "job.finish")
    assert finish.t_us == 200_000


def test_jump_is_recorded_and_seen_by_seconds() -> None:
    seen: list[float] = []

    class Reader:
        def __init__(self, clock) -> None:
            self.clock = clock

        def submit(self, job):
            seen.append(self.clock.seconds())
            return job()

    run = run_schedule(Target(build=Reader), Schedule((Jump(0, -3000), Submit(10, 0, JobSpec("immediate")))))
    assert [e.kind for e in run.trace][0] == "clock.jump"
    assert seen == [pytest.approx(-2.99)]


def test_escaping_exception_is_recorded_not_raised() -> None:
    class Exploding:
        def __init__(self, clock) -> None:
            self.clock = clock

        def submit(self, job):
            self.clock.callLater(1, self._boom)
            return job()

        def _boom(self) -> None:
            raise RuntimeError("tick failed")

    run = run_schedule(Target(build=Exploding), Schedule((Submit(0, 0, JobSpec("immediate")),)))
    escape = next(e for e in run.trace if e.kind == "reactor.error")
    assert escape.detail == "Exploding._boom: RuntimeError: tick failed"
    assert escape.t_us == 1_000_000


def test_build_error_is_a_target_error() -> None:
    def broken(clock):
        raise OSError("no config")

    with pytest.raises(TargetError, match=r"build\(clock\) raised OSError: no config"):
        run_schedule(Target(build=broken), Schedule())


def test_submit_returning_a_non_deferred_is_a_target_error() -> None:
    target = Target(build=lambda clock: object(), submit=lambda subject, job, prio: 42)
    with pytest.raises(TargetError, match="not a Deferred"):
        run_schedule(target, Schedule((Submit(0, 0, JobSpec()),)))


class _Direct:
    """Runs each job at once, unwrapped: the trace then shows the jobs' own behaviour."""

    def submit(self, job):
        from twisted.internet import defer

        return defer.maybeDeferred(job)


def test_an_address_cut_in_two_by_a_truncated_repr_is_masked_too() -> None:
    # pytest shortens long reprs in assertion messages by cutting out their middle, which can leave
    # the tail of an address without its 0x: it must not make two runs of a schedule differ.
    from harness import JobSpec, Schedule, Submit, Target, run_schedule
    from scenarios.pools import SemaphorePool

    def shortened(run) -> None:
        raise AssertionError(f"<function <lambda> at 0x7f8...{id(object()):x}{id(run):x}>")

    target = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, invariants=(shortened,))
    schedule = Schedule((Submit(0, 0, JobSpec()),))
    first, again = (run_schedule(target, schedule).trace.lines() for _ in range(2))
    assert first == again and any("at 0x?...0x?>" in line for line in first)
