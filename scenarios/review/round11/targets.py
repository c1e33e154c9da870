"""Round 11 targets, written from the user documentation alone (not the harness source).

Each component (rwlock.py, ordered.py, poller.py, dlq.py) gets a target for the correct class and
one per buggy twin (BUGS.md), built by one factory so the twins differ only in the class.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime

from harness import InvariantFailed, Operation, Run, Target, format_ms

from . import dlq, first, ordered, poller, rwlock

# ---------------------------------------------------------------------------------------------
# 1. readers-writer lock: a gate.  A job's priority says what it wants: 0 read, 1 write.
# ---------------------------------------------------------------------------------------------
LOCK_TIMEOUT_MS = 300
READ, WRITE = 0, 1


class RWGate:
    """Adapts the lock to submit(job): hold the lock (read or write, by the job's priority) for
    the job's run, give it back when the job ends, however it ends."""

    def __init__(self, clock: IReactorTime, cls: type[rwlock.RWLock]) -> None:
        self.lock = cls(clock)

    def submit(self, job: Callable[[], Any], priority: int) -> Deferred[Any]:
        acquire = self.lock.acquire_write if priority == WRITE else self.lock.acquire_read
        d = acquire(LOCK_TIMEOUT_MS / 1000)

        def run(_: None) -> Deferred[Any]:
            work = maybeDeferred(job)

            def release(result: Any) -> Any:
                self.lock.release()
                return result

            return work.addBoth(release)

        return d.addCallback(run)


def writer_alone(run: Run) -> None:
    """While a writer's job runs, no other job runs (by trace order, so same-instant hand-overs
    are fine)."""
    view = run.view
    attempts = view.attempts()

    def end(a: Any) -> int:
        return a.end_index if a.end_index is not None and not a.canceller_raised else len(run.trace)

    for w in attempts:
        if view.jobs[w.job].priority != WRITE:
            continue
        for other in attempts:
            if other is w:
                continue
            if other.start_index < end(w) and w.start_index < end(other):
                raise InvariantFailed(
                    f"writer job {w.job} ran at {format_ms(w.start_us)} together with "
                    f"{'writer' if view.jobs[other.job].priority == WRITE else 'reader'} job {other.job}",
                    events=(w.start_index, other.start_index),
                )


def readers_not_stranded(run: Run) -> None:
    """A reader that times out waiting was kept out by a writer that came before it: one holding
    the lock, or one still queued, when its timeout fired (the workaround of finding 5: no field
    says that readers share the lock)."""
    view = run.view
    for r in view.jobs.values():
        got = r.received
        if r.priority != READ or got is None or got.error != "LockTimeout" or r.submit_index is None:
            continue
        i = got.index
        for w in view.jobs.values():
            if w.priority != WRITE or w.submit_index is None or w.submit_index > r.submit_index:
                continue
            holding = any(a.start_index < i and (a.end_index is None or a.end_index > i or a.canceller_raised)
                          for a in w.attempts)
            queued = (not any(a.start_index < i for a in w.attempts)
                      and (w.received is None or w.received.index > i))
            if holding or queued:
                break
        else:
            raise InvariantFailed(
                f"reader job {r.id} timed out at {format_ms(got.t_us)} though no writer submitted before it "
                f"held the lock or waited for it then", events=(r.submit_index, i))


#: Finding 5, fixed: the lock's capacity, as weights. A reader takes 1 of it, a writer all of it; no schedule
#: runs more readers at once than this, so readers share the lock without a bound in any run.
LOCK_CAPACITY = 64


def lock_weight(key: int, priority: int) -> int:
    """Readers share the lock, a writer holds it alone."""
    return LOCK_CAPACITY if priority == WRITE else 1


def _rw(cls: type[rwlock.RWLock], description: str, as_first_written: bool = False) -> Target:
    """The lock as a gate; ``as_first_written``: as declared before finding 5's fix (no weights, my
    ``readers_not_stranded`` replaying the lock's queue instead)."""
    weighed: dict[str, Any] = {} if as_first_written else {"capacity": LOCK_CAPACITY, "weight": lock_weight}
    return Target(
        build=lambda clock: RWGate(clock, cls),
        submit=lambda gate, job, priority: gate.submit(job, priority),
        order="fifo",
        timeout_ms=LOCK_TIMEOUT_MS,
        timeout_from="wait",
        timeout_error=rwlock.LockTimeout,
        invariants=(writer_alone, readers_not_stranded) if as_first_written else (writer_alone,),
        menu={"priorities": 2},
        description=description,
        **weighed,
    )


rwlock_ok = _rw(rwlock.RWLock, "readers-writer lock, writer preference (correct)")
rwlock_timer_leak = _rw(rwlock.RWLockTimerLeak, "RW lock: acquire timer not cancelled on grant")
rwlock_stuck_behind_writer = _rw(rwlock.RWLockStuckBehindTimedOutWriter, "RW lock: timed-out writer strands readers")
rwlock_writer_off_by_one = _rw(rwlock.RWLockWriterOffByOne, "RW lock: writer admitted beside one reader")
# Finding 5: the stranded readers judged by the built-in invariants alone (the weights), as the page's command runs it.
rwlock_stuck_builtin_only = _rw(rwlock.RWLockStuckBehindTimedOutWriter, "RW lock: timed-out writer strands readers (built-in invariants only)")
# As first written (finding 5's control): no weights, the user invariant replaying the lock's queue.
rwlock_ok_as_first_written = _rw(rwlock.RWLock, "readers-writer lock (correct), as first written", as_first_written=True)
rwlock_stuck_as_first_written = _rw(rwlock.RWLockStuckBehindTimedOutWriter, "RW lock: timed-out writer strands readers, as first written", as_first_written=True)


# ---------------------------------------------------------------------------------------------
# 2. ordered-results executor
# ---------------------------------------------------------------------------------------------
EXEC_LIMIT = 2
ITEM_TIMEOUT_MS = 300


def answered_in_submission_order(run: Run) -> None:
    """Callers are answered in submission order; a caller's own cancel answers it at once and
    is left out."""
    view = run.view
    last: tuple[int, int] | None = None  # (answer index, job)
    for job in sorted(view.jobs.values(), key=lambda j: j.submit_index if j.submit_index is not None else -1):
        got = job.received
        if got is None:
            continue
        if job.cancel_indices and min(job.cancel_indices) <= got.index:
            continue
        if last is not None and got.index < last[0]:
            raise InvariantFailed(
                f"job {job.id} was answered at {format_ms(got.t_us)} before job {last[1]}, submitted before it",
                events=(got.index, last[0]),
            )
        last = (got.index, job.id)


def _ordered(cls: type[ordered.OrderedExecutor], description: str) -> Target:
    return Target(
        build=lambda clock: cls(clock, EXEC_LIMIT, ITEM_TIMEOUT_MS / 1000),
        stop=lambda executor: executor.shutdown(),
        limit=EXEC_LIMIT,
        order="fifo",
        timeout_ms=ITEM_TIMEOUT_MS,
        timeout_error=ordered.ItemTimeout,
        rejects=(ordered.ExecutorShutdown,),
        invariants=(answered_in_submission_order,),
        description=description,
    )


ordered_ok = _ordered(ordered.OrderedExecutor, "ordered-results executor (correct)")
ordered_timeout_leaks_slot = _ordered(ordered.OrderedExecutorTimeoutLeaksSlot, "ordered executor: timeout leaks the slot")
ordered_cancel_keeps_timer = _ordered(ordered.OrderedExecutorCancelKeepsTimer, "ordered executor: cancel keeps the timer")
ordered_skips_ahead = _ordered(ordered.OrderedExecutorSkipsAhead, "ordered executor: delivery skips ahead")


# ---------------------------------------------------------------------------------------------
# 3. adaptive poller: periodic work.  A call that succeeds is activity (a batch of one item);
#    one that fails or times out is idle, and the interval doubles up to the maximum.
# ---------------------------------------------------------------------------------------------
POLL_BASE_MS = 100
POLL_MAX_MS = 500  # not a power-of-two multiple of the base: 100, 200, 400, 500
POLL_TIMEOUT_MS = 250


def poll_backoff(failures: int) -> tuple[int, int]:
    """The poller's own rule: the base after a success (``backoff_ms(0)``, declared with
    ``backoff_after_success="base"``: finding 1), base * 2**k after the k-th idle poll in a row, capped;
    a timed-out poll is idle (``backoff_counts_timeouts=True``: finding 4). The call answering a
    poll_now() keeps no wait (finding 3)."""
    delay = min(POLL_BASE_MS * 2**failures, POLL_MAX_MS)
    return (delay, delay)


def _poller(cls: type[poller.AdaptivePoller], description: str,
            backoff: Callable[[int], tuple[int, int]] = poll_backoff, after_success: str = "base",
            counts_timeouts: bool = True) -> Target:
    def build(clock: IReactorTime, work: Callable[[], Any]) -> poller.AdaptivePoller:
        source = lambda: maybeDeferred(work).addCallback(lambda value: [value])
        return cls(clock, source, lambda items: None, POLL_BASE_MS / 1000, POLL_MAX_MS / 1000, POLL_TIMEOUT_MS / 1000)

    return Target(
        build=build,
        kind="periodic",
        backoff_ms=backoff,
        backoff_after_success=after_success,
        backoff_counts_timeouts=counts_timeouts,
        timeout_ms=POLL_TIMEOUT_MS,
        stop_cancels_work=True,
        operations={"poll_now": Operation(lambda p: p.poll_now(), calls_now=True)},
        description=description,
    )


poller_ok = _poller(poller.AdaptivePoller, "adaptive poller (correct)")
poller_stop_leaves_poll = _poller(poller.PollerStopLeavesPoll, "poller: stop() leaves the poll in flight")
poller_deadline_leak = _poller(poller.PollerDeadlineLeak, "poller: stale poll timeout cancels a later poll")
poller_backoff_overshoot = _poller(poller.PollerBackoffOvershoot, "poller: back-off overshoots the maximum")


# ---------------------------------------------------------------------------------------------
# 4. retry queue with a dead-letter queue
# ---------------------------------------------------------------------------------------------
DLQ_LIMIT = 2
DLQ_ATTEMPTS = 3
DLQ_BASE_MS = 100
DLQ_MAX_MS = 300


def dlq_backoff(retry: int) -> tuple[int, int]:
    """base * 2**(n-1) after the n-th failed attempt, capped.  A retry, once its backoff is over, waits
    for a free slot like a new job: time.backoff excuses that wait while the slots stay full (finding 2,
    fixed; the high end was given up, 10**9, before)."""
    delay = min(DLQ_BASE_MS * 2 ** (retry - 1), DLQ_MAX_MS)
    return (delay, delay)


def redrive_all(queue: dlq.RetryQueue) -> int:
    """redrive(), declared Operation(redrives=True) (finding 6, fixed): the redriven jobs start afresh.
    Their new Deferreds are the glue's: a redriven job may be dead-lettered again or stopped; any other
    failure is left unhandled (errors.unhandled)."""
    news = queue.redrive()
    for d in news:
        d.addErrback(lambda f: f.trap(dlq.DeadLettered, dlq.QueueStopped))
    return len(news)


def _dlq(cls: type[dlq.RetryQueue], description: str, redrive: bool = False,
         backoff: Callable[[int], tuple[int, int]] = dlq_backoff) -> Target:
    """A retry queue target. Every one declares gives_up_after_retries (cancel15, finding 6's leftover): the
    queue dead-letters a job only after its DLQ_ATTEMPTS attempts failed, a redriven job's too."""
    return Target(
        operations={"redrive": Operation(redrive_all, redrives=True)} if redrive else {},
        build=lambda clock: cls(clock, DLQ_LIMIT, DLQ_ATTEMPTS, DLQ_BASE_MS / 1000, DLQ_MAX_MS / 1000),
        limit=DLQ_LIMIT,
        retries=DLQ_ATTEMPTS - 1,
        gives_up_after_retries=True,
        backoff_ms=backoff,
        wraps={dlq.DeadLettered: lambda e: e.last},
        rejects=(dlq.QueueStopped,),
        description=description,
    )


dlq_ok = _dlq(dlq.RetryQueue, "retry queue with a DLQ (correct)")
dlq_one_attempt_too_many = _dlq(dlq.RetryQueueOneAttemptTooMany, "retry queue: k+1 attempts")
dlq_cancel_leaks_slot = _dlq(dlq.RetryQueueCancelLeaksSlot, "retry queue: cancel of a running job leaks its slot")
dlq_redrive_keeps_attempts = _dlq(dlq.RetryQueueRedriveKeepsAttempts, "retry queue: redrive keeps the attempt count")

# Finding 6: redrive() re-runs dead-lettered jobs whose callers already have their answer.
dlq_redrive_ok = _dlq(dlq.RetryQueue, "retry queue with a DLQ and redrive() (correct)", redrive=True)
dlq_redrive_keeps_attempts_op = _dlq(dlq.RetryQueueRedriveKeepsAttempts, "retry queue: redrive keeps the attempt count", redrive=True)


class _RetryQueueOneAttemptTooFew(dlq.RetryQueue):
    """BUG (cancel15): off-by-one the other way: a job is dead-lettered after max_attempts - 1 attempts."""

    def _should_retry(self, job: Any) -> bool:
        return bool(job.attempts < self.max_attempts - 1)


# retries promises at most retries + 1 attempts; gives_up_after_retries that the queue makes them all.
dlq_one_attempt_too_few = _dlq(_RetryQueueOneAttemptTooFew, "retry queue: dead-letters one attempt too soon")


# ---------------------------------------------------------------------------------------------
# The findings' reproductions (docs/reviews/outside-user-11.md): the correct components declared
# exactly, without the hacks above.
# ---------------------------------------------------------------------------------------------
def poll_backoff_exact(failures: int) -> tuple[int, int]:
    """The poller's own rule: base * 2**k after the k-th idle poll in a row, capped."""
    delay = min(POLL_BASE_MS * 2**failures, POLL_MAX_MS)
    return (delay, delay)


def poll_backoff_low_base(failures: int) -> tuple[int, int]:
    """Finding 3 alone: never sooner than the base, no tighter high end."""
    return (POLL_BASE_MS, POLL_MAX_MS)


def poll_backoff_high_exact(failures: int) -> tuple[int, int]:
    """Finding 4 alone: the exact high end, no low end."""
    return (0, poll_backoff_exact(failures)[1])


dlq_backoff_exact = dlq_backoff  # finding 2 fixed: the queue's own rule is its declaration


poller_exact = _poller(poller.AdaptivePoller, "adaptive poller, back-off declared exactly (finding 1)", poll_backoff_exact)
# The declarations fix11a added, taken away again: the correct poller is caught (tests/test_review_round11.py).
poller_success_waits_retry_1 = _poller(poller.AdaptivePoller, "adaptive poller declared with the default count after a "
                                       "success (backoff_ms(1) after it)", after_success="reset")
poller_timeouts_uncounted = _poller(poller.AdaptivePoller, "adaptive poller declared with the default count of a "
                                    "timed-out call (it leaves the count as it was)", counts_timeouts=False)
poller_poll_now_early = _poller(poller.AdaptivePoller, "adaptive poller, low end the base (finding 3)", poll_backoff_low_base)
poller_timeout_not_counted = _poller(poller.AdaptivePoller, "adaptive poller, exact high end (finding 4)", poll_backoff_high_exact)
dlq_exact = _dlq(dlq.RetryQueue, "retry queue, back-off declared exactly (finding 2)", backoff=dlq_backoff_exact)


# What the harness found in my "correct" code: the components as first written.
ordered_as_first_written = _ordered(first.ExecutorTimeoutAbortedByCanceller, "ordered executor as first written")
poller_as_first_written = _poller(first.PollerIgnoresPollNowWhileRunning, "adaptive poller as first written")
