"""``Target(gives_up_after_retries=True)``: ``time.gave_up_early`` (review 11, finding 6's leftover).

``retries`` promises at most ``retries + 1`` attempts; the declaration promises the subject makes them
all before it gives a job up. A retry queue dead-lettering one attempt too soon, and a dead-letter queue
whose ``redrive()`` keeps the old attempt count, are caught; the correct queue, its exact declaration
and its redriving version stay clean; what ends attempts early for a reason (a stop, a caller's cancel,
an error that is not the job's own) is no alarm; a declaration that promises nothing is refused."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from harness import Call, Cancel, JobSpec, Schedule, Stop, Submit, Target, TargetError, check, run_schedule
from harness.cli.main import main
from scenarios.review.round11 import targets

from review_campaigns import assert_stays_clean

PACKAGE = "scenarios.review.round11.targets"
RAISE = JobSpec(kind="raise")


def _violations(target: Target, *ops: Any) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


def _names(target: Target, *ops: Any) -> list[str]:
    return [name for name, _ in _violations(target, *ops)]


def test_a_queue_giving_up_one_attempt_too_soon_is_caught() -> None:
    """The first run: the caller fails with its job's error (DeadLettered unwrapped) after 2 of 3 attempts."""
    ops = (Submit(0, 0, RAISE),)
    assert _violations(targets.dlq_one_attempt_too_few, *ops) == [(
        "time.gave_up_early",
        "job 0's caller failed at 100ms with its attempt 1's InjectedError after 2 attempts; gives_up_after_retries "
        "promises 3 (1 + 2 retries) before the job is given up",
    )]
    assert _names(targets.dlq_ok, *ops) == []
    undeclared = dataclasses.replace(targets.dlq_one_attempt_too_few, gives_up_after_retries=False)
    assert _names(undeclared, *ops) == []  # retries alone promises only at most 3: the old verdict


def test_a_redrive_keeping_the_attempt_count_is_caught() -> None:
    """Finding 6's twin: the redriven job is dead-lettered again after one attempt; nothing scheduled is
    left when the run drains, so no retry can come."""
    ops = (Submit(0, 0, RAISE), Call(at_ms=300, operation="redrive"))
    assert _violations(targets.dlq_redrive_keeps_attempts_op, *ops) == [(
        "time.gave_up_early",
        "job 0's run since a redrive (attempt 3) was left after 1 failed attempt, with nothing scheduled when the "
        "run drained at 300ms; gives_up_after_retries promises 3 (1 + 2 retries) before the job is given up",
    )]
    assert _names(targets.dlq_redrive_ok, *ops) == []


def test_a_stop_or_cancel_ends_the_attempts_legitimately() -> None:
    """A stop() before the answer (the caller fails with QueueStopped, or its job's error is no give-up),
    and a cancel after the redrive, excuse a short run; so does a retry that waits for a slot a hung job holds."""
    few, keeps = targets.dlq_one_attempt_too_few, targets.dlq_redrive_keeps_attempts_op
    assert _names(few, Submit(0, 0, RAISE), Stop(at_ms=50)) == []
    assert _names(few, Submit(0, 0, RAISE), Cancel(at_ms=50, job=0)) == []
    assert _names(keeps, Submit(0, 0, RAISE), Call(at_ms=300, operation="redrive"), Stop(at_ms=300)) == []
    assert _names(keeps, Submit(0, 0, RAISE), Call(at_ms=300, operation="redrive"), Cancel(at_ms=300, job=0)) == []
    hung = (Submit(0, 0, RAISE), Submit(0, 1, JobSpec(kind="hang")), Submit(0, 2, JobSpec(kind="hang")),
            Call(at_ms=300, operation="redrive"))
    assert _names(keeps, *hung) == []  # the retry could still be waiting for a slot: no alarm


def test_only_the_jobs_own_error_is_a_give_up() -> None:
    """A caller failed with an error that is not its job's own (the subject's, a timeout's, a refusal's)
    after one attempt is not judged: the subject gave up for a reason of its own."""

    class Refusing:
        def __init__(self, clock: Any) -> None:
            self.clock = clock

        def submit(self, job: Any) -> Any:
            from twisted.internet.defer import maybeDeferred

            return maybeDeferred(job).addErrback(lambda _f: (_ for _ in ()).throw(RuntimeError("circuit open")))

    target = Target(build=Refusing, retries=2, gives_up_after_retries=True, cancellable=False)
    assert "time.gave_up_early" not in _names(target, Submit(0, 0, RAISE))


@pytest.mark.parametrize("declared, problem", [
    ({}, "got retries=None"),
    ({"retries": 0}, "got retries=0"),
    ({"retries": math.inf, "backoff_ms": (0, 10)}, "got retries=inf"),
    ({"retries": 2, "kind": "periodic", "interval_ms": 10}, "on a periodic Target"),
])
def test_a_declaration_that_promises_nothing_is_refused(declared: dict[str, Any], problem: str) -> None:
    with pytest.raises(TargetError) as caught:
        Target(build=lambda clock: None, gives_up_after_retries=True, **declared)
    message = str(caught.value)
    assert "\n" not in message and "gives_up_after_retries" in message and "declare retries=N" in message
    assert problem in message


def test_background_retries_are_refused() -> None:
    """retries_after_answer answers the caller before its retries end (scenarios.background_retry): the
    first error is no give-up, and the two declarations contradict."""
    with pytest.raises(TargetError, match="declare one of them"):
        Target(build=lambda clock: None, retries=2, retries_after_answer=True, gives_up_after_retries=True)


def test_a_non_bool_is_refused() -> None:
    with pytest.raises(TargetError, match="gives_up_after_retries must be True or False, got 'yes'"):
        Target(build=lambda clock: None, retries=2, gives_up_after_retries="yes")  # type: ignore[arg-type]


def test_the_cli_refuses_a_bad_declaration_in_one_line(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    (tmp_path / "bad_give_up.py").write_text(
        "from harness import Target\n"
        "class Pool:\n"
        "    def __init__(self, clock):\n"
        "        pass\n"
        "    def submit(self, job):\n"
        "        return job()\n"
        "bad = Target(build=Pool, gives_up_after_retries=True)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["fuzz", "bad_give_up:bad", "--max-examples", "5", "--no-regressions", "--report-dir", str(tmp_path / "rep")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1 and "gives_up_after_retries" in err, err


@pytest.mark.parametrize("name", ["dlq_exact", "dlq_redrive_ok"])  # dlq_ok: test_review_round11 (CORRECT)
def test_the_correct_queues_stay_clean(name: str, tmp_path: Path) -> None:
    assert_stays_clean(f"{PACKAGE}:{name}", tmp_path, examples=150)


# The twins' campaigns: tests/test_review_round11.py (BUGGY).


def test_a_whole_request_deadline_ends_the_attempts_legitimately(monkeypatch: Any) -> None:
    """The retrying client of review 1 (timeout_ms from "submit", a jittered backoff) gives up with the
    last error when its next retry's delay would pass the deadline (attempt 0 failing at 990ms, the deadline
    at 1000ms, a retry's delay up to 50ms), or after a wall-clock jump moved its deadline; neither is an
    early give-up. Without the excuse (a mutant) both are."""
    from harness import Jump
    from harness.invariants import gave_up
    from scenarios.review import targets as round1

    client = dataclasses.replace(round1.retrying_ok, gives_up_after_retries=True)
    late = (Submit(0, 0, JobSpec(kind="fail", after_ms=990)),)
    jumped = (Submit(0, 0, JobSpec(kind="fail", after_ms=10)), Jump(at_ms=5, delta_ms=2000))
    assert _names(client, *late) == [] and _names(client, *jumped) == []
    monkeypatch.setattr(gave_up, "_past_deadline", lambda *args: False)
    assert _names(client, *late) == ["time.gave_up_early"] and _names(client, *jumped) == ["time.gave_up_early"]
