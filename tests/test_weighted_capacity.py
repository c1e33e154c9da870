"""``Target(capacity=C, weight=...)``: jobs that take different shares of the subject (review 11, finding 5).

A readers-writer lock's readers share it, its writer holds it alone: with a writer weighing the whole capacity
and a reader 1, the wait rules of ``timeout_from="wait"`` (``harness.invariants.wait_slots``) weigh the jobs
holding slots, and under ``order`` a waiter is also kept out by a waiter ahead of it that is (head of line:
writer preference). The lock's own cases are in ``test_review_round11.py``; here: the declaration's refusals
(at ``Target``, from the command line, through the plugin), and a retry waiting for room (``time.backoff``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from twisted.internet import defer

from harness import JobSpec, Schedule, Submit, Target, TargetError, check, run_schedule
from harness.cli.main import main
from scenarios.review.round11 import targets

from review_campaigns import campaign
from test_retry_slot_wait import retry_not_pumped

pytest_plugins = ["pytester"]

WAIT = {"timeout_ms": 100, "timeout_from": "wait"}


def _target(**kw: Any) -> Target:
    return Target(build=lambda clock: None, **kw)


@pytest.mark.parametrize(
    ("declared", "said"),
    [
        ({"weight": lambda key, priority: 1, **WAIT}, "Target weight is a job's share of capacity: declare capacity=N as well"),
        ({"capacity": 2, "weight": lambda key, priority: 3, **WAIT},
         "the target's weight(key, priority) returned 3 for key 0, priority 0, above capacity (2): such a job could never run"),
        ({"capacity": 2, "weight": lambda key, priority: 0.5, **WAIT},
         "the target's weight(key, priority) returned 0.5 for key 0, priority 0; it must return an integer from 1 to capacity (2)"),
        ({"capacity": 2, "weight": lambda key, priority: True, **WAIT}, "returned True for key 0, priority 0; it must return an integer"),
        ({"capacity": 2, "weight": lambda key, priority: 0, **WAIT}, "returned 0 for key 0, priority 0, below 1"),
        ({"capacity": 2, "weight": lambda key, priority: [1][priority], "menu": {"priorities": 2}, **WAIT},
         "the target's weight(key, priority) raised IndexError: list index out of range for key 0, priority 1"),
        ({"capacity": 2, "weight": 2, **WAIT}, "Target weight must be a function of a job's (key, priority)"),
        ({"capacity": 2, "weight": lambda key, priority: 1}, "Target weight is read only by the rules of a wait for a slot"),
        ({"capacity": 2, "weight": lambda key, priority: 1, "slot_timers": (print,), **WAIT},
         "Target slot_timers hold one slot each, which a weighted capacity cannot count"),
        ({"capacity": 2, **WAIT}, "declare limit=N as well, or drop capacity"),  # unchanged without weight
    ],
)
def test_a_bad_weight_is_one_line_at_target(declared: dict[str, Any], said: str) -> None:
    with pytest.raises(TargetError) as refused:
        _target(**declared)
    assert said in str(refused.value) and "\n" not in str(refused.value), str(refused.value)


def test_weights_are_asked_once_per_key_and_priority() -> None:
    asked: list[tuple[int, int]] = []

    def weight(key: int, priority: int) -> int:
        asked.append((key, priority))
        return 4 if priority else 1

    target = _target(capacity=4, weight=weight, keys=2, menu={"priorities": 2}, **WAIT)
    assert sorted(asked) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert (target.weight_of(1, 1), target.weight_of(0, 0), target.fill) == (4, 1, 1)
    assert len(asked) == 4
    assert _target(limit=3, **WAIT).weight_of(0, 5) == 1  # no weight: every job weighs 1


BAD_MODULE = """
from harness import Target
heavy = Target(build=lambda clock: None, capacity=2, weight=lambda key, priority: 3, timeout_ms=100,
               timeout_from="wait")
"""


def test_a_bad_weight_from_the_command_line_exits_2_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "weighed.py").write_text(BAD_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["fuzz", "weighed:heavy", "--max-examples", "5", "--no-regressions"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("harness: error: importing 'weighed' for target 'weighed:heavy' raised TargetError at weighed.py, "
                          "line 3: the target's weight(key, priority) returned 3 for key 0, priority 0, above capacity (2)"), err


def test_a_bad_weight_through_the_plugin_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(weighed=BAD_MODULE)
    pytester.makepyfile(
        """
        from harness.pytest import fuzz

        @fuzz("weighed:heavy")
        def test_lock():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:twisted")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["harness: @fuzz test test_lock: importing 'weighed' * line *: the target's weight(key, "
                                 "priority) returned 3 for key 0, priority 0, above capacity (2)*"])
    assert "Traceback" not in result.stdout.str()


# -- a retry waiting for room (time.backoff), the retry queue of test_retry_slot_wait.py weighed ----------
def _job(job: int, kind: str = "succeed", after_ms: int = 0, at_ms: int = 0) -> Submit:
    return Submit(at_ms=at_ms, job=job, spec=JobSpec(kind=kind, after_ms=after_ms))


def _weighed(target: Target, capacity: int) -> Target:
    """The retry queue (limit 2), each job weighing 1 of ``capacity``."""
    return dataclasses.replace(target, capacity=capacity, weight=lambda key, priority: 1)


def _found(target: Target, *ops: Any) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=ops)))]


@pytest.mark.parametrize("capacity", [2, 3])
def test_a_retry_waiting_for_room_is_clean(capacity: int) -> None:
    """Job 0's retry is due at 100ms beside jobs 1 and 2 (a weight of 2): with a capacity of 2 it has no room,
    with 3 the limit of 2 still counts it out; it starts at 470ms, legitimately."""
    assert _found(_weighed(targets.dlq_exact, capacity), _job(0, "raise"), _job(1, "hang"), _job(2, after_ms=470)) == []


def test_a_retry_left_beside_room_is_caught() -> None:
    """Only job 1 holds a slot when the retry is due at 100ms: the twin leaves it queued until 400ms."""
    ops = (_job(0, "raise"), _job(1, "hang"), _job(2, at_ms=400, after_ms=10))
    assert _found(_weighed(targets.dlq_exact, 2), *ops) == []
    (invariant, message), *_ = _found(_weighed(retry_not_pumped, 2), *ops)
    assert invariant == "time.backoff"
    assert ("a slot was free from 100ms to 400ms (a weight of 1 held of the declared capacity of 2, room for its "
            "weight of 1): a retry past its backoff") in message, message


# -- order="priority": the waiters ahead are those of a higher priority ------------------------------------
class WeightedSemaphore:
    """A weighted semaphore (capacity 4: a priority-1 job takes 4, a priority-0 job 1) serving its waiters by
    priority, then submission, head of line first (one that does not fit keeps the rest out), each waiter
    failing with ``defer.TimeoutError`` 300 ms after it queued."""

    def __init__(self, clock: Any, pump_after_timeout: bool = True) -> None:
        self.clock, self.free, self.queue, self.pump_after_timeout = clock, 4, [], pump_after_timeout
        self.seq = 0

    def submit(self, job: Any, priority: int) -> Any:
        weight, self.seq = 4 if priority else 1, self.seq + 1
        waiter: list[Any] = [(-priority, self.seq), weight, defer.Deferred(lambda _: self._withdraw(waiter)), None]
        waiter[3] = self.clock.callLater(0.3, self._timed_out, waiter)
        self.queue.append(waiter)
        self.queue.sort(key=lambda w: w[0])
        self._pump()

        def run(_: None) -> Any:
            def release(result: Any) -> Any:
                self.free += weight
                self._pump()
                return result
            return defer.maybeDeferred(job).addBoth(release)

        return waiter[2].addCallback(run)

    def _withdraw(self, waiter: list[Any]) -> None:
        """A waiter's caller cancelled: it leaves the queue, and lets in whoever it kept out."""
        self.queue.remove(waiter)
        waiter[3].cancel()
        self._pump()

    def _timed_out(self, waiter: list[Any]) -> None:
        self.queue.remove(waiter)
        waiter[2].errback(defer.TimeoutError())
        if self.pump_after_timeout:
            self._pump()

    def _pump(self) -> None:
        while self.queue and self.queue[0][1] <= self.free:
            waiter = self.queue.pop(0)
            self.free -= waiter[1]
            waiter[3].cancel()
            waiter[2].callback(None)


def _semaphore(pump_after_timeout: bool = True, order: str = "priority") -> Target:
    return Target(build=lambda clock: WeightedSemaphore(clock, pump_after_timeout),
                  submit=lambda subject, job, priority: subject.submit(job, priority),
                  order=order, timeout_ms=300, timeout_from="wait", capacity=4,
                  weight=lambda key, priority: 4 if priority else 1, menu={"priorities": 2})


def _at(job: int, at_ms: int, priority: int = 0, after_ms: int = 0) -> Submit:
    return Submit(at_ms=at_ms, job=job, spec=JobSpec(kind="succeed", after_ms=after_ms), priority=priority)


#: Job 0 (weight 1) holds the semaphore; job 1 (weight 4) waits for it; job 2 (weight 1) queues behind job 1 at
#: 50ms, job 3 (weight 4, priority 1) at 100ms, ahead of job 2 by its priority. Job 1 times out at 300ms: job 3,
#: now first, does not fit, and keeps job 2 out until job 2's own timeout at 350ms.
OVERTAKEN = (_at(0, 0, after_ms=1000), _at(1, 0, priority=1), _at(2, 50), _at(3, 100, priority=1))


def test_a_waiter_behind_a_higher_priority_one_has_no_room() -> None:
    assert _found(_semaphore(), *OVERTAKEN) == []
    # Declared fifo (job 2 ahead of job 3), job 2 had room from 300ms: the priority order is what excuses it.
    [(invariant, message)] = _found(_semaphore(order="fifo"), *OVERTAKEN)
    assert invariant == "time.timeout" and "job 2's wait timed out at 350ms, but it had had room to run since 300ms" in message


def test_a_waiter_left_beside_room_by_priority_is_caught() -> None:
    """Without job 3, job 2 should enter at 300ms, as job 1 times out: the twin that does not pump after a
    timeout leaves it waiting until its own timeout at 350ms."""
    ops = OVERTAKEN[:3]
    assert _found(_semaphore(), *ops) == []
    [(invariant, message)] = _found(_semaphore(pump_after_timeout=False), *ops)
    assert invariant == "time.timeout" and "job 2's wait timed out at 350ms, but it had had room to run since 300ms" in message


@pytest.mark.slow
def test_the_semaphore_both_ways_over_a_campaign(tmp_path: Path) -> None:
    """The correct semaphore stays clean, the twin is caught by time.timeout alone."""
    clean = campaign("test_weighted_capacity:semaphore", seed=1, examples=600, tmp_path=tmp_path, target=_semaphore())
    assert clean.error is None and clean.findings == [] and clean.examples == 600, [f.violation.message for f in clean.findings]
    twin = campaign("test_weighted_capacity:twin", seed=1, examples=600, tmp_path=tmp_path,
                    target=_semaphore(pump_after_timeout=False))
    assert [f.violation.invariant for f in twin.findings] == ["time.timeout"]
