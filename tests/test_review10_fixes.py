"""Fixes of round 10's findings 3 to 6 (docs/reviews/outside-user-10.md): each test fails on the code
before its fix."""

from __future__ import annotations

from harness import Call, JobSpec, Schedule, Stop, Submit, check, load_target, run_schedule

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
