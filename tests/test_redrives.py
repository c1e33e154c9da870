"""``Operation(redrives=True)``: a job started afresh once its caller had its answer (review 11, finding 6).

A dead-letter queue's ``redrive()`` runs dead-lettered jobs again with a fresh attempt count: their
attempts after the call are a new run, counted on their own by ``time.retries`` (and ``time.backoff``: its
first attempt is no retry). A redrive that runs a job more than ``retries + 1`` times, or runs a job that
succeeded, is still caught; the declaration is refused where it makes no sense."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import pytest
from twisted.internet.defer import Deferred

from harness import Call, JobSpec, Operation, Schedule, Stop, Submit, Target, TargetError, check, run_schedule
from scenarios.review.round11 import dlq, targets

from review_campaigns import campaign


class RedriveTwice(dlq.RetryQueue):
    """BUG: redrive() submits each dead-lettered job twice: it runs twice the attempts of a fresh job."""

    def redrive(self) -> list[Deferred[Any]]:
        jobs, self.dlq = self.dlq, []
        return [self.submit(job.fn) for job in jobs for _ in (0, 1)]


class RedriveEverything(dlq.RetryQueue):
    """BUG: redrive() resubmits every job ever submitted, those that succeeded too."""

    def submit(self, fn: Callable[[], Any]) -> Deferred[Any]:
        self.__dict__.setdefault("seen", []).append(fn)
        return super().submit(fn)

    def redrive(self) -> list[Deferred[Any]]:
        seen, self.dlq = list(self.__dict__.get("seen", [])), []
        return [self.submit(fn) for fn in seen]


redrive_twice = targets._dlq(RedriveTwice, "retry queue: redrive() runs each job twice", redrive=True)
redrive_everything = targets._dlq(RedriveEverything, "retry queue: redrive() reruns succeeded jobs", redrive=True)


def _job(job: int, kind: str = "succeed", after_ms: int = 0, at_ms: int = 0) -> Submit:
    return Submit(at_ms=at_ms, job=job, spec=JobSpec(kind=kind, after_ms=after_ms))


def _violations(target: Any, *ops: Any) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


def test_redriven_job_runs_afresh() -> None:
    """Job 0 is dead-lettered at 300ms, redriven at once: three fresh attempts (300ms, 400ms, 600ms), the
    first no retry, the others within the backoff of their run's retries 1 and 2 (before: time.retries,
    "attempted 4 times")."""
    ops = (_job(0, "raise"), Call(at_ms=300, operation="redrive"), Stop(at_ms=2000))
    assert _violations(targets.dlq_redrive_ok, *ops) == []
    # the same attempts without the declaration: still the count's
    undeclared = dataclasses.replace(
        targets.dlq_redrive_ok, operations={"redrive": Operation(targets.redrive_all)})
    assert [v for v, _ in _violations(undeclared, *ops)][:1] == ["time.retries"]


def test_redriven_run_over_its_count_is_caught() -> None:
    ops = (_job(0, "raise"), Call(at_ms=300, operation="redrive"), Stop(at_ms=2000))
    found = dict(_violations(redrive_twice, *ops))
    assert found["time.retries"] == (
        "job 0 was attempted 6 times since a redrive started it afresh (attempt 3); at most 3 (1 + 2 retries) "
        "were declared"), found


def test_succeeded_job_run_again_is_caught() -> None:
    ops = (_job(0), Call(at_ms=50, operation="redrive"), Stop(at_ms=100))
    assert _violations(targets.dlq_redrive_ok, *ops) == []
    found = dict(_violations(redrive_everything, *ops))
    assert found["time.retries"] == "job 0 was retried (attempt 1) although attempt 0 succeeded", found


def test_a_job_still_retried_is_not_started_afresh() -> None:
    """A redrive called while job 0 waits for its retry does not make that retry a fresh start: the caller
    has no answer yet, the count goes on (the twin that makes one attempt too many is still caught)."""
    ops = (_job(0, "raise"), Call(at_ms=50, operation="redrive"), Stop(at_ms=2000))
    assert _violations(targets.dlq_redrive_ok, *ops) == []
    assert _violations(redrive_twice, *ops) == []  # nothing dead-lettered at 50ms: nothing redriven
    too_many = targets._dlq(dlq.RetryQueueOneAttemptTooMany, "k+1 attempts, with redrive()", redrive=True)
    found = dict(_violations(too_many, *ops))
    assert found["time.retries"] == "job 0 was attempted 4 times; at most 3 (1 + 2 retries) were declared", found


def test_refused_where_it_makes_no_sense() -> None:
    with pytest.raises(TargetError, match=r"^Operation redrives must be True or False, got 'yes'$"):
        Operation(lambda s: None, redrives="yes")  # type: ignore[arg-type]
    with pytest.raises(TargetError, match=r"declares redrives=True .* a periodic Target has no jobs for; drop redrives=True$"):
        Target(build=lambda clock, work: object(), kind="periodic", interval_ms=100,
               operations={"redrive": Operation(lambda s: None, redrives=True)})


def test_campaigns_both_ways(tmp_path: Path) -> None:
    """The correct queue with redrive() stays clean over a campaign; the twin that redrives twice is caught
    by time.retries."""
    clean = campaign("scenarios.review.round11.targets:dlq_redrive_ok", seed=1, examples=150, tmp_path=tmp_path / "ok")
    assert clean.error is None and clean.findings == [], [f.violation.message for f in clean.findings]
    caught = campaign("redrive_twice", seed=1, examples=300, tmp_path=tmp_path / "bug", target=redrive_twice)
    assert [f.violation.invariant for f in caught.findings] == ["time.retries"]


def test_a_second_redrive_while_the_redriven_job_is_retried_starts_nothing() -> None:
    """Two redrives at 300ms: the second finds the DLQ empty, job 0's run goes on (retries at 400ms and
    600ms, within the backoff of retries 1 and 2: clean; before, the 400ms retry was taken for a fresh start
    and the 600ms one for its retry 1, 'past the declared backoff of 100ms')."""
    ops = (_job(0, "raise"), Call(at_ms=300, operation="redrive"), Call(at_ms=300, operation="redrive"))
    assert _violations(targets.dlq_redrive_ok, *ops) == []


def test_a_job_redriven_twice_runs_afresh_twice() -> None:
    """Dead-lettered at 300ms, redriven, dead-lettered again at 600ms, redriven at 700ms: three runs of three."""
    ops = (_job(0, "raise"), Call(at_ms=300, operation="redrive"), Call(at_ms=700, operation="redrive"),
           Stop(at_ms=2000))
    assert _violations(targets.dlq_redrive_ok, *ops) == []
    found = dict(_violations(redrive_twice, *ops))
    assert "time.retries" in found, found
