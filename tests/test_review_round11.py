"""Eleventh outside-user review (docs/reviews/outside-user-11.md): four components written blind (a
readers-writer lock with writer preference, an ordered-results executor, an adaptive poller, a retry
queue with a dead-letter queue), with targets written from the user documentation alone. Each correct
target stays clean over a bounded campaign; each buggy twin is caught, naming the invariant its bug
breaks; what the harness found in my "correct" code stays fixed; the findings that need a harness
change are strict xfails, which pass once the finding is fixed. The long campaigns are in the review
page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import Call, ClockPolicy, JobSpec, Schedule, Start, Stop, Submit, check, load_target, run_schedule
from harness.pytest import fuzz
from scenarios.review.round11 import poller, targets

from review_campaigns import assert_caught_alone, assert_caught_as, assert_stays_clean, campaign

PACKAGE = "scenarios.review.round11.targets"
ROOT = Path(__file__).resolve().parent.parent

CORRECT = ("rwlock_ok", "rwlock_ok_as_first_written", "ordered_ok", "poller_ok", "dlq_ok")

# twin -> the invariant its bug breaks (first reported, seed 1, mixed strategy; each within 30 examples)
BUGGY = {
    "rwlock_timer_leak": "errors.escaped",
    "rwlock_stuck_behind_writer": "time.timeout",  # finding 5, fixed: the lock's weights
    "rwlock_stuck_as_first_written": "user.readers_not_stranded",
    "rwlock_writer_off_by_one": "user.writer_alone",
    "ordered_timeout_leaks_slot": "completion.deadline",
    "ordered_cancel_keeps_timer": "concurrency.limit",
    "ordered_skips_ahead": "user.answered_in_submission_order",
    "poller_stop_leaves_poll": "leaks.work",
    "poller_deadline_leak": "time.timeout",
    "poller_backoff_overshoot": "time.backoff",
    "dlq_one_attempt_too_many": "time.retries",
    "dlq_cancel_leaks_slot": "cancellation.releases",
    # cancel15: gives_up_after_retries declared on every retry queue (finding 6's leftover)
    "dlq_one_attempt_too_few": "time.gave_up_early",
    "dlq_redrive_keeps_attempts_op": "time.gave_up_early",
}

# One bug, several true symptoms on other seeds.
ACCEPTED: dict[str, set[str]] = {}


def _violations(target: Any, *ops: Any, clock: ClockPolicy | None = None) -> list[str]:
    schedule = Schedule(ops=tuple(ops)) if clock is None else Schedule(ops=tuple(ops), clock=clock)
    return [v.invariant for v in check(run_schedule(target, schedule))]


def _job(job: int, kind: str = "succeed", after_ms: int = 0, at_ms: int = 0, **kw: Any) -> Submit:
    return Submit(at_ms=at_ms, job=job, spec=JobSpec(kind=kind, after_ms=after_ms), **kw)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_component_is_clean(name: str, tmp_path: Path) -> None:
    assert_stays_clean(f"{PACKAGE}:{name}", tmp_path, examples=60)


@pytest.mark.parametrize("name, invariant", sorted(BUGGY.items()))
def test_buggy_twin_is_caught(name: str, invariant: str, tmp_path: Path) -> None:
    assert_caught_alone(f"{PACKAGE}:{name}", invariant, tmp_path, examples=300)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUGGY))
def test_buggy_twin_is_caught_on_another_seed(name: str, tmp_path: Path) -> None:
    assert_caught_as(f"{PACKAGE}:{name}", ACCEPTED.get(name, {BUGGY[name]}), tmp_path, seed=2, examples=1000)


# -- what the harness found in my "correct" code ---------------------------------------------------------
def test_executor_timeout_survives_a_raising_canceller() -> None:
    """A job whose canceller raises, cancelled at its timeout, no longer strands the items behind it
    (time.timeout: item 1 was answered only at the next submission)."""
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=340, canceller_raises=True)),
           _job(1, after_ms=340), _job(2, at_ms=301))
    lifo = ClockPolicy(tie_break="lifo")
    assert _violations(targets.ordered_as_first_written, *ops, clock=lifo) == ["time.timeout"]
    assert _violations(targets.ordered_ok, *ops, clock=lifo) == []


def test_poll_now_during_a_poll_polls_again_after_it() -> None:
    """time.on_demand caught the poller ignoring a poll_now() made while a poll ran."""
    ops = (Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=50)), Call(at_ms=0, operation="poll_now"),
           Stop(at_ms=100))
    assert _violations(targets.poller_as_first_written, *ops) == ["time.on_demand"]
    assert _violations(targets.poller_ok, *ops) == []


# -- the CLI and the plugin ------------------------------------------------------------------------------
@pytest.mark.slow
def test_saved_failure_replays_exactly(tmp_path: Path) -> None:
    """A twin's saved file replays to the same trace from the command line, as the docs say."""
    result = campaign(f"{PACKAGE}:poller_deadline_leak", seed=1, examples=300, tmp_path=tmp_path)
    [finding] = result.findings
    replay = subprocess.run([sys.executable, "-m", "harness", "replay", str(finding.path)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert replay.returncode == 1, replay.stderr
    assert "reproduced exactly" in replay.stdout
    assert "FAIL time.timeout" in replay.stdout


@fuzz(f"{PACKAGE}:ordered_ok", max_examples=40)
def test_ordered_executor_through_the_plugin() -> None:
    """The plugin's @fuzz on a correct round-11 target."""


# -- findings that need a harness change (strict xfails: they pass once the finding is fixed) -----------
def test_finding1_success_wait_is_declarable() -> None:
    """Fixed (fix11a): backoff_after_success="base" holds a success to backoff_ms(0) from its end."""
    ops = (Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)), Stop(at_ms=100))
    assert _violations(targets.poller_exact, *ops) == []


def test_finding2_retry_waiting_for_a_slot_is_declarable() -> None:
    """Fixed (fix11b): a retry past its backoff's high end is excused while the slots stay full."""
    ops = (_job(0, "raise"), _job(1, "hang"), _job(2, after_ms=470))
    assert _violations(targets.dlq_exact, *ops) == []


def test_finding3_on_demand_call_keeps_no_interval() -> None:
    """Fixed (fix11a): time.early leaves the call answering a calls_now request out of a backoff loop's waits."""
    ops = (Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)), Call(at_ms=0, operation="poll_now"),
           Stop(at_ms=0))
    assert _violations(targets.poller_poll_now_early, *ops) == []


def test_finding4_timed_out_call_counts_as_failed() -> None:
    """Fixed (fix11a): backoff_counts_timeouts=True counts a call the subject cancelled at its timeout."""
    ops = (Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=460), then=(JobSpec(kind="fail"),)),
           Stop(at_ms=1000))
    assert _violations(targets.poller_timeout_not_counted, *ops) == []


def test_finding5_stranded_reader_caught_by_the_user_invariant() -> None:
    """The control: my invariant replaying the lock's queue catches the stranded reader."""
    ops = (_job(0, after_ms=1000), _job(1, priority=1), _job(2))
    assert _violations(targets.rwlock_stuck_as_first_written, *ops) == ["user.readers_not_stranded"]
    assert _violations(targets.rwlock_ok_as_first_written, *ops) == []


#: The shrunk schedule of the stranded reader: reader 0 holds the lock, writer 1 waits behind it, reader 2 (1ms
#: later) behind the writer; the writer times out at 300ms, reader 2 should enter beside reader 0 then.
STRANDED = (_job(0, after_ms=1000), _job(1, priority=1), _job(2, at_ms=1))


def test_finding5_stranded_reader_is_caught() -> None:
    """Fixed (rwcap15): capacity=64 and a writer weighing 64, a reader 1: reader 2 had room from the writer's
    timeout at 300ms and timed out at 301ms (the same schedule all at 0ms, reader 2 timing out in the instant
    of the writer's, is no bug the wait rule may judge: a hand-over may come in that instant, after it)."""
    [violation] = check(run_schedule(targets.rwlock_stuck_builtin_only, Schedule(ops=STRANDED)))
    assert violation.invariant == "time.timeout"
    assert "job 2's wait timed out at 301ms, but it had had room to run since 300ms" in violation.message
    assert _violations(targets.rwlock_ok, *STRANDED) == []


@pytest.mark.parametrize("tie_break", ["fifo", "lifo"])
def test_finding5_a_reader_behind_a_waiting_writer_has_no_room(tie_break: str) -> None:
    """Writer preference is no false alarm: reader 2 times out (lifo: its timer fires before the writer's, in
    the same instant) while the writer queued before it still waits beside reader 0, which keeps it out (head
    of line under order="fifo"), though the capacity had room for its weight."""
    ops = (_job(0, after_ms=1000), _job(1, priority=1), _job(2))
    assert _violations(targets.rwlock_ok, *ops, clock=ClockPolicy(tie_break=tie_break)) == []


def test_finding5_a_reader_beside_a_running_writer_has_no_room() -> None:
    """Reader 2 times out while the writer holds the lock: the writer weighs all the capacity."""
    ops = (_job(0, after_ms=100), _job(1, priority=1, after_ms=1000), _job(2, at_ms=50))
    run = run_schedule(targets.rwlock_ok, Schedule(ops=ops))
    assert run.view.jobs[2].received is not None and run.view.jobs[2].received.error == "LockTimeout"
    assert check(run) == []


def test_finding7_the_note_names_the_raising_canceller(tmp_path: Path) -> None:
    """Fixed (cancel15): the shrunk failure of ordered_as_first_written needs both the lifo tie order and
    job 0's raising canceller; the note names both (it named only the tie order)."""
    [finding] = campaign(f"{PACKAGE}:ordered_as_first_written", seed=1, examples=2000, tmp_path=tmp_path).findings
    assert finding.record.invariant == "time.timeout"
    assert finding.record.message.endswith(
        "; it fails only with calls due at the same instant run in lifo order and with job 0's canceller raising"
        " at 300ms: without any one of these the schedule passes"
    )


def test_finding6_redrive_is_declarable() -> None:
    """Fixed (fix11b): redrive() declared Operation(redrives=True) starts the redriven job afresh."""
    ops = (_job(0, "raise"), Call(at_ms=300, operation="redrive"), Stop(at_ms=300))
    assert _violations(targets.dlq_redrive_ok, *ops) == []


def test_finding6_redrive_keeping_the_count_is_caught() -> None:
    """Fixed (cancel15): the twin that dead-letters a redriven job after one attempt is time.gave_up_early
    (gives_up_after_retries); it passed as the correct queue did before."""
    ops = (_job(0, "raise"), Call(at_ms=300, operation="redrive"))
    assert _violations(targets.dlq_redrive_keeps_attempts_op, *ops) == ["time.gave_up_early"]
    assert _violations(targets.dlq_redrive_ok, *ops) == []



# -- fix11a: the declarations of findings 1 and 4 are load-bearing; a twin of each is caught ----------------
_SUCCESS_THEN_STOP = (Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)), Stop(at_ms=100))
_TIMEOUT_THEN_FAIL = (Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=460), then=(JobSpec(kind="fail"),)),
                      Stop(at_ms=1000))


def test_success_waits_declared_by_the_count_after_a_success() -> None:
    """Finding 1's schedule: declared with the default count the correct poller is early after a success
    (backoff_ms(1) = 200ms); with backoff_after_success="base" it is clean."""
    assert _violations(targets.poller_success_waits_retry_1, *_SUCCESS_THEN_STOP) == ["time.early"]
    assert _violations(targets.poller_ok, *_SUCCESS_THEN_STOP) == []


class _PollerNoSnapBack(poller.AdaptivePoller):
    """BUG: a non-empty batch does not snap the interval back to the base."""

    def _got(self, items: list[Any], d: Any) -> None:
        if self._settle(d):
            self._back_off()
            self._schedule()


def test_base_wait_after_a_success_has_a_high_end() -> None:
    """With backoff_after_success="base" time.backoff judges the wait after a success too: a poller
    that does not snap back after a batch is caught on the first success."""
    twin = targets._poller(_PollerNoSnapBack, "poller: no snap back after a batch")
    ops = (Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)), Stop(at_ms=300))
    assert _violations(twin, *ops) == ["time.backoff"]
    assert _violations(targets.poller_ok, *ops) == []


def test_timed_out_call_counted_only_when_declared() -> None:
    """Finding 4's schedule: declared with the default count of a timed-out call, the correct poller waits
    retry 2's backoff where retry 1's was expected (time.backoff)."""
    assert _violations(targets.poller_timeouts_uncounted, *_TIMEOUT_THEN_FAIL) == ["time.backoff"]
    assert _violations(targets.poller_ok, *_TIMEOUT_THEN_FAIL) == []


class _PollerTimeoutNotIdle(poller.AdaptivePoller):
    """BUG: a timed-out poll does not back off (it hammers a slow source at the old interval)."""

    def _failed(self, failure: Any, d: Any) -> None:
        if d is self._expired:
            if self._settle(d):
                self._schedule()
            return
        super()._failed(failure, d)


def test_timeout_that_does_not_back_off_is_caught() -> None:
    """The bug accepting either count of a timed-out call would miss (time.loop_died's rule): a poller
    whose timed-out poll does not double its interval. With backoff_counts_timeouts=True it is early."""
    twin = targets._poller(_PollerTimeoutNotIdle, "poller: a timed-out poll does not back off")
    ops = (Start(at_ms=0, job=0, spec=JobSpec(kind="hang")), Stop(at_ms=1000))
    assert _violations(twin, *ops) == ["time.early"]
    assert _violations(targets.poller_ok, *ops) == []


def test_request_may_restart_the_count() -> None:
    """poll_now() restarts the poller's count: after a failure, the call answering it fails, and the next
    comes retry 1's 200ms later, where the count run on would be retry 2 (400ms). The harness allows
    either count after a request for a call now."""
    ops = (Start(at_ms=0, job=0, spec=JobSpec(kind="fail")), Call(at_ms=50, operation="poll_now"), Stop(at_ms=600))
    assert _violations(targets.poller_ok, *ops) == []
