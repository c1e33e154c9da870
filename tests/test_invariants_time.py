"""The time and leaks invariants on hand-built schedules: what they catch, and false alarms they must not raise."""

from __future__ import annotations

from harness import Cancel, ClockPolicy, JobSpec, Jump, Schedule, Submit, check, run_schedule
from harness.model.schedule import Start
from scenarios.heartbeat import heartbeat, queued_heartbeat
from scenarios.poller import eager_retry_poller, looping_poller
from scenarios.pools import semaphore_pool
from scenarios.retry import backoff_retry, off_by_one_retry
from scenarios.timeout import orphaning_timeout, timeout_pool


def test_a_stalled_reactor_does_not_strand_a_queue_of_jobs() -> None:
    # Ten 10ms jobs through a pool of two under a reactor that advances in 5s strides:
    # every round of jobs finishes a stride later, 25s in all. The drain must wait for
    # that lateness rather than call the last jobs stranded (completion.deadline).
    schedule = Schedule(tuple(Submit(0, i, JobSpec("succeed", 10)) for i in range(10)), ClockPolicy(step_ms=5000))
    run = run_schedule(semaphore_pool, schedule)
    assert check(run) == []
    assert sum(1 for event in run.trace if event.kind == "result") == 10


def test_retries_accepts_a_job_within_its_bound() -> None:
    # A job that fails twice and then succeeds, well within three retries: no violation
    # (the check used to crash on any job that stayed within the bound).
    schedule = Schedule((Submit(0, 0, JobSpec("fail", 10), then=(JobSpec("raise"), JobSpec("succeed", 10))),))
    assert check(run_schedule(backoff_retry, schedule)) == []


def test_retries_flags_one_attempt_too_many() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("raise")),))
    violations = check(run_schedule(off_by_one_retry, schedule))
    assert [v.invariant for v in violations] == ["time.retries"]
    assert "attempted 5 times; at most 4 (1 + 3 retries)" in violations[0].message


def test_timeout_lets_a_job_due_before_t_finish_late_on_a_strided_clock() -> None:
    # The job is due to finish at 10ms, the timeout at 300ms; a reactor advancing in 1s strides
    # runs both at 1000ms, the job's end first. The job did not overrun: no violation.
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)),), ClockPolicy(step_ms=1000))
    run = run_schedule(timeout_pool, schedule)
    assert check(run) == []
    assert [e.t_us for e in run.trace if e.kind == "job.finish"] == [1_000_000]


def test_timeout_excuses_a_cancel_that_beats_a_late_timeout() -> None:
    # With 50ms of jitter the job's end (due at 270ms) and the timeout (due at 300ms) both fire
    # after 310ms, when the caller cancels: the caller's CancelledError is right, not a TimeoutError.
    schedule = Schedule(
        (Submit(0, 1, JobSpec("succeed", 270)), Cancel(310, 1)), ClockPolicy(tie_break="fifo", seed=5, jitter_ms=50)
    )
    run = run_schedule(timeout_pool, schedule)
    assert [(e.kind, e.t_us) for e in run.trace if e.kind in ("job.cancel", "failure")] == [
        ("job.cancel", 310_000),
        ("failure", 310_000),
    ]
    assert check(run) == []


def test_timeout_still_flags_a_job_that_runs_on() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 360)),), ClockPolicy(step_ms=10, jitter_ms=50))
    violations = check(run_schedule(orphaning_timeout, schedule))
    assert [v.invariant for v in violations] == ["time.timeout"]
    assert "still running at 300ms" in violations[0].message


def test_early_lets_a_looping_call_realign_after_a_jump() -> None:
    # The wall clock jumps +10ms right after the start; call 1 (due on monotonic time) comes at
    # 100ms, reads 110ms and re-aligns to its grid: call 2 comes 90ms later, once. Not early.
    schedule = Schedule((Start(0, 0, JobSpec("succeed")), Jump(0, 10)))
    run = run_schedule(looping_poller, schedule)
    starts = [e.t_us // 1000 for e in run.trace if e.kind == "job.start"][:4]
    assert starts == [0, 100, 190, 290]
    assert check(run) == []


def test_early_still_flags_a_poll_retried_too_soon() -> None:
    schedule = Schedule((Start(0, 0, JobSpec("raise"), then=(JobSpec("succeed"),)), Jump(50, 10)))
    violations = check(run_schedule(eager_retry_poller, schedule))
    assert [v.invariant for v in violations] == ["time.early"]
    assert "call 1 came at 20ms" in violations[0].message


def test_a_looping_call_left_running_is_a_leak() -> None:
    # The sender loop is blocked on DeferredQueue.get(): no DelayedCall is pending, but the
    # LoopingCall still runs. The runner used to look for LoopingCalls among bound methods,
    # while a LoopingCall schedules itself, so it never reported one.
    run = run_schedule(queued_heartbeat, Schedule((Start(0, 0, JobSpec("succeed")),)))
    assert [e.detail for e in run.trace if e.kind == "leak.loop"] == [
        "LoopingCall(QueuedHeartbeat._send_next) still running"
    ]
    assert [v.invariant for v in check(run)] == ["leaks.loops"]


def test_a_stopped_looping_call_is_not_a_leak() -> None:
    run = run_schedule(heartbeat, Schedule((Start(0, 0, JobSpec("succeed")),)))
    assert not [e for e in run.trace if e.kind.startswith("leak.")]
    assert check(run) == []
