"""txaio's Twisted scheduling (autobahn's timers), each target declaring only what txaio documents.

Needs txaio, in the ``thirdparty`` extra (``pip install -e '.[thirdparty]'``; buildbot already
depends on it, so the extra costs nothing more); without it, importing this module raises an
``ImportError`` that says so (``harness list`` does not import it). Verified against txaio 26.6.1.

**The clock.** txaio on Twisted schedules through ``txaio.config.loop`` (the global reactor when
unset). The glue, ``on_clock(clock)``, selects Twisted and points ``config.loop`` at the run's clock
at each ``build``, as txaio's own test helper ``txaio.testutil.replace_loop`` does (Twisted has one
global reactor, so ``txaio.with_config(loop=...)`` refuses a second loop). Everything else is txaio's
own code.

``batched_timer``: ``txaio.make_batched_timer(1)`` (``chunk_size`` 100, the default), each job run
by ``timer.call_later(1.5, ...)``; cancelling the caller before the job starts calls the returned
call's ``cancel()``, after it cancels the job's Deferred. Promise (``make_batched_timer``):
"bucket_seconds: the number of seconds in each bucket. That is, a value of 5 means that any timeout
within a 5 second window will be in the same bucket, and get notified at the same time. This is
only accurate to 'milliseconds'"; ``IBatchedTimer.call_later`` "speaks the same API as
``txaio.call_later`` and also returns an object that has a ``.cancel`` method", and the timeout
fires "close to the delay specified". txaio's own test reads the window as the bucket the due time
falls in, notified at its start (``call_later(9.9)`` with 5 s buckets fires at 5 s). Target
invariant ``fires_in_its_bucket``: a job starts no sooner than the start of the bucket its due time
(submission + 1.5 s, by the wall clock the timer reads) falls in, and no later than the end of that
bucket plus the clock's lateness once per chunk. Cancellable. Twin ``batched_timer_bucket_kept``:
a ``_BatchedTimer`` whose ``_remove_call`` drops a bucket emptied by cancels without cancelling
the bucket's timer (a one-line refactor slip): the timer fires into a bucket that is gone, and a
``KeyError`` escapes into the reactor (``errors.escaped``).

``batched_timer_chunked``: the same with ``chunk_size=2``: a bucket of more than two calls is
notified two at a time, the chunks spread over the bucket ("when 'doing' the callbacks in a
particular bucket, this controls how many we do at once before yielding to the reactor"). Not
cancellable: see the first finding.

Two findings in txaio 26.6.1 (not catalogued: they are not clean; ``tests/test_thirdparty_txaio.py``
shows each caught, and in plain Twisted):

- ``batched_timer_chunked_cancel`` (``cancellation.no_start``): a call cancelled after its bucket's
  first chunk ran, while it waits for a later chunk, runs anyway. ``_notify_bucket`` removes the
  bucket before the chunks run, and ``_remove_call`` takes a missing bucket for one already done
  ("It is *not* an error if the bucket is gone (e.g. the call has already happened)"). Autobahn
  batches its auto-ping and handshake timeouts with ``chunk_size=1000``: a bucket of more than 1,000
  connections' timeouts can fire one cancelled by a pong.
- ``batched_timer_subsecond`` (``user.fires_in_its_bucket``): with autobahn's own
  ``bucket_seconds=0.200``, calls fire up to a second early, at once for a delay shorter than the
  fraction of the second it is made in: ``call_later`` computes ``int(now + delay) * 1000``,
  truncating to the second before converting to milliseconds, so every bucket is a whole second.
  ``call_later(0.3)`` made at 0.5 s fires at 0.5 s.

``sleep_then_run``: ``await txaio.sleep(0.05)``, then ``await txaio.as_future(job)``, in
``Deferred.fromCoroutine``. "Inline sleep for use in co-routines"; cancelling the coroutine's
Deferred cancels the sleep (a ``Deferred`` without canceller: it fails with ``CancelledError``, so
the job never starts). Target invariant ``starts_after_delay`` (no job sooner than 50 ms after its
submission), cancellable. Twin ``sleep_swallowing_cancel``: ``except CancelledError: pass`` around
the sleep (a cancelled sleep taken for one cut short): the job runs after the cancel.

``gather_with_sleep``: ``txaio.gather([txaio.as_future(job), txaio.sleep(0.05)],
consume_exceptions=True)``, the job's outcome handed on. "consume_exceptions: if True, any errors
are eaten and returned in the result list" (the Twisted flavour: a ``DeferredList`` with
``consumeErrors``, whose cancel cancels each Deferred). Target invariant ``at_least_the_floor``
(a result no sooner than 50 ms after submission). Not cancellable: txaio documents nothing of a
cancelled gather, and on Twisted a cancelled ``DeferredList`` cancels its Deferreds, then fires with
their list, the job's result in it, where asyncio's ``gather`` fails with ``CancelledError``. Twin ``gather_unconsumed``:
``consume_exceptions=False``, which leaves a failing job's error in its own Deferred as well: caught
by ``errors.unhandled``.

Not targeted: ``txaio.call_later`` (``callLater`` on the loop, nothing of its own), ``as_future``
beyond the above, and the logging API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import InvariantFailed, Run, Target, format_ms

from .twisted_prims import at_least_the_floor, starts_after_delay

try:
    import txaio
    from txaio._common import _BatchedTimer
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the txaio targets need txaio ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

#: ``make_batched_timer(bucket_seconds)`` of the correct targets, and autobahn's (the finding).
BUCKET_S = 1.0
AUTOBAHN_BUCKET_S = 0.2
#: ``timer.call_later(delay)``.
DELAY_MS = 1500
#: The chunked timer's ``chunk_size``.
CHUNK = 2
#: ``txaio.sleep`` (the same 50 ms as ``twisted_prims``' ``starts_after_delay`` and ``at_least_the_floor``).
SLEEP_MS = 50


def on_clock(clock: IReactorTime) -> None:
    """txaio on Twisted, its loop the run's clock (what ``txaio.testutil.replace_loop`` sets)."""
    txaio.use_twisted()
    txaio.config.loop = clock


# -- make_batched_timer ---------------------------------------------------------------------------


class Batched:
    """Each job run by ``timer.call_later(DELAY_MS)`` on a batched timer; a cancel before the
    job starts cancels the call, after it the job's Deferred."""

    bucket_s = BUCKET_S
    chunk_size = 100
    #: The delay ``fires_in_its_bucket`` reads (its tests give a mutant another one).
    delay_s = DELAY_MS / 1000

    def __init__(self, clock: IReactorTime) -> None:
        on_clock(clock)
        self.clock = clock
        self.timer = self.make_timer()

    def make_timer(self) -> Any:
        return txaio.make_batched_timer(self.bucket_s, chunk_size=self.chunk_size)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        running: list[defer.Deferred[Any]] = []

        def cancel(_: defer.Deferred[Any]) -> None:
            if running:
                running[0].cancel()
            else:
                call.cancel()

        caller: defer.Deferred[Any] = defer.Deferred(canceller=cancel)

        def fire() -> None:
            work = defer.maybeDeferred(job)
            running.append(work)
            work.chainDeferred(caller)

        call = self.timer.call_later(self.delay_s, fire)
        return caller


class Chunked(Batched):
    chunk_size = CHUNK


class Subsecond(Batched):
    """Autobahn's ``make_batched_timer(bucket_seconds=0.200)``."""

    bucket_s = AUTOBAHN_BUCKET_S


class BucketKept(_BatchedTimer):  # type: ignore[misc]
    """``_remove_call`` dropping a bucket emptied by cancels without cancelling its timer."""

    def _remove_call(self, real_time: float, call: Any) -> None:
        try:
            (_, calls) = self._buckets[real_time]
        except KeyError:
            return
        calls.remove(call)
        if not calls:
            del self._buckets[real_time]


class BatchedBucketKept(Batched):
    def make_timer(self) -> Any:
        # What make_batched_timer does, with the slipped class.
        loop = self.clock
        return BucketKept(self.bucket_s * 1000.0, self.chunk_size, seconds_provider=loop.seconds,
                          delayed_call_creator=loop.callLater)


def fires_in_its_bucket(run: Run) -> None:
    """``make_batched_timer``'s window: a job starts no sooner than the start of the bucket its due
    time (its submission plus ``DELAY_MS``, by the wall clock the timer reads; less a millisecond
    for the float seconds) falls in, and no later than that bucket's end plus the clock's lateness
    once per job (each chunk is a ``callLater`` of its own). Judged while the wall clock never
    jumped before the start: the timer keys its buckets by the wall clock, and after a jump a new
    call joins a bucket whose timer was set on the old one (on Twisted's reactors the jump moves
    that timer too; the harness keeps timers on monotonic time)."""
    view = run.view
    bucket_us = round(run.subject.bucket_s * 1_000_000)
    jumps = [event.t_us for _, event in view.of_kind("clock.jump")]
    starts = {(e.job, e.attempt): i for i, e in view.of_kind("job.start")}
    slack_us = len(view.jobs) * view.late_us
    for job in view.jobs.values():
        if not job.attempts or job.submitted_wall_us is None:
            continue
        start = job.attempts[0]
        if any(t <= start.start_us for t in jumps):
            continue
        due = job.submitted_wall_us + DELAY_MS * 1000
        bucket = due - due % bucket_us
        if start.start_wall_us < bucket - 1000:
            raise InvariantFailed(
                f"job {job.id}, called for {format_ms(DELAY_MS * 1000)} after {format_ms(job.submitted_wall_us)} "
                f"(due {format_ms(due)}), started at {format_ms(start.start_wall_us)}, before its "
                f"{format_ms(bucket_us)} bucket opened at {format_ms(bucket)}",
                events=(job.submit_index, starts[(start.job, start.n)]))
        if start.start_wall_us > bucket + bucket_us + slack_us:
            raise InvariantFailed(
                f"job {job.id}, due at {format_ms(due)}, started at {format_ms(start.start_wall_us)}, after its "
                f"bucket [{format_ms(bucket)}, {format_ms(bucket + bucket_us)}) and the clock's lateness",
                events=(starts[(start.job, start.n)],))


def _batched(build: Callable[[IReactorTime], Any], description: str, cancellable: bool = True) -> Target:
    return Target(build=build, cancellable=cancellable, invariants=(fires_in_its_bucket,), description=description)


batched_timer = _batched(Batched, "txaio's make_batched_timer(1).call_later(1.5): fires in its 1s bucket, cancellable")
batched_timer_chunked = _batched(
    Chunked, "txaio's make_batched_timer(1, chunk_size=2): a bucket notified two calls at a time", cancellable=False)
batched_timer_bucket_kept = _batched(
    BatchedBucketKept, "a _BatchedTimer whose _remove_call drops an emptied bucket but not its timer")
#: Findings in txaio 26.6.1 (module docstring).
batched_timer_chunked_cancel = _batched(
    Chunked, "txaio's make_batched_timer(1, chunk_size=2), cancelled: a call waiting for a later chunk runs anyway")
batched_timer_subsecond = _batched(
    Subsecond, "txaio's make_batched_timer(0.2) as autobahn makes it: buckets truncated to whole seconds")


# -- sleep -----------------------------------------------------------------------------------------


class Sleeper:
    """``await txaio.sleep(SLEEP_MS)``, then the job, in ``Deferred.fromCoroutine``."""

    def __init__(self, clock: IReactorTime) -> None:
        on_clock(clock)

    async def nap(self) -> None:
        await txaio.sleep(SLEEP_MS / 1000)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        async def run() -> Any:
            await self.nap()
            return await txaio.as_future(job)

        return defer.Deferred.fromCoroutine(run())


class SleeperSwallowing(Sleeper):
    """A cancelled sleep taken for one cut short."""

    async def nap(self) -> None:
        try:
            await txaio.sleep(SLEEP_MS / 1000)
        except defer.CancelledError:
            pass


sleep_then_run = Target(build=Sleeper, invariants=(starts_after_delay,),
                        description="txaio.sleep(0.05) then the job, in a coroutine: cancellable, 50ms at least")
sleep_swallowing_cancel = Target(build=SleeperSwallowing, invariants=(starts_after_delay,),
                                 description="a coroutine catching the CancelledError of its txaio.sleep")


# -- gather ----------------------------------------------------------------------------------------


class Gathering:
    """``txaio.gather([as_future(job), sleep(SLEEP_MS)], consume_exceptions)``, the job's outcome handed on."""

    consume = True

    def __init__(self, clock: IReactorTime) -> None:
        on_clock(clock)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        gathered = txaio.gather([txaio.as_future(job), txaio.sleep(SLEEP_MS / 1000)], consume_exceptions=self.consume)
        return gathered.addCallback(lambda results: results[0])  # a Failure in the list fails the caller


class GatheringUnconsumed(Gathering):
    consume = False


# Not cancellable: txaio documents nothing of a cancelled gather, and on Twisted it is a cancelled
# ``DeferredList``, which cancels its Deferreds and then fires with their list (the job's result among
# them) rather than failing (asyncio's gather fails with ``CancelledError``).
gather_with_sleep = Target(build=Gathering, invariants=(at_least_the_floor,), cancellable=False,
                           description="txaio.gather([job, sleep(0.05)], consume_exceptions=True): the job's outcome, 50ms at least")
gather_unconsumed = Target(build=GatheringUnconsumed, invariants=(at_least_the_floor,), cancellable=False,
                           description="txaio.gather(..., consume_exceptions=False): the job's error left unhandled")

