"""Harness targets for the round-2 review components, written from the user docs alone (the front page and docs/)
(the harness source was not read).  One target per class: the correct one must stay clean,
each buggy twin must be caught with the invariant named in ``EXPECTED`` of
tests/test_review_round2.py.  What each adapter had to work around is numbered in
docs/reviews/outside-user-2.md (F-numbers in the comments)."""

from __future__ import annotations

import random
from typing import Any, Callable, List

from twisted.internet import defer
from twisted.python.failure import Failure

from harness import InvariantFailed, JobRecord, Run, RunView, Target, format_ms
from harness.model.trace import EventKind

from scenarios.review.round2 import backoff, batcher, breaker, consumers, lease

# -- (a) circuit breaker ---------------------------------------------------------------------

BREAKER_THRESHOLD = 2
BREAKER_RESET_S = 0.2


class BreakerGate:
    """Every job goes through ``breaker.call``; a refused one fails with CircuitOpenError."""

    def __init__(self, clock: Any, cls: type = breaker.CircuitBreaker) -> None:
        self.breaker = cls(clock, threshold=BREAKER_THRESHOLD, reset_timeout=BREAKER_RESET_S)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred:
        return self.breaker.call(job)

    def stop(self) -> None:
        self.breaker.stop()


def breaker_admits_after_reset(run: Run) -> None:
    """The breaker's promise, replayed from the trace (jobs' own starts and ends):

    - closed: every job is admitted; ``BREAKER_THRESHOLD`` failures in a row (a job's failure or
      cancel, in the order they end) open it;
    - open: every job is refused until ``BREAKER_RESET_S`` after it opened;
    - then half-open: the first job submitted is the trial (admitted), the others are refused
      while it runs; the trial's success closes the breaker, its failure opens it again.

    The reset timer may fire up to the clock's lateness late, and an operation may land before
    the timer due at its instant: a job submitted in that window may go either way.  Nothing is
    promised after ``stop()`` (it cancels the reset timer)."""
    view = run.view
    reset_us = int(BREAKER_RESET_S * 1_000_000)
    state, failures, open_until, trial = "closed", 0, 0, None
    for index, event in enumerate(view.events):
        kind, t, j = event.kind, event.t_us, event.job
        if kind == EventKind.STOP:
            return
        if kind == EventKind.JOB_FINISH:
            if j == trial:
                state, trial, failures = "closed", None, 0
            elif state == "closed":
                failures = 0
        elif kind in (EventKind.JOB_FAIL, EventKind.JOB_CANCEL):
            if view.jobs[j].attempts[event.attempt].canceller_raised:
                continue  # its Deferred never fires: the breaker never hears of it (F1)
            if j == trial:
                state, trial, open_until = "open", None, t + reset_us
            elif state == "closed":
                failures += 1
                if failures >= BREAKER_THRESHOLD:
                    state, failures, open_until = "open", 0, t + reset_us
        elif kind == EventKind.SUBMIT:
            ran = view.jobs[j].ran
            if state == "open" and t > open_until + view.late_us:
                state = "half-open"
            if state == "closed":
                assert ran, f"job {j} submitted at {format_ms(t)} was refused while the breaker was closed"
            elif state == "open":
                if t < open_until:
                    assert not ran, f"job {j} ran at {format_ms(t)} while the breaker was open until {format_ms(open_until)}"
                elif ran:  # the reset timer's window: it went through, so it was the trial
                    state, trial = "half-open", j
            elif trial is None:
                assert ran, (f"job {j} submitted at {format_ms(t)} was refused, but the breaker opened at "
                             f"{format_ms(open_until - reset_us)} and should have let a trial call through "
                             f"from {format_ms(open_until)}")
                trial = j
            else:
                assert not ran, f"job {j} ran at {format_ms(t)} beside the trial call job {trial}"


def breaker_may_refuse(view: RunView, job: JobRecord, t_us: int) -> bool:
    """When the breaker may refuse a call (added after the review, F5: ``rejects_only_while``): while
    work it admitted runs (a trial call, one at a time), or within the cooldown after a call failed or
    was cancelled (it may be open; its reset timer may fire up to the clock's lateness late). Once
    idle and cooled down, a breaker admits the next call: one that never lets a trial through again
    is caught by ``errors.rejects``. The liveness half only: when exactly it opens, and one trial at a
    time, are ``breaker_admits_after_reset``'s."""
    cooldown_us = int(BREAKER_RESET_S * 1_000_000) + view.late_us
    return any(
        a.running_at(t_us)
        or (a.outcome in ("failed", "cancelled") and a.end_us is not None and a.end_us <= t_us <= a.end_us + cooldown_us)
        for a in view.attempts()
    )


def _breaker(cls: type, description: str) -> Target:
    return Target(
        build=lambda clock: BreakerGate(clock, cls),
        rejects=(breaker.CircuitOpenError,),
        rejects_only_while=breaker_may_refuse,  # F5: a refusal is legitimate only while open or busy
        invariants=(breaker_admits_after_reset,),
        description=description,
    )


breaker_ok = _breaker(breaker.CircuitBreaker, "circuit breaker (correct)")
breaker_stuck_open = _breaker(breaker.BuggyCircuitBreaker, "circuit breaker: a failed trial re-opens it for good")

# -- (b) lease renewer (periodic) --------------------------------------------------------------

LEASE_TTL_S = 0.3  # renewed every 100 ms


class LeaseLost(Exception):
    """The renewer gave the lease up: no renewal landed within the TTL."""


class Lease:
    """The renewer; ``renew`` is the harness's periodic work.

    The loop ends on purpose when the lease is lost (``on_lost``); ``time.loop_died`` counts
    only a log line or a failed ``start`` Deferred as reporting it, so ``start`` hands out a
    Deferred that fails with :class:`LeaseLost` then (F2)."""

    def __init__(self, clock: Any, work: Callable[[], Any], cls: type = lease.LeaseRenewer) -> None:
        self.clock = clock
        self.lost_after_stop = False
        self.ended: defer.Deferred = defer.Deferred()
        self.renewer = cls(clock, work, LEASE_TTL_S, self._lost)

    def _lost(self) -> None:
        if self.renewer.stopped:
            self.lost_after_stop = True
        if not self.ended.called:
            self.ended.errback(LeaseLost())

    def start(self) -> defer.Deferred:
        self.renewer.start().addErrback(lambda f: None)  # the LoopingCall's own end: see self.ended
        return self.ended

    def stop(self) -> None:
        self.renewer.stop()
        if not self.ended.called:
            self.ended.callback(None)


def no_timer_after_stop(run: Run) -> None:
    """``stop()`` promises that nothing of the renewer runs afterwards: it arms no timer (the
    built-in ``leaks.calls`` judges only what is still pending once the run drained, and a
    one-shot timer armed after stop fires during that drain: F3)."""
    stopped = None
    for index, event in enumerate(run.view.events):
        if event.kind == EventKind.STOP:
            stopped = event.t_us
        elif event.kind == EventKind.TIMER_SET and stopped is not None:
            raise AssertionError(f"the subject armed a timer at {format_ms(event.t_us)}, after stop() at "
                                 f"{format_ms(stopped)}: {event.detail}")


def _lease(cls: type, description: str, reported: bool = False) -> Target:
    """A lease target; ``reported`` (added after the review, F6): no adapter, the loss reported through the
    work's ``report_end``, instead of the ``Lease`` adapter's failing ``start`` Deferred."""

    def build(clock: Any, work: Any) -> Any:
        if reported:
            return cls(clock, work, LEASE_TTL_S, on_lost=lambda: work.report_end("lease lost"))
        return Lease(clock, work, cls)

    return Target(
        build=build,
        kind="periodic",
        interval_ms=int(LEASE_TTL_S * 1000 / 3),
        stop_cancels_timers=True,  # stop() cancels the watchdog (F1)
        invariants=(no_timer_after_stop,),
        description=description,
    )


lease_ok = _lease(lease.LeaseRenewer, "lease renewer (correct)")
lease_renews_after_stop = _lease(lease.BuggyLeaseRenewer, "lease renewer: a renewal landing after stop re-arms the watchdog")


# Added after the review (F6): the loop's end reported through the work's report_end, no adapter.

class SilentLeaseRenewer(lease.LeaseRenewer):
    """Planted bug: the watchdog stops the loop but never tells the owner (``on_lost`` is not
    called): the lease is lost in silence. ``time.loop_died``."""

    def _expired(self) -> None:
        self._watchdog = None
        self.lost = True
        self._halt()  # BUG: no self._on_lost()


class RunOnLeaseRenewer(lease.LeaseRenewer):
    """Planted bug: the watchdog reports the loss but leaves the loop running, which renews on (its
    renewals ignored): the owner was told the loop ended. ``time.after_end``."""

    def _expired(self) -> None:
        self._watchdog = None
        self.lost = True
        self._on_lost()  # BUG: no self._halt()


lease_reported = _lease(lease.LeaseRenewer, "lease renewer (correct), its loss reported through work.report_end", reported=True)
lease_lost_silently = _lease(SilentLeaseRenewer, "lease renewer: the watchdog stops the loop without telling the owner", reported=True)
lease_reports_and_renews_on = _lease(RunOnLeaseRenewer, "lease renewer: reports the loss and keeps renewing", reported=True)

# -- (c) batcher -------------------------------------------------------------------------------

BATCH_SIZE = 3
BATCH_DELAY_S = 0.1


class BatchGate:
    """``add(job)`` fires with the whole batch's outcomes: hand each caller its own job's.

    The sink runs a batch's jobs together and records which jobs went out together (the
    batches themselves are what the promise is about; their times come from the trace)."""

    def __init__(self, clock: Any, cls: type = batcher.Batcher) -> None:
        self.batches: List[List[int]] = []
        self.batcher = cls(clock, self._sink, max_size=BATCH_SIZE, max_delay=BATCH_DELAY_S)

    def _sink(self, jobs: List[Callable[[], Any]]) -> defer.Deferred:
        self.batches.append([job.id for job in jobs])  # Job.id: not in the user docs (F7)
        return defer.DeferredList([defer.maybeDeferred(job) for job in jobs], consumeErrors=True).addCallback(
            lambda outcomes: list(zip(jobs, outcomes)))

    def submit(self, job: Callable[[], Any]) -> defer.Deferred:
        def own(outcomes: list) -> Any:
            for item, (_, value) in outcomes:
                if item is job:
                    return value  # a Failure is handed on as a failure
            raise AssertionError("job not in its batch")
        return self.batcher.add(job).addCallback(own)

    def stop(self) -> defer.Deferred:
        return self.batcher.stop()


def batches_cut_on_size_or_delay(run: Run) -> None:
    """A batch goes out when it holds ``BATCH_SIZE`` jobs, or ``BATCH_DELAY_S`` after its first
    job was submitted, or at ``stop()``; never earlier, never larger, in submission order.
    The sink calls a batch's jobs at once, so a batch went out no later than its jobs' start."""
    view = run.view
    stop_us = next((e.t_us for _, e in view.of_kind(EventKind.STOP)), None)
    delay_us = int(BATCH_DELAY_S * 1_000_000)
    seen: List[int] = []
    for batch in run.subject.batches:
        assert len(batch) <= BATCH_SIZE, f"batch {batch} holds more than {BATCH_SIZE} jobs"
        seen.extend(batch)
        first = view.jobs[batch[0]]
        started = min(a.start_us for j in batch for a in view.jobs[j].attempts[:1])
        if len(batch) < BATCH_SIZE and (stop_us is None or started < stop_us) and started < first.submitted_us + delay_us:
            # InvariantFailed names the events the message is about, so the printed trace shows them (F10).
            named = [i for i, e in view.of_kind(EventKind.SUBMIT) if e.job == batch[0]]
            named += [i for i, e in view.of_kind(EventKind.JOB_START) if e.job in batch]
            raise InvariantFailed(
                f"batch {batch} of {len(batch)} went out at {format_ms(started)}, before "
                f"{format_ms(first.submitted_us + delay_us)} ({BATCH_DELAY_S * 1000:.0f}ms after job "
                f"{batch[0]} was submitted at {format_ms(first.submitted_us)})", events=named)
    assert seen == sorted(seen), f"batches out of submission order: {run.subject.batches}"


def _batch(cls: type, description: str) -> Target:
    return Target(
        build=lambda clock: BatchGate(clock, cls),
        cancellable=False,  # add() hands out a plain Deferred: a cancel is not taken back
        stop_cancels_timers=True,  # stop() flushes the batch: no timer of it may be left (F1)
        invariants=(batches_cut_on_size_or_delay,),
        description=description,
    )


batcher_ok = _batch(batcher.Batcher, "size-or-timer batcher (correct)")
batcher_orphan_timer = _batch(batcher.BuggyBatcher, "batcher: a size cut leaves the timer armed")
#: The buggy twin as round 2 first declared it, judged by its own invariant alone (without
#: ``stop_cancels_timers``, ``leaks.calls`` does not see the orphan timer: F1): its failure names the
#: late submission and the early start with ``InvariantFailed``, and the printed trace shows them (F10).
batcher_user_invariant = Target(
    build=lambda clock: BatchGate(clock, batcher.BuggyBatcher),
    cancellable=False,
    invariants=(batches_cut_on_size_or_delay,),
    description="batcher: a size cut leaves the timer armed (its own invariant only)",
)

# -- (d) backoff retrier -----------------------------------------------------------------------

RETRY_ATTEMPTS = 4
RETRY_BASE_S = 0.05
RETRY_CAP_S = 0.3


def retry_backoff_ms(retry: int) -> tuple:
    """Full jitter: the delay before retry k is uniform in [0, min(cap, base * 2**(k-1))]."""
    return (0, min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (retry - 1)) * 1000)


def _retrier(cls: type, description: str) -> Target:
    return Target(
        build=lambda clock: _Retrying(clock, cls),
        retries=RETRY_ATTEMPTS - 1,
        backoff_ms=retry_backoff_ms,
        wraps={backoff.GaveUp: lambda e: e.last},
        description=description,
    )


class _Retrying:
    def __init__(self, clock: Any, cls: type) -> None:
        self.retrier = cls(clock, random.Random(7), max_attempts=RETRY_ATTEMPTS, base=RETRY_BASE_S, cap=RETRY_CAP_S)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred:
        return self.retrier.call(job)


backoff_ok = _retrier(backoff.BackoffRetrier, "backoff retrier with full jitter (correct)")
backoff_retries_after_cancel = _retrier(backoff.BuggyBackoffRetrier, "backoff retrier: cancel during a sleep does not stop it")

# -- (e) consumer pool over a DeferredQueue ----------------------------------------------------

CONSUMERS = 2


def _consumers(cls: type, description: str) -> Target:
    def build(clock: Any) -> Any:
        pool = cls(lambda job: job(), workers=CONSUMERS)
        pool.start()
        return pool
    return Target(
        build=build,
        limit=CONSUMERS,
        order="fifo",
        cancellable=False,  # submit() hands out a plain Deferred
        description=description,
    )


consumers_ok = _consumers(consumers.ConsumerPool, "DeferredQueue consumer pool (correct)")
consumers_die_on_error = _consumers(consumers.BuggyConsumerPool, "consumer pool: a failing item kills its worker")
