"""A retry that, once its backoff is over, waits for a free slot like a new job (review 11, finding 2).

``time.backoff`` holds a retry to its backoff's high end (plus the clock's lateness), except that on a
target declaring ``limit`` (or ``capacity``) a retry past it may have waited for a slot: legitimate only
while the slots stayed full from the backoff's end until the retry started. A retry left waiting beside a
free slot is still caught, with the span the slot was free named."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness import Cancel, JobSpec, Schedule, Submit, check, run_schedule
from scenarios.review.round11 import dlq, targets

from review_campaigns import campaign


class RetryQueueRetryNotPumped(dlq.RetryQueue):
    """BUG: a retry whose backoff is over is put back in the queue, but nothing starts it: it waits for the
    next submission or end of a job, beside a free slot."""

    def _retry(self, job: Any) -> None:
        job.timer = None
        self._waiting.discard(job)
        job.state = "queued"
        self._queue.append(job)


retry_not_pumped = targets._dlq(RetryQueueRetryNotPumped, "retry queue: a due retry waits for the next pump",
                                backoff=targets.dlq_backoff_exact)


def _job(job: int, kind: str = "succeed", after_ms: int = 0, at_ms: int = 0) -> Submit:
    return Submit(at_ms=at_ms, job=job, spec=JobSpec(kind=kind, after_ms=after_ms))


def _violations(target: Any, *ops: Any) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


def test_retry_waiting_for_full_slots_is_clean() -> None:
    """Job 0's retry is due at 100ms with both slots busy (job 1 hangs, job 2 ends at 470ms): it starts at
    470ms, 370ms past its backoff, legitimately (before: time.backoff, "470ms ... 100ms to 100ms")."""
    assert _violations(targets.dlq_exact, _job(0, "raise"), _job(1, "hang"), _job(2, after_ms=470)) == []


def test_retry_beside_a_free_slot_is_caught() -> None:
    """Only job 1 runs when the retry is due at 100ms: the bug leaves it queued until job 2's submission at
    400ms; the correct queue starts it at 100ms."""
    ops = (_job(0, "raise"), _job(1, "hang"), _job(2, at_ms=400, after_ms=10))
    assert _violations(targets.dlq_exact, *ops) == []
    # (its retry 2 is never started: errors.poison, the same bug's other symptom)
    (invariant, message), *_ = _violations(retry_not_pumped, *ops)
    assert invariant == "time.backoff"
    assert "job 0 retry 1 started 400ms after attempt 0 ended, past the declared backoff of 100ms to 100ms" in message
    assert "a slot was free from 100ms to 400ms (1 running of the declared limit of 2)" in message


def test_slot_freed_during_the_wait_and_left_free_is_caught() -> None:
    """The slots are full when job 0's retry is due at 100ms (jobs 1 and 2 run), then job 2's caller cancels
    it at 200ms: the correct queue starts the retry in that instant; the twin that leaks a cancelled job's
    slot leaves it free, and the retry waits until job 1 ends at 500ms."""
    ops = (_job(0, "raise"), _job(1, after_ms=500), _job(2, "hang"), Cancel(at_ms=200, job=2))
    assert _violations(targets.dlq_exact, *ops) == []
    leaks = dataclasses.replace(targets.dlq_cancel_leaks_slot, backoff_ms=targets.dlq_backoff_exact)
    found = dict(_violations(leaks, *ops))
    assert found["time.backoff"] == (
        "job 0 retry 1 started 500ms after attempt 0 ended, past the declared backoff of 100ms to 100ms, and a "
        "slot was free from 200ms to 500ms (1 running of the declared limit of 2): a retry past its backoff may "
        "wait only for a slot, not beside a free one"), found


def test_later_retry_judged_on_its_own() -> None:
    """Retry 1 waits for full slots (100ms to 200ms, legitimate); retry 2, due at 400ms beside a free slot,
    waits for the twin's next pump, job 3's submission at 600ms."""
    ops = (_job(0, "raise"), _job(1, "hang"), _job(2, after_ms=200), _job(3, at_ms=600, after_ms=10))
    assert _violations(targets.dlq_exact, *ops) == []
    (invariant, message), *_ = _violations(retry_not_pumped, *ops)
    assert invariant == "time.backoff"
    assert message.startswith("job 0 retry 2 started 400ms after attempt 1 ended"), message
    assert "a slot was free from 400ms to 600ms" in message


def test_without_a_limit_the_high_end_holds() -> None:
    """No ``limit`` declared, no slot to wait for: a retry past the high end is judged as before."""
    unbounded = dataclasses.replace(targets.dlq_exact, limit=None)
    [(invariant, message)] = _violations(unbounded, _job(0, "raise"), _job(1, "hang"), _job(2, after_ms=470))
    assert invariant == "time.backoff"
    assert message == "job 0 retry 1 started 470ms after attempt 0 ended; the declared backoff is 100ms to 100ms"


def test_campaigns_both_ways(tmp_path: Path) -> None:
    """The exact declaration stays clean over a campaign; the twin is caught by time.backoff (and by
    errors.poison, the same bug's other symptom: a retry never started before the drain)."""
    clean = campaign("scenarios.review.round11.targets:dlq_exact", seed=1, examples=150, tmp_path=tmp_path / "ok")
    assert clean.error is None and clean.findings == [], [f.violation.message for f in clean.findings]
    caught = campaign("retry_not_pumped", seed=1, examples=300, tmp_path=tmp_path / "bug", target=retry_not_pumped,
                      max_failures=None)
    assert {f.violation.invariant for f in caught.findings} == {"time.backoff", "errors.poison"}
