"""A restarted subject is judged as running (session 14): from each ``restart`` (a call of an
``Operation(restarts=True)`` on the stopped subject) to the next ``stop()`` the invariants that excuse what a
stopped subject does (``errors.propagate``, ``errors.rejects``, ``time.timeout``, ``cancellation.detaches``, ...)
no longer excuse it. ``Facts.stopped_at`` and ``Facts.stop_for`` are their one reading of the stop windows.

The twins of ``tests/restart_subjects.py`` each break a promise after a restart only; the invariants read the
first ``stop()`` before this session and missed all four (each test below passes no violation on that code)."""

from __future__ import annotations

from typing import Any

import pytest

from harness import Call, Cancel, JobSpec, Schedule, Stop, Submit, check, run_schedule
from harness.model.trace import EventKind
from harness.run.facts import facts_of
from tests import restart_subjects
from tests.review_campaigns import campaign

#: Stopped at 0 (with a job in flight; one submitted while stopped is refused), started again at 5.
STOP_RESUME = (
    Submit(at_ms=0, job=0, spec=JobSpec("succeed", 3)), Stop(at_ms=0), Submit(at_ms=1, job=9),
    Call(at_ms=5, operation="resume"),
)

#: Each twin, what it is given after its restart, and the invariant that names its bug.
TWINS = [
    ("reopen_forgotten", (Submit(at_ms=10, job=1),), "errors.rejects"),
    ("timeout_forgotten", (Submit(at_ms=10, job=1, spec=JobSpec("succeed", 200)),), "time.timeout"),
    ("error_replaced", (Submit(at_ms=10, job=1, spec=JobSpec("fail", 5)),), "errors.propagate"),
    ("drops_cancelled", (Submit(at_ms=10, job=1, spec=JobSpec("succeed", 20)), Submit(at_ms=10, job=2),
                         Cancel(at_ms=12, job=2)), "cancellation.detaches"),
    ("hedging_off", (Submit(at_ms=10, job=1, spec=JobSpec("succeed", 300)),), "time.hedge_late"),
]


def _named(target: Any, ops: tuple[Any, ...]) -> list[str]:
    return [v.invariant for v in check(run_schedule(target, Schedule(ops=ops)))]


def _correct(name: str) -> Any:
    return {"drops_cancelled": restart_subjects.queued, "hedging_off": restart_subjects.hedged}.get(name, restart_subjects.pool)


@pytest.mark.parametrize(("name", "after", "invariant"), TWINS)
def test_a_bug_after_a_restart_is_caught_and_the_correct_pool_is_clean(name: str, after: tuple[Any, ...],
                                                                       invariant: str) -> None:
    ops = STOP_RESUME + after
    assert _named(getattr(restart_subjects, name), ops) == [invariant]
    assert _named(_correct(name), ops) == []
    # The same bug before any restart, while the pool is stopped, is a stopped subject's to commit: excused.
    assert _named(getattr(restart_subjects, name), tuple(op for op in STOP_RESUME if not isinstance(op, Call)) + after) == []


#: Each twin stopped again after its restart, before its bug could show while it ran: what it then does (refuse,
#: cancel, fail callers with its own error, drop a cancelled job) is a stopped subject's, excused as after the first.
STOPPED_AGAIN = [
    ("reopen_forgotten", (Stop(at_ms=8), Submit(at_ms=10, job=1))),
    ("timeout_forgotten", (Submit(at_ms=10, job=1, spec=JobSpec("succeed", 200)), Stop(at_ms=20))),
    ("error_replaced", (Submit(at_ms=10, job=1, spec=JobSpec("fail", 5)), Stop(at_ms=12))),
    ("drops_cancelled", (Submit(at_ms=10, job=1, spec=JobSpec("succeed", 20)), Submit(at_ms=10, job=2),
                         Cancel(at_ms=12, job=2), Stop(at_ms=15))),
    ("hedging_off", (Submit(at_ms=10, job=1, spec=JobSpec("succeed", 300)), Stop(at_ms=50))),
]


@pytest.mark.parametrize(("name", "after"), STOPPED_AGAIN)
def test_the_next_stop_excuses_again(name: str, after: tuple[Any, ...]) -> None:
    assert _named(getattr(restart_subjects, name), STOP_RESUME + after) == []


def test_the_windows_a_restart_opens() -> None:
    ops = STOP_RESUME + (Submit(at_ms=10, job=1), Stop(at_ms=20), Submit(at_ms=30, job=2))
    run = run_schedule(restart_subjects.pool, Schedule(ops=ops))
    events = run.trace.raw
    restarts = [i for i, e in enumerate(events) if e[1] is EventKind.RESTART]
    stops = [i for i, e in enumerate(events) if e[1] is EventKind.STOP]
    assert [events[i][4] for i in restarts] == ["resume"] and [events[i][4] for i in stops] == ["scheduled"] * 2
    assert events[restarts[0] - 1][1] is EventKind.CALL  # recorded once the call returned
    facts = facts_of(run)
    first, second = stops
    windows = [facts.stopped_at(i) for i in range(len(events))]
    assert windows == [None] * (first + 1) + [first] * (restarts[0] - first) + [None] * (second - restarts[0]) + [
        second] * (len(events) - second - 1)
    submits = {e[2]: i for i, e in enumerate(events) if e[1] is EventKind.SUBMIT}
    # before the first stop: that stop; while stopped: the stop then; after the restart: the next one
    assert [facts.stop_for(submits[j]) for j in (0, 9, 1, 2)] == [first, first, second, second]
    assert facts.stop_for(None) == first


def test_without_a_restart_the_windows_read_as_the_first_stop() -> None:
    """A run with no restart has one stop: both readers answer as ``first_stop()`` did, at every index."""
    ops = (Submit(at_ms=0, job=1, spec=JobSpec("succeed", 20)), Stop(at_ms=10), Submit(at_ms=15, job=2), Stop(at_ms=20))
    run = run_schedule(restart_subjects.pool, Schedule(ops=ops))
    facts = facts_of(run)
    assert len(facts.stops) == 1 and EventKind.RESTART not in facts.by_kind
    stop = facts.stops[0]
    for index in range(len(facts.events) + 1):
        assert facts.stopped_at(index) == (stop if stop < index else None)
        assert facts.stop_for(index) == stop


@pytest.mark.parametrize(("name", "invariant"), [(name, invariant) for name, _, invariant in TWINS])
def test_the_restart_twins_are_caught_by_a_campaign(name: str, invariant: str, tmp_path: Any) -> None:
    result = campaign(f"tests.restart_subjects:{name}", seed=14, examples=400, tmp_path=tmp_path)
    # error_replaced's Stopped replaces a timeout's error too, which time.timeout names first when a job ran T
    named = {invariant, "time.timeout"} if name == "error_replaced" else {invariant}
    assert result.error is None and len(result.findings) == 1 and result.findings[0].violation.invariant in named


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pool", "queued", "pool_service", "hedged"])
def test_the_correct_restartable_pools_stay_clean(name: str, tmp_path: Any) -> None:
    result = campaign(f"tests.restart_subjects:{name}", seed=14, examples=300, tmp_path=tmp_path, all_faults=True)
    assert result.error is None, result.error
    assert result.findings == [], [f.violation.message for f in result.findings]
