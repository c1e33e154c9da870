"""Fixes of round 10's findings 3 to 6 (docs/reviews/outside-user-10.md): each test fails on the code
before its fix."""

from __future__ import annotations

from harness import Call, Cancel, JobSpec, Schedule, Stop, Submit, check, load_target, run_schedule
from harness.search.shrink import shrink_schedule

PACKAGE = "scenarios.review.round10.targets"
HANG = Submit(at_ms=0, job=0, spec=JobSpec(kind="hang"))


def _messages(target: str, *ops: object) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(load_target(target), Schedule(ops=tuple(ops))))]


# -- finding 3: an early cancel names the call that cancelled the job, and only advice that applies ----------

def test_finding3_an_early_cancel_by_a_stale_timer_names_it() -> None:
    """The saga's first step's timeout (set at 0 ms, before the job, its third step, started at 100 ms) stays
    armed and cancels the job at 400 ms: the message names that timer, and advises no operation or refusal
    the target does not have."""
    [(invariant, message)] = _messages(f"{PACKAGE}:saga_timeout_lingers", HANG)
    assert invariant == "time.timeout"
    assert message == (
        "job 0 was cancelled at 400ms, only 300ms after it started; the timeout is 400ms (cancelled by the "
        "subject's timer #1 LingeringTimeoutSaga._timed_out, set at 0ms, due 400ms, before the job started at "
        "100ms: not this job's timeout; a deadline of earlier work left armed?)")


# -- finding 6: a LoopingCall's pending tick names the loop's function -------------------------------------

def test_finding6_a_leaked_loop_tick_names_the_loop() -> None:
    """A holder whose release() leaves its renewal loop running: leaks.calls names the loop's function, as
    the leak.loop line after it does (two holders run one loop each)."""
    ops = (Call(at_ms=0, operation="acquire", args=("a",)), Call(at_ms=1000, operation="release", args=("a",)),
           Stop(at_ms=1000))
    found = dict(_messages(f"{PACKAGE}:lease_release_keeps_renewing", *ops))
    assert found["leaks.calls"] == ("after stop() and draining, a DelayedCall is still pending: "
                                    "LoopingCall(LeaseHolder._renew) due at 11150ms")
    assert found["leaks.loops"].endswith(": LoopingCall(LeaseHolder._renew) still running")


# -- finding 5: a job's cancels as trace indices, and an operation's plain return value -------------------

def test_finding5_cancel_indices_order_a_cancel_within_its_instant() -> None:
    """Job 0 starts when submitted at 0 ms and is cancelled in that instant, job 1 is cancelled twice while
    queued: each cancel's trace index, in the order of cancelled_us, places it against the start."""
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="hang")), Cancel(at_ms=0, job=0),
           Submit(at_ms=0, job=1, spec=JobSpec(kind="hang")), Cancel(at_ms=0, job=1), Cancel(at_ms=5, job=1))
    run = run_schedule(load_target(f"{PACKAGE}:credit_ok"), Schedule(ops=ops))
    view = run.view
    cancels: dict[int, list[int]] = {}
    for i, event in view.of_kind("cancel"):
        cancels.setdefault(event.job, []).append(i)
    job0, job1 = view.jobs[0], view.jobs[1]
    assert job0.cancel_indices == tuple(cancels[0]) and len(job0.cancel_indices) == len(job0.cancelled_us) == 1
    assert job1.cancel_indices == tuple(cancels[1]) and len(job1.cancelled_us) == 2
    assert job0.submit_index < job0.attempts[0].start_index < job0.cancel_indices[0]
    assert [run.trace.events[i].t_us for i in job1.cancel_indices] == list(job1.cancelled_us)


# -- finding 4: shrinking brings a cancel up to an earlier job's submission ---------------------------------

def _ok(job: int, at_ms: int = 0) -> Submit:
    return Submit(at_ms=at_ms, job=job, spec=JobSpec(kind="succeed", after_ms=0))


def test_finding4_the_stall_timer_twin_shrinks_to_five_operations() -> None:
    """The schedule the seed-1 campaign found and shrank to 8 operations (cancel of a running job 3 whose
    credit a grant and job 4 refill) shrinks to 5: job 2, queued, cancelled right after its submission
    (the queue drains, the stall timer stays armed and fails job 5 at 1 ms). No deletion reaches it."""
    target = load_target(f"{PACKAGE}:credit_stall_timer_sticks")
    found = Schedule(ops=(_ok(0), _ok(1), _ok(2), Submit(at_ms=0, job=3, spec=JobSpec(kind="hang")),
                          Call(at_ms=0, operation="grant", args=(2,)), _ok(4), Cancel(at_ms=0, job=3), _ok(5, at_ms=1)))
    runs = [0]

    def still_fails(schedule: Schedule) -> bool:
        runs[0] += 1
        return [v.invariant for v in check(run_schedule(target, schedule))] == ["time.timeout"]

    assert still_fails(found)
    assert shrink_schedule(found, still_fails).ops == (_ok(0), _ok(1), _ok(2), Cancel(at_ms=0, job=2), _ok(3, at_ms=1))
    assert runs[0] < 120  # 70 runs (45 before the pass, which stopped at the 8)


def test_finding5_a_plain_return_value_is_the_calls_answer() -> None:
    """reschedule(job, ms) returns whether it moved a pending job: True for job 1 still waiting at 0 ms,
    False once it ran. Recorded as the call's answer, in the call's instant."""
    ops = (Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=0), key=3),
           Call(at_ms=0, operation="reschedule", args=(1, 0)), Call(at_ms=50, operation="reschedule", args=(1, 0)))
    run = run_schedule(load_target(f"{PACKAGE}:delay_ok"), Schedule(ops=ops))
    first, second = run.view.calls
    assert first.answer is not None and second.answer is not None
    assert (first.answer.kind, first.answer.value, first.answer.t_us) == ("result", "True", 0)
    assert (second.answer.value, second.answer.t_us) == ("False", 50_000)
    assert check(run) == []


def test_finding5_a_returned_object_is_recorded_by_its_type_only() -> None:
    """Data is described as repr writes it; any other object by its type (its repr may hold a counter)."""
    from harness.run.describe import describe_returned

    class Handle:
        made = 0

        def __repr__(self) -> str:
            Handle.made += 1
            return f"<Handle {Handle.made}>"

    assert describe_returned(Handle()) == describe_returned(Handle()) == "<a Handle>"
    assert describe_returned(True) == "True" and describe_returned((1, "a", [2.5])) == "(1, 'a', [2.5])"
    assert describe_returned({"n": 2}) == "{'n': 2}" and describe_returned([Handle()]) == "<a list>"
    assert describe_returned({1, 2}) == "<a set>"
