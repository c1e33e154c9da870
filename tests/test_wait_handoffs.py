"""``timeout_from="wait"`` on pools that hand a freed slot over late, or hold it while they are not running a
job (audit 11, docs/reviews/audit-11.md): none of these waiters had a slot to run in, and ``time.timeout``
must not say they had. Each schedule failed before the fix; the dispatcher that dies is still caught.
"""

from __future__ import annotations

from harness import Cancel, ClockPolicy, JobSpec, Schedule, Submit, check, run_schedule
from review_campaigns import campaign
from wait_pools import DeafDispatcher, LeakBesideHeartbeat, wait_pool


def _violations(target, *ops, step_ms: int = 0) -> list[str]:
    run = run_schedule(target, Schedule(tuple(ops), ClockPolicy(step_ms=step_ms)))
    return [f"{v.invariant}: {v.message}" for v in check(run)]


def test_a_slot_freed_between_two_ticks_of_a_looping_dispatcher_excuses_the_timeout() -> None:
    # Job 0 ends at 201 ms; job 2, queued at 5 ms, times out at 205 ms, before the dispatcher's tick at 250 ms.
    target = wait_pool(handoff="loop")
    ops = (Submit(0, 0, JobSpec("succeed", 201)), Submit(0, 1, JobSpec("hang")), Submit(5, 2, JobSpec("succeed", 10)))
    assert _violations(target, *ops) == []


def test_a_dispatcher_that_stops_dispatching_is_still_caught_once_a_tick_has_passed(tmp_path) -> None:
    result = campaign("tests:deaf", seed=1, examples=200, tmp_path=tmp_path,
                      target=wait_pool(DeafDispatcher, handoff="loop"))
    assert [f.record.invariant for f in result.findings] == ["time.timeout"]
    assert "a slot had been free since" in result.findings[0].record.message


def test_a_slot_leak_beside_a_slow_heartbeat_loop_is_still_caught() -> None:
    # The heartbeat ticks every 300 ms; job 1 fails at 310 ms and its slot stays free; job 2, queued at
    # 305 ms, times out at 505 ms, while the heartbeat's next tick (600 ms) is further off than the wait timeout.
    target = wait_pool(LeakBesideHeartbeat)
    ops = (Submit(0, 0, JobSpec("hang")), Submit(300, 1, JobSpec("fail", 10)), Submit(305, 2, JobSpec("succeed")))
    [violation] = _violations(target, *ops)
    assert violation.startswith("time.timeout: job 2's wait timed out at 505ms, but a slot had been free since 310ms")


def test_a_retry_backoff_holding_the_slot_is_a_full_pool() -> None:
    # Jobs 0 and 1 fail and wait 30 ms to retry, keeping their slots; a reactor waking every 5 s runs their
    # retries and job 2's timeout in one wake: the slots were held all along.
    target = wait_pool(retries=2)
    ops = (Submit(0, 0, JobSpec("raise")), Submit(0, 1, JobSpec("raise")), Submit(0, 2, JobSpec("succeed")))
    assert _violations(target, *ops, step_ms=5000) == []


def test_a_waiter_behind_its_busy_key_had_no_slot() -> None:
    # One job of a key at a time (key_limit=1): job 1 waits behind job 0, of its key, with a slot of two free.
    target = wait_pool(per_key=1)
    ops = (Submit(0, 0, JobSpec("succeed", 980), key=0), Submit(0, 1, JobSpec("succeed"), key=0))
    assert _violations(target, *ops) == []


def test_a_backoff_cut_short_by_a_cancel_held_the_slot_until_the_answer() -> None:
    # Job 1 fails at 1 ms and waits to retry, keeping its slot, until its cancel at 201 ms frees it; the pool hands
    # the slot over in a callLater(0) that a reactor waking every 5 s runs after job 2's timeout, also due at 201 ms.
    target = wait_pool(retries=2, handoff="later0")
    ops = (Submit(1, 0, JobSpec("succeed")), Submit(1, 1, JobSpec("raise")), Submit(1, 2, JobSpec("succeed")), Cancel(201, 1))
    assert _violations(target, *ops, step_ms=5000) == []
