"""A third set of matrix-synapse's utilities (``synapse_prims`` and ``synapse_more`` hold the first
two), each declaring only what Synapse documents, each with a twin that misuses it the way a
user's glue would (``tests/test_thirdparty_extra.py`` names the invariant that must catch it).

``shielded_pool``: a ``DeferredSemaphore(2)`` whose holders run their job behind
``synapse.util.async_helpers.stop_cancellation``: "The new ``Deferred`` will not propagate
cancellation through to the original. When cancelled, the new ``Deferred`` will fail with a
``CancelledError``." A caller cancelled while it waits leaves the semaphore's list (``acquire``'s
canceller); one cancelled while its job runs fails at once and the job runs on, still holding
its slot until it ends (the glue releases on the job's own end). ``limit=2``, ``order="fifo"``,
``cancellable="detach"``. Twin ``shielded_pool_released_on_cancel``: the shield put inside
``DeferredSemaphore.run`` (``sem.run(lambda: stop_cancellation(work))``), as reads naturally:
``run`` releases when the Deferred it waits on fails, and cancelling the caller fails the shield
at once, so the slot is released while the shielded job still runs and a third job starts beside
two (``concurrency.limit``).

``delayed_pool``: the same with ``delay_cancellation``: "Has the same effect as
``stop_cancellation``, but the returned ``Deferred`` will not resolve with a ``CancelledError``
until the original awaitable resolves": a running job's caller fails when its job ends
(``cancellable="delayed"``), a waiting one at once. Twin ``delayed_pool_shielding_the_wait``: the whole
``sem.run(job)`` behind ``delay_cancellation``: a caller cancelled while it waits for a slot is
answered only when its job has run, so its job starts after the cancel (``cancellation.no_start``).
(``delay_cancellation`` inside ``run``, unlike ``stop_cancellation`` there, keeps the slot until
the job ends, so it is not a bug.)

``expiring_cache``: ``synapse.util.caches.expiringcache.ExpiringCache(expiry_ms=1000)`` as a
memo of each key's last successful result, two keys: a caller whose key is cached gets the
cached result, else runs its job and stores its success. "expiry_ms: How long before an item is
evicted from the cache": the cache prunes, every ``expiry_ms / 2`` (a ``Clock.looping_call``),
the entries older than ``expiry_ms`` by ``clock.time_msec()``; so an entry is served for at most
``expiry_ms * 1.5`` after it was stored (plus the clock's lateness): ``keys=2``, ``shared=True``
(a caller may be served by an earlier execution of its key), ``key_limit=math.inf`` (callers of
a key in flight do not join it: each runs its job). Ages are wall-clock readings by design, so a
jump back keeps an entry for longer in real time: ``cache_ms`` is left long, and target invariant
``served_only_while_fresh`` judges the age as the cache reads it (no pruning between store and
serve found the entry older than ``expiry_ms`` by ``time_msec()``; without a jump between, 1.5 s
at most). ``stop()`` is ``Clock.shutdown()`` (it stops the pruning loop, which the
cache keeps no handle on). Twin ``expiring_cache_reset_on_get``: ``reset_expiry_on_get=True``,
"will reset the expiry time for an item on access": a key read more often than every second
is served for ever (``user.served_only_while_fresh``).

``wheel_timeouts``: per-job timeouts kept in a ``synapse.util.wheel_timer.WheelTimer`` (100 ms
buckets), as presence keeps its timers: each job is inserted at its submission with
``then = now + 300`` (``clock.time_msec()``), and a ``Clock.looping_call`` every 100 ms
``fetch``-es the timed-out ones and cancels those still running (the caller fails with
``CancelledError``). ``insert``: "then: When to return the object strictly after";
``bucket_size`` "corresponds roughly to the accuracy of the timer". Cancellable (a caller's
cancel cancels its job). Target invariant ``times_out_after_deadline``: a job is cancelled by the
timer only once 300 ms have passed by the wall clock the timer is fed, and, with no jump
in the run so far, no later than 300 ms plus a bucket, a poll and the clock's lateness. Twin
``wheel_timeouts_relative``: ``insert(now, job, 300)``, the delay given where the absolute time
belongs: every job times out at the first poll (``user.times_out_after_deadline``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.internet.interfaces import IReactorTime

from harness import InvariantFailed, Run, Target, format_ms

from scenarios.thirdparty.synapse_prims import SERVER_NAME, synapse_clock

try:
    from synapse.metrics.background_process_metrics import run_as_background_process
    from synapse.util.async_helpers import delay_cancellation, stop_cancellation
    from synapse.util.caches.expiringcache import ExpiringCache
    from synapse.util.duration import Duration
    from synapse.util.wheel_timer import WheelTimer
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the Synapse targets need matrix-synapse ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

POOL_LIMIT = 2


class ShieldedPool:
    """Acquire a slot; run the job; release when the job itself ends; hand the caller the job's
    Deferred behind ``stop_cancellation`` (``delay_cancellation`` in ``DelayedPool``)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.semaphore = defer.DeferredSemaphore(POOL_LIMIT)

    def shield(self, work: defer.Deferred[Any]) -> defer.Deferred[Any]:
        return stop_cancellation(work)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        def run(_: Any) -> defer.Deferred[Any]:
            def release(result: Any) -> Any:
                self.semaphore.release()
                return result

            return self.shield(defer.maybeDeferred(job).addBoth(release))

        return self.semaphore.acquire().addCallback(run)


class DelayedPool(ShieldedPool):
    def shield(self, work: defer.Deferred[Any]) -> defer.Deferred[Any]:
        return delay_cancellation(work)


class ReleasedOnCancelPool(ShieldedPool):
    """The shield inside ``DeferredSemaphore.run``: ``run`` releases when the shield fails."""

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self.semaphore.run(lambda: stop_cancellation(defer.maybeDeferred(job)))


class ShieldingTheWaitPool(ShieldedPool):
    """The whole ``sem.run(job)`` behind ``delay_cancellation``, the wait for the slot included."""

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return delay_cancellation(self.semaphore.run(job))


shielded_pool = Target(
    build=ShieldedPool,
    limit=POOL_LIMIT,
    order="fifo",
    cancellable="detach",
    description="Synapse's stop_cancellation over a DeferredSemaphore(2) holder: a cancel detaches, the job keeps its slot",
)

shielded_pool_released_on_cancel = Target(
    build=ReleasedOnCancelPool,
    limit=POOL_LIMIT,
    order="fifo",
    cancellable="detach",
    description="stop_cancellation inside DeferredSemaphore.run: a cancel releases the slot of a job still running",
)

delayed_pool = Target(
    build=DelayedPool,
    limit=POOL_LIMIT,
    order="fifo",
    cancellable="delayed",
    description="Synapse's delay_cancellation over a DeferredSemaphore(2) holder: a running job's caller fails when it ends",
)


delayed_pool_shielding_the_wait = Target(
    build=ShieldingTheWaitPool,
    limit=POOL_LIMIT,
    order="fifo",
    cancellable="delayed",
    description="delay_cancellation around the whole DeferredSemaphore.run: a cancelled waiter's job still runs",
)

# -- ExpiringCache ------------------------------------------------------------------------------

EXPIRY_MS = 1000
KEYS = 2


class _HomeServer:
    """What ``ExpiringCache`` reads of its ``hs``: ``run_as_background_process`` for the pruning."""

    hostname = SERVER_NAME

    def run_as_background_process(self, desc: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return run_as_background_process(desc, self.hostname, func, *args, **kwargs)


class MemoStopped(Exception):
    """A job submitted after ``stop()``."""


class Memo:
    """The last success of each key, kept in an ``ExpiringCache``; a miss runs the job."""

    reset_expiry_on_get = False

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = synapse_clock(reactor)
        self.cache: ExpiringCache[int, Any] = ExpiringCache(
            cache_name="harness", server_name=SERVER_NAME, hs=_HomeServer(),  # type: ignore[arg-type]
            clock=self.clock, expiry_ms=EXPIRY_MS, reset_expiry_on_get=self.reset_expiry_on_get)
        self.stopped = False

    def submit(self, job: Callable[[], Any], key: int = 0) -> defer.Deferred[Any]:
        if self.stopped:
            # The cache only expires entries from its pruning loop, which ``shutdown`` stopped:
            # served on, they would never expire. A stopped server serves nothing.
            return defer.fail(MemoStopped("submitted after stop()"))
        if key in self.cache:
            return defer.succeed(self.cache[key])

        def store(result: Any) -> Any:
            self.cache[key] = result
            return result

        return defer.maybeDeferred(job).addCallback(store)

    def stop(self) -> None:
        self.stopped = True
        self.clock.shutdown()


class ResetOnGetMemo(Memo):
    reset_expiry_on_get = True


def served_only_while_fresh(run: Run) -> None:
    """A caller is served a stored result only while the cache keeps it: no pruning between the
    store (the job's end) and the serve (the caller's submission) found it older than
    ``EXPIRY_MS`` by the wall clock (``time_msec()``, jumps included: the age the cache itself
    reads), and, while the wall clock did not jump, no later than ``EXPIRY_MS * 1.5`` (the prune
    interval is ``EXPIRY_MS / 2``) plus the clock's lateness."""
    view = run.view
    prunes = sorted(t.end_index for t in view.timers_calling(LoopingCall) if t.fired_us is not None and t.end_index is not None)
    jumps = [index for index, _ in view.of_kind("clock.jump")]
    ends = {(event.job, event.attempt): index for index, event in enumerate(view.events) if event.kind == "job.finish"}
    submits = {event.job: index for index, event in view.of_kind("submit")}
    for job in view.jobs.values():
        served = view.served_by(job.id)
        if served is None or served.job == job.id or (served.job, served.n) not in ends:
            continue
        stored, asked = ends[(served.job, served.n)], submits[job.id]
        for prune in prunes:
            # The cache reads whole milliseconds (``time_msec()``, truncated) and evicts past
            # ``EXPIRY_MS``; one more millisecond allows for the rounding of two readings.
            age_us = view.wall_us(prune) - view.wall_us(stored)
            if stored < prune < asked and age_us > (EXPIRY_MS + 1) * 1000:
                raise InvariantFailed(
                    f"job {job.id} was served job {served.job}'s result at {format_ms(view.events[asked].t_us)}, though the "
                    f"pruning at {format_ms(view.events[prune].t_us)} found it {format_ms(age_us)} old by the wall clock "
                    f"(expiry {EXPIRY_MS}ms)", events=(stored, prune, asked))
        age = view.events[asked].t_us - view.events[stored].t_us
        steady = not any(stored < jump < asked for jump in jumps)
        if steady and age > EXPIRY_MS * 1500 + view.late_us:
            raise InvariantFailed(
                f"job {job.id} was served job {served.job}'s result {format_ms(age)} after it was stored, with no "
                f"wall-clock jump between; entries are pruned by {EXPIRY_MS * 3 // 2}ms", events=(stored, asked))


def _memo(build: Callable[[IReactorTime], Any], description: str) -> Target:
    # ``cache_ms`` an hour: how long an entry is served is the wall clock's business, judged by
    # the target invariant (a jump back keeps an entry longer in monotonic time, by design).
    return Target(build=build, keys=KEYS, shared=True, key_limit=math.inf, cache_ms=3_600_000,
                  invariants=(served_only_while_fresh,), description=description)


expiring_cache = _memo(Memo, "Synapse's ExpiringCache(expiry_ms=1000) as a memo, two keys: a result served for at most 1.5s")
expiring_cache_reset_on_get = _memo(ResetOnGetMemo, "the same with reset_expiry_on_get=True: a hot key never expires")


# -- WheelTimer ---------------------------------------------------------------------------------

WHEEL_TIMEOUT_MS = 300
BUCKET_MS = 100
POLL_MS = 100


class WheelTimeouts:
    """Jobs timed out by a ``WheelTimer`` polled every ``POLL_MS``; the wheel holds job ids."""

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = synapse_clock(reactor)
        self.wheel: WheelTimer[int] = WheelTimer(bucket_size=Duration(milliseconds=BUCKET_MS))
        self.running: dict[int, defer.Deferred[Any]] = {}
        self.loop = self.clock.looping_call(self._expire, Duration(milliseconds=POLL_MS))

    def deadline(self, now_ms: int) -> int:
        return now_ms + WHEEL_TIMEOUT_MS

    def submit(self, job: Any) -> defer.Deferred[Any]:
        work = defer.maybeDeferred(job)
        if work.called:
            return work
        now = self.clock.time_msec()
        self.running[job.id] = work
        self.wheel.insert(now, job.id, self.deadline(now))

        def done(result: Any) -> Any:
            self.running.pop(job.id, None)
            return result

        return work.addBoth(done)

    def _expire(self) -> None:
        for job_id in sorted(self.wheel.fetch(self.clock.time_msec())):
            work = self.running.pop(job_id, None)
            if work is not None:
                try:
                    work.cancel()
                except Exception:  # a job whose own canceller raises must not keep the others running
                    pass

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()


class RelativeWheelTimeouts(WheelTimeouts):
    """``insert(now, job, WHEEL_TIMEOUT_MS)``: the delay where ``then`` (absolute) belongs."""

    def deadline(self, now_ms: int) -> int:
        return WHEEL_TIMEOUT_MS


def times_out_after_deadline(run: Run) -> None:
    """A job cancelled by the timer (not by its caller) was cancelled only once ``WHEEL_TIMEOUT_MS``
    passed since its submission by the wall clock (less a millisecond: ``time_msec()`` truncates),
    and a job still running ``WHEEL_TIMEOUT_MS + BUCKET_MS + POLL_MS`` (plus the clock's
    lateness) after its submission, with no wall-clock jump before then and no ``stop()``, was
    cancelled by then."""
    view = run.view
    jumps = [event.t_us for _, event in view.of_kind("clock.jump")]
    stop_us = next((event.t_us for _, event in view.of_kind("stop")), None)
    cancels: dict[int, tuple[int, Any]] = {}  # each job's first job.cancel
    for index, event in view.of_kind("job.cancel"):
        cancels.setdefault(event.job, (index, event))
    bound_us = (WHEEL_TIMEOUT_MS + BUCKET_MS + POLL_MS) * 1000 + view.late_us
    for job in view.jobs.values():
        by_caller = min(job.cancelled_us, default=None)
        if job.id in cancels and (by_caller is None or cancels[job.id][1].t_us < by_caller):
            index, event = cancels[job.id]
            waited = view.wall_us(index) - job.submitted_wall_us
            if waited < (WHEEL_TIMEOUT_MS - 1) * 1000:
                raise InvariantFailed(
                    f"job {job.id} was timed out at {format_ms(event.t_us)}, {format_ms(waited)} after its submission "
                    f"by the wall clock; the timeout is {WHEEL_TIMEOUT_MS}ms", events=(index,))
        due = job.submitted_us + bound_us
        cancelled_by_then = job.id in cancels and cancels[job.id][1].t_us <= due  # its canceller may have raised
        if not job.attempts or cancelled_by_then or not job.attempts[0].running_at(due):
            continue
        # After any jump back the wheel holds buckets keyed on the old wall time, and a new entry
        # goes in the earliest of them ("to protect against inserts for times in the past"): late
        # by the jump. Punctuality is judged only while the wall clock never jumped.
        if any(t <= due for t in jumps) or (stop_us is not None and stop_us <= due):
            continue
        if (by_caller is None or by_caller > due) and view.events[-1].t_us > due:
            raise InvariantFailed(
                f"job {job.id}, submitted at {format_ms(job.submitted_us)}, still ran at {format_ms(due)}: "
                f"the timer should have cancelled it {WHEEL_TIMEOUT_MS}ms after its submission, within a "
                f"{BUCKET_MS}ms bucket and a {POLL_MS}ms poll")


def _wheel(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, invariants=(times_out_after_deadline,), description=description)


wheel_timeouts = _wheel(WheelTimeouts, "Synapse's WheelTimer(100ms buckets) polled every 100ms: jobs time out 300ms after submission, never sooner")
wheel_timeouts_relative = _wheel(RelativeWheelTimeouts, "WheelTimer.insert given the 300ms delay where the absolute time belongs")
