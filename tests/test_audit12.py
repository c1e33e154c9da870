"""Audit 12: round 8's changes attacked (docs/reviews/audit-12.md). Small reproductions only; the long
campaigns ran outside the suite.

- ``completion.operation`` / ``completion.stop``: correct subjects answering their waiters late but
  legitimately (``tests/answer_subjects.py``) stay clean; so does a subject an operation restarts after a
  scheduled ``stop()``, once it declares ``Operation(restarts=True)`` (session 13: ``tests/test_restarts.py``).
- ``Target(sheds=...)``: a job whose canceller raised, cancelled early by a buggy timeout, is no longer
  excused by a waiter a later submit of the same instant shed (``tests/shed_pools.py``).
- ``Operation(cancels_work=True)``: a job cancelled by a later operation of the call's instant is no longer
  excused as the call's.
- The Synapse retry limiter's own invariant judged a refusal after a jump back from the wrong failure.
- ``global_reactor="lend"``: a ``functools.partial`` of ``time.monotonic`` kept in a module global crashed
  the escape guard's install (``KeyError: 'time.monotonic'``) in every session; it is now lent.
"""

from __future__ import annotations

import functools
import sys
import time
import types
from typing import Any, Iterator

import pytest
from twisted.internet import defer

from harness import Call, Cancel, JobSpec, Jump, Operation, Schedule, Stop, Submit, Target, check, load_target, run_schedule
from tests import answer_subjects
from tests.review_campaigns import campaign
from tests.shed_pools import early_shed_pool, shed_pool, wrong_victim_pool


def _names(target: Target, *ops: Any) -> list[str]:
    return [v.invariant for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


@pytest.mark.parametrize("name", answer_subjects.ALL)
def test_operations_answered_late_but_legitimately_are_no_completion_alarm(name: str, tmp_path: Any) -> None:
    result = campaign(f"tests.answer_subjects:{name}", seed=12, examples=150, tmp_path=tmp_path, max_failures=None,
                      all_faults=True)
    assert result.error is None and result.findings == [], [f.violation.message for f in result.findings]


def test_a_waiter_answered_by_the_next_stop_of_a_restarted_subject_is_no_alarm() -> None:
    ops = (Stop(at_ms=0), Call(at_ms=0, operation="resume"), Call(at_ms=0, operation="when_stopped"))
    assert _names(answer_subjects.restart, *ops) == []


def _job(n: int, at_ms: int, kind: str, after_ms: int = 0, canceller_raises: bool = False) -> Submit:
    return Submit(at_ms=at_ms, job=n, spec=JobSpec(kind=kind, after_ms=after_ms, canceller_raises=canceller_raises))


#: Job 0 (its canceller raises) runs from 0 ms; jobs 1 and 2 come at 10 ms (2 waits); at 50 ms job 0's
#: timeout frees its slot for job 2, job 3 waits, and job 4 sheds it (Shed, in job 0's cancel instant).
SHED_BESIDE = (_job(0, 0, "hang", canceller_raises=True), _job(1, 10, "succeed", 45), _job(2, 10, "succeed", 10),
               _job(3, 50, "succeed", 10), _job(4, 50, "succeed", 10))


def test_a_waiter_shed_by_a_later_submit_does_not_excuse_an_early_timeout() -> None:
    # The twin times job 0 out at 50 ms of 100; the shed of job 3 by job 4's submit in that instant is
    # another shed, not the one the cancel made (main excused it: no violation).
    assert _names(early_shed_pool, *SHED_BESIDE) == ["time.timeout"]
    assert _names(early_shed_pool, *SHED_BESIDE[:4]) == ["time.timeout"]
    assert _names(shed_pool, *SHED_BESIDE) == []


def test_a_wrong_cancel_by_a_later_submit_of_the_instant_is_not_excused_by_a_work_cancelling_call() -> None:
    # abort_newest() (cancels_work) cancels job 1 at 50 ms; then job 4's submit makes the twin cancel job 0,
    # the oldest running job, instead of shedding the waiter: main excused that as the call's too.
    ops = (_job(0, 0, "succeed", 90), _job(1, 0, "succeed", 90), Call(at_ms=50, operation="abort_newest"),
           _job(2, 50, "succeed", 10), _job(3, 50, "succeed", 10), _job(4, 50, "succeed", 10))
    assert _names(wrong_victim_pool, *ops) == ["time.timeout"]
    assert _names(shed_pool, *ops) == []
    assert _names(shed_pool, *ops[:3]) == []  # the call's own cancel is excused


def test_shed_pool_stays_clean(tmp_path: Any) -> None:
    result = campaign("tests.shed_pools:shed_pool", seed=12, examples=400, tmp_path=tmp_path, max_failures=None,
                      all_faults=True)
    assert result.error is None and result.findings == [], [f.violation.message for f in result.findings]


@pytest.fixture
def clock_partials() -> Iterator[types.ModuleType]:
    """A module of the user's holding partials of the time module's clocks in its globals."""
    module = types.ModuleType("audit12_clock_partials")
    module.NOW = functools.partial(time.monotonic)  # type: ignore[attr-defined]
    module.WALL = functools.partial(time.time)  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        del sys.modules[module.__name__]


@pytest.mark.parametrize("lend", [True, False])
def test_a_partial_of_a_clock_in_a_module_global_is_lent_not_a_crash(clock_partials: Any, lend: bool) -> None:
    got: list[tuple[float, float]] = []

    class Subject:
        def __init__(self, clock: Any) -> None:
            clock.callLater(1.5, lambda: got.append((clock_partials.NOW(), clock_partials.WALL())))

        def submit(self, job: Any) -> Any:
            return defer.maybeDeferred(job)

    run_schedule(Target(build=Subject, global_reactor="lend" if lend else "refuse"), Schedule(ops=()))
    [(now, wall)] = got
    if lend:
        assert (now, round(wall, 6)) == (1.5, 1.5)  # the run's monotonic time and wall clock, 1.5 s in
    else:
        assert now > 10 and wall > 1e9  # a refusing run keeps the real clocks
    assert clock_partials.NOW.func is time.monotonic is clock_partials.NOW.func  # the real ones back
    assert type(time.monotonic).__name__ == "builtin_function_or_method"


def test_synapse_retry_limiter_after_a_jump_back_is_judged_from_the_latest_failure() -> None:
    """Found by the audit's soak (seed 12): a failure at wall 0, a cancel whose canceller raised after a jump
    back to wall -1580 ms, a refusal at wall -580 ms: within the limiter's backoff of the failure at 0, but the
    target's invariant measured it from the cancel, the last failure in trace order."""
    pytest.importorskip("synapse")
    target = load_target("scenarios.thirdparty.synapse_more:retry_limiter")
    ops = (_job(0, 0, "succeed", 5, canceller_raises=True), Submit(at_ms=0, job=1, spec=JobSpec(kind="raise", error="InjectedError")),
           Jump(at_ms=0, delta_ms=-1580), Cancel(at_ms=0, job=0), _job(2, 1000, "succeed"))
    assert _names(target, *ops) == []


def test_two_calls_answered_by_one_shared_deferred_both_record_its_failure() -> None:
    target = Target(build=answer_subjects.Shared, operations={"when": Operation(lambda s: s.when(), raises=(LookupError,))})
    run = run_schedule(target, Schedule(ops=(Call(at_ms=0, operation="when"), Call(at_ms=0, operation="when"))))
    assert [c.answer.error for c in run.view.calls] == ["LookupError", "LookupError"]
