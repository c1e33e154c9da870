"""matrix-synapse's scheduling utilities, each declaring only what Synapse documents.

Needs the ``thirdparty`` extra (``pip install -e '.[thirdparty]'``); without
it, importing this module raises an ``ImportError`` that says so (``harness
list`` does not import it). Verified against matrix-synapse 1.163.

Every target wraps the injected clock in Synapse's own ``Clock`` (it takes
any ``IReactorTime``) and awaits the harness's jobs with
``make_deferred_yieldable``, as Synapse's logcontext rules ask. What each one
promises, from Synapse's docstrings and comments, and what the harness
checks:

``linearizer``: ``Linearizer(max_count=2)``, every job under
``async with linearizer.queue(key)``, one key. "Limits concurrent access to
resources based on a key": ``max_count`` is "the maximum number of
concurrent accesses" (``limit=2``); a cancelled waiter "takes itself back
out of the queue", a cancelled holder releases the lock (``cancellable``).
No order is declared: the lock is *granted* in arrival order (an
``OrderedDict`` popped from the front), but the holder then waits a
``sleep(0)`` before its work starts, and two grants in the same reactor
tick start in the order the reactor runs calls due at the same instant,
which no reactor promises. The harness found this (ties ``lifo``: job 3
started before job 2, both granted at 10 ms); a real ``SelectReactor``
does the same when a few other calls are due in that tick (its heap is not
stable). Synapse documents no order, so none is declared.

``linearizer_keys``: the same under ``queue(job.key)`` with two keys
(``keys=2``, ``key_limit=2``): at most ``max_count`` jobs at once per key,
judged per key; cancellable, with the full menu (hanging jobs, raising
cancellers).

``observable_deferred``: one ``ObservableDeferred(maybeDeferred(job),
consumeErrors=True)`` per job, the caller gets an observer. "Observer
deferreds ... resolved when the underlying deferred is resolved" (results
and errors propagate); "cancelling or otherwise resolving an observer will
not affect the original": cancelling the caller *detaches* it
(``cancellable="detach"``; the job runs on, never cancelled: also a target
invariant, ``origin_never_cancelled``).

``timeout_deferred``: ``timeout_deferred(deferred=maybeDeferred(job),
timeout=0.3, clock=...)``. Times the job out after 300 ms
(``timeout_ms=300``) with ``twisted.internet.defer.TimeoutError``, and,
unlike ``Deferred.addTimeout``, "correctly handling the case where the given
deferred's canceller throws": schedules include jobs whose canceller raises,
and ``timeout_fires=True`` declares the stronger promise that the caller
fails with the timeout error at T whatever the job does. The returned
Deferred has no canceller (cancelling it would not reach the job), so
``cancellable`` is not declared and schedules hold no cancels.

``batching_queue``: ``BatchingQueue`` whose batch function runs the batch's
jobs one after another and returns each job's outcome; the glue hands each
caller its own job's outcome. ``add_to_queue(job, key=job.key)`` over two
keys: "The processing function will only be called once at a time for each
key ... called the next reactor tick after ``add_to_queue``, and will keep
being called until the queue has been drained", and keys are "processed in
parallel": at most one job at once per key (``keys=2``, ``key_limit=1``),
FIFO per key. Its server object is a stand-in with ``hostname`` and
``run_as_background_process`` (Synapse's own). Cancelling a caller fails it
at once, but its value stays in its batch and the job still starts (even
``"detach"`` forbids that): ``cancellable`` is not declared, so schedules
hold no cancels (the harness draws none it cannot judge).

``response_cache``: ``ResponseCache.wrap(job.key, ...)``, two keys, no
timeout: "Until the deferred completes it will be returned from the cache":
callers of a key in flight share one computation (``keys=2``,
``shared=True``); without a timeout the entry "will be removed immediately
once it completes" (no ``cache_ms``). ``response_cache_timeout``: the same
with ``timeout=200ms``: a successful result is kept 200 ms after it
completes (``cache_ms=200``; a failure is dropped at once, which serving
less than the lifetime allows). Cancelling is ``cancellable="delayed"``: a
caller that joined is failed at once (it detaches), but the caller that
started the computation has its cancel "temporarily swallowed" until the
computation ends, then fails with ``CancelledError`` (never, if it hangs);
the computation itself is never cancelled (our callback is not
``@cancellable``, and even then the pruning only drops the entry).

``read_write_lock``: every job under ``async with lock.read("k")`` (priority
0) or ``lock.write("k")`` (priority 1; the menu draws two priorities, and a
custom ``submit`` passes them, since no order is promised). Its implementation
notes: a reader "waits for the latest writer to finish", a writer for "all
latest readers and writer": target invariants ``writers_alone`` (a writer
runs alone, readers only beside readers) and ``writers_wait_their_turn``
(queue order across a writer). A waiting writer's cancel is delayed until it
holds the lock (``delay_cancellation``: it then fails and releases it, its
job never run) while a reader's is at once: ``cancellable="delayed"``.
``read_write_lock_per_call`` is a misusing glue (a new lock per call),
caught by ``user.writers_alone``; ``read_write_lock_shielded`` (a writer's
whole section shielded, so a cancelled writer still runs its job) by
``cancellation.no_start``; ``read_write_lock_waits_for_job`` (a cancel
delayed until the job settles, which a job that never ran never does) by
``cancellation.fires``.

``awakenable_sleeper``: job ``n`` runs after
``AwakenableSleeper.sleep(f"stream{n}", 200)``, "or return if the given name
is explicitly woken up": operation ``wake(n)``; target invariant
``sleeps_until_woken_or_timeout`` (it starts at the first ``wake(n)`` after
its submission or at 200 ms, whichever is first, no earlier and no later than
the clock's lateness). One sleeper per name: ``wake`` calls a name's sleepers
back by iterating a ``set`` of Deferreds (memory-address order), so two
sleepers of one name woken together resume in an order that differs from
run to run, which the harness reports as nondeterministic
(``scenarios.review.sleeper_repro``). ``awakenable_sleeper_seconds`` is a
misusing glue (seconds passed as milliseconds), caught by
``user.sleeps_until_woken_or_timeout``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import EventKind, Menu, Operation, Target, format_ms

try:
    from synapse.logging.context import SENTINEL_CONTEXT, make_deferred_yieldable, set_current_context
    from synapse.metrics.background_process_metrics import run_as_background_process
    from synapse.util.async_helpers import AwakenableSleeper, Linearizer, ObservableDeferred, ReadWriteLock
    from synapse.util.async_helpers import delay_cancellation
    from synapse.util.async_helpers import timeout_deferred as _timeout_deferred
    from synapse.util.batching_queue import BatchingQueue
    from synapse.util.caches.response_cache import ResponseCache
    from synapse.util.clock import Clock
    from synapse.util.duration import Duration
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the Synapse targets need matrix-synapse ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

# Synapse logs through the standard library, and with no handler configured Python prints
# warnings and errors to stderr (thousands in a campaign: every cancelled waiter, every canceller
# that raised). A NullHandler keeps them off the terminal; they still reach handlers the user
# configures on the root logger.
logging.getLogger("synapse").addHandler(logging.NullHandler())

#: The server name Synapse's clock, metrics and caches are labelled with.
SERVER_NAME = "harness.test"
#: ``Linearizer`` concurrent holders per key, keys of the multi-key target.
MAX_COUNT = 2
KEYS = 2
#: ``timeout_deferred`` timeout.
TIMEOUT_MS = 300
#: ``ResponseCache`` timeout of the caching target: how long a result is kept after it completes.
CACHE_MS = 200


def synapse_clock(reactor: IReactorTime) -> Clock:
    """Synapse's ``Clock`` over the harness's clock (any ``IReactorTime``).

    Also puts the thread back in Synapse's sentinel logcontext, where every
    reactor callback starts: a coroutine of an earlier run closed by the
    garbage collector may have left its own logcontext current, and Synapse's
    ``call_later`` asserts the sentinel.
    """
    set_current_context(SENTINEL_CONTEXT)
    return Clock(reactor, SERVER_NAME)  # type: ignore[arg-type]


async def _await_job(job: Callable[[], Any]) -> Any:
    """Run a harness job and wait for it the way Synapse code waits for a plain Deferred."""
    return await make_deferred_yieldable(defer.maybeDeferred(job))


class Linearized:
    """Runs each job holding ``linearizer.queue(key)``: key 0, or ``job.key`` for a Target with keys."""

    def __init__(self, reactor: IReactorTime, max_count: int) -> None:
        self.clock = synapse_clock(reactor)
        self.linearizer = Linearizer("harness", clock=self.clock, max_count=max_count)

    def submit(self, job: Callable[[], Any], key: int = 0) -> defer.Deferred[Any]:
        return defer.ensureDeferred(self._run(job, key))

    async def _run(self, job: Callable[[], Any], key: int) -> Any:
        async with self.linearizer.queue(key):
            return await _await_job(job)


linearizer = Target(
    build=lambda reactor: Linearized(reactor, MAX_COUNT),
    limit=MAX_COUNT,
    description="Synapse's Linearizer(max_count=2), one key: at most two at once, cancellable",
)

linearizer_keys = Target(
    build=lambda reactor: Linearized(reactor, MAX_COUNT),
    keys=KEYS,
    key_limit=MAX_COUNT,
    limit=MAX_COUNT * KEYS,
    description="Synapse's Linearizer(max_count=2), two keys: at most two at once per key, cancellable",
)


class Observed:
    """One ``ObservableDeferred`` per job; the caller gets an observer of it."""

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = reactor
        self.origins: list[ObservableDeferred[Any]] = []

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        origin: ObservableDeferred[Any] = ObservableDeferred(defer.maybeDeferred(job), consumeErrors=True)
        self.origins.append(origin)
        return origin.observe()


def origin_never_cancelled(run: Any) -> None:
    """``ObservableDeferred``: cancelling an observer never cancels the job it observes."""
    for event in run.trace:
        if event.kind == "job.cancel":
            raise AssertionError(
                f"job {event.job} was cancelled at {event.t_us / 1000:g}ms; cancelling an observer "
                "must not affect the original Deferred"
            )


observable_deferred = Target(
    build=Observed,
    cancellable="detach",
    invariants=(origin_never_cancelled,),
    description="Synapse's ObservableDeferred: observers get the result; a cancelled observer detaches",
)


class TimedOut:
    """``timeout_deferred`` around each job, on Synapse's clock."""

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = synapse_clock(reactor)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return _timeout_deferred(deferred=defer.maybeDeferred(job), timeout=TIMEOUT_MS / 1000, clock=self.clock)


timeout_deferred = Target(
    build=TimedOut,
    timeout_ms=TIMEOUT_MS,
    timeout_fires=True,
    cancellable=False,
    menu=Menu(cancels=False, canceller_raises=True),
    description="Synapse's timeout_deferred(0.3): TimeoutError at 300ms even when the job's canceller raises",
)


class _HomeServerStandIn:
    """What ``BatchingQueue`` uses of its ``HomeServer``: ``hostname`` and ``run_as_background_process``."""

    hostname = SERVER_NAME

    def run_as_background_process(self, desc: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return run_as_background_process(desc, self.hostname, func, *args, **kwargs)


class Batched:
    """A ``BatchingQueue`` of jobs: each batch runs its jobs in order; each caller gets its own job's outcome."""

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = synapse_clock(reactor)
        self.queue: BatchingQueue[Any, dict[int, tuple[bool, Any]]] = BatchingQueue(
            name="harness", hs=_HomeServerStandIn(), clock=self.clock, process_batch_callback=self._process  # type: ignore[arg-type]
        )

    def submit(self, job: Any, key: Any = ()) -> defer.Deferred[Any]:
        # ``()`` is the queue's default key; a Target with keys passes key=job.key.
        d = defer.ensureDeferred(self.queue.add_to_queue(job, key=key))
        return d.addCallback(self._own, job.id)

    def stop(self) -> None:
        self.queue.shutdown()  # drops the queue's metric callbacks, which would keep it alive

    @staticmethod
    async def _process(jobs: list[Any]) -> dict[int, tuple[bool, Any]]:
        outcomes: dict[int, tuple[bool, Any]] = {}
        for job in jobs:
            try:
                outcomes[job.id] = (True, await _await_job(job))
            except Exception as exc:
                outcomes[job.id] = (False, exc)
        return outcomes

    @staticmethod
    def _own(outcomes: dict[int, tuple[bool, Any]], job_id: int) -> Any:
        ok, value = outcomes[job_id]
        if not ok:
            raise value
        return value


batching_queue = Target(
    build=Batched,
    keys=KEYS,
    key_limit=1,
    order="fifo",
    # Not "detach" nor "abandon": a cancelled caller's value stays in its batch, and the job still
    # starts (cancellation.no_start). So no cancels: the harness refuses cancels it cannot judge.
    cancellable=False,
    description="Synapse's BatchingQueue, two keys: one batch at a time per key, jobs in order, each caller its outcome",
)


class Cached:
    """``ResponseCache.wrap(job.key, ...)``: callers of a key in flight join its computation.

    With ``timeout_ms``, a successful result is also served for that long after it completes.
    """

    def __init__(self, reactor: IReactorTime, timeout_ms: int | None = None) -> None:
        self.clock = synapse_clock(reactor)
        timeout = None if timeout_ms is None else Duration(milliseconds=timeout_ms)
        self.cache: ResponseCache[int] = ResponseCache(
            clock=self.clock, name="harness", server_name=SERVER_NAME, timeout=timeout
        )

    def stop(self) -> None:
        # With a timeout the cache runs a pruning looping call forever; Synapse stops it at shutdown.
        self.clock.shutdown()

    def submit(self, job: Any, key: int) -> defer.Deferred[Any]:
        # The first caller of a key runs its own job; later callers' jobs never run (they join).
        return defer.ensureDeferred(self.cache.wrap(key, _await_job, job))


response_cache = Target(
    build=Cached,
    keys=KEYS,
    shared=True,
    # A caller that joined is failed at once, but the caller that started the computation is
    # failed only when the computation ends (documented: "we temporarily swallow the
    # cancellation"), never if it hangs; the computation runs on: "delayed".
    cancellable="delayed",
    description="Synapse's ResponseCache.wrap, two keys: callers of a key in flight share one computation",
)


response_cache_timeout = Target(
    build=lambda reactor: Cached(reactor, timeout_ms=CACHE_MS),
    keys=KEYS,
    shared=True,
    cache_ms=CACHE_MS,
    cancellable="delayed",  # as response_cache
    description="Synapse's ResponseCache.wrap(timeout=200ms), two keys: shared, a result served again for 200ms",
)


# -- ReadWriteLock and AwakenableSleeper (added by the outside-user review, docs/reviews/outside-user.md) ----------

#: ``AwakenableSleeper`` sleep of the sleeper target.
SLEEP_MS = 200
#: Job priority that makes a job a writer of the ``ReadWriteLock`` targets (0: a reader).
WRITER = 1


class ReadWriteLocked:
    """Each job runs under ``async with lock.read("k")`` (priority 0) or ``lock.write("k")``
    (priority 1): the menu draws two priorities, and no order is declared."""

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = synapse_clock(reactor)
        self.lock = ReadWriteLock()

    def _lock(self) -> ReadWriteLock:
        return self.lock

    def submit(self, job: Callable[[], Any], priority: int) -> defer.Deferred[Any]:
        return defer.ensureDeferred(self._run(job, priority))

    async def _run(self, job: Callable[[], Any], priority: int) -> Any:
        lock = self._lock()
        async with (lock.write("k") if priority == WRITER else lock.read("k")):
            return await _await_job(job)


class LockPerCall(ReadWriteLocked):
    """BUG (in the glue, not Synapse): a fresh ``ReadWriteLock`` for every call, so no two calls
    share a lock and writers run beside anything. Caught by: ``user.writers_alone``."""

    def _lock(self) -> ReadWriteLock:
        return ReadWriteLock()


class ShieldedWriter(ReadWriteLocked):
    """BUG (in the glue, not Synapse): a writer's whole section, lock and job, is shielded with
    ``delay_cancellation`` (not only the wait for the lock, as Synapse does), so a writer
    cancelled while waiting still runs its job once it holds the lock, and its caller fails
    only after. Caught by: ``cancellation.no_start``."""

    def submit(self, job: Callable[[], Any], priority: int) -> defer.Deferred[Any]:
        section = defer.ensureDeferred(self._run(job, priority))
        return delay_cancellation(section) if priority == WRITER else section


class WaitsForTheJob(ReadWriteLocked):
    """BUG (in the glue, not Synapse): the glue delays every cancel until the job's own Deferred
    settles (to fail the caller "when the work is done"), but a job cancelled while it waits for
    the lock never runs, so its caller never fires. Caught by: ``cancellation.fires``."""

    def submit(self, job: Callable[[], Any], priority: int) -> defer.Deferred[Any]:
        settled: defer.Deferred[None] = defer.Deferred()

        def tracked() -> defer.Deferred[Any]:
            def settle(result: Any) -> Any:
                settled.callback(None)
                return result

            return defer.maybeDeferred(job).addBoth(settle)

        inner = defer.ensureDeferred(self._run(tracked, priority))

        def handle_cancel(outer: defer.Deferred[Any]) -> None:
            outer.pause()
            outer.errback(defer.CancelledError())
            inner.cancel()
            settled.addBoth(lambda _: outer.unpause())

        outer: defer.Deferred[Any] = defer.Deferred(handle_cancel)

        def deliver(result: Any) -> None:
            if not outer.called:
                (outer.errback if isinstance(result, Failure) else outer.callback)(result)

        inner.addBoth(deliver)
        return outer


def _steps_by_attempt(run: Any) -> tuple[list[Any], dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    """The attempts and the position of each start and end in ``run.view.steps()``."""
    starts: dict[tuple[int, int], int] = {}
    ends: dict[tuple[int, int], int] = {}
    attempts = []
    for i, step in enumerate(run.view.steps()):
        if step.attempt is None:
            continue
        key = (step.attempt.job, step.attempt.n)
        if step.kind == "start":
            starts[key] = i
            attempts.append(step.attempt)
        elif step.kind == "end":
            ends[key] = i
    return attempts, starts, ends


def writers_alone(run: Any) -> None:
    """``ReadWriteLock``: a writer runs alone; readers run only beside readers."""
    running: dict[int, bool] = {}  # job -> is a writer
    for step in run.view.steps():
        if step.attempt is None:
            continue
        job = step.attempt.job
        writer = run.view.jobs[job].priority == WRITER
        if step.kind == "start":
            clash = [j for j, w in running.items() if writer or w]
            assert not clash, (
                f"{'writer' if writer else 'reader'} job {job} started at {format_ms(step.t_us)} while "
                f"{', '.join(('writer ' if running[j] else 'reader ') + str(j) for j in clash)} still held the lock"
            )
            running[job] = writer
        elif step.kind == "end":
            running.pop(job, None)


def writers_wait_their_turn(run: Any) -> None:
    """``ReadWriteLock``'s queueing (its implementation notes): a writer waits for every reader
    and writer queued before it, a reader for the writer queued before it. Cancelled jobs are
    not judged (a cancelled waiter leaves at once, or, a writer, once it acquired)."""
    attempts, starts, ends = _steps_by_attempt(run)
    jobs = sorted(run.view.jobs.values(), key=lambda j: (j.submitted_us, j.id))
    for later_pos, later in enumerate(jobs):
        if not later.attempts or later.cancelled_us:
            continue
        later_start = starts[(later.id, 0)]
        for earlier in jobs[:later_pos]:
            if earlier.cancelled_us or not (later.priority == WRITER or earlier.priority == WRITER):
                continue
            end = ends.get((earlier.id, 0)) if earlier.attempts else None
            assert end is not None and end < later_start, (
                f"job {later.id} ({'writer' if later.priority == WRITER else 'reader'}) started at "
                f"{format_ms(later.attempts[0].start_us)} before job {earlier.id} "
                f"({'writer' if earlier.priority == WRITER else 'reader'}), queued before it, had finished"
            )


def _read_write_lock(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(
        build=build,
        # A waiting writer's cancel is delayed until it holds the lock (delay_cancellation): its
        # caller fails then, and its job never starts; a reader's cancel, and a running job's, is
        # at once. "delayed" allows both: the caller fails no later than its turn.
        cancellable="delayed",
        menu={"priorities": 2},
        # The default submit passes priority= only with order="priority" (no order is promised).
        submit=lambda subject, job, priority: subject.submit(job, priority),
        invariants=(writers_alone, writers_wait_their_turn),
        description=description,
    )


read_write_lock = _read_write_lock(
    ReadWriteLocked, "Synapse's ReadWriteLock, one key: writers alone, readers together, in queue order"
)
read_write_lock_per_call = _read_write_lock(
    LockPerCall, "Synapse's ReadWriteLock misused: a new lock per call (writers not exclusive)"
)
read_write_lock_shielded = _read_write_lock(
    ShieldedWriter, "Synapse's ReadWriteLock misused: a writer's whole section shielded, a cancelled writer still runs"
)
read_write_lock_waits_for_job = _read_write_lock(
    WaitsForTheJob, "Synapse's ReadWriteLock misused: a cancel delayed until the job settles, which a waiter never does"
)


class Sleepy:
    """Job ``n`` runs after ``AwakenableSleeper.sleep(f"stream{n}", delay)``; the ``wake(n)``
    operation wakes stream ``n``.  One sleeper per name: ``wake`` calls back the sleepers of a
    name by iterating a ``set`` of Deferreds, whose order follows their memory addresses, so
    two sleepers of one name woken together resume in an order that differs from run to run
    (the harness rightly calls that nondeterministic; docs/reviews/outside-user.md)."""

    delay_ms: float = SLEEP_MS

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = synapse_clock(reactor)
        self.sleeper = AwakenableSleeper(self.clock)

    def submit(self, job: Any) -> defer.Deferred[Any]:
        return defer.ensureDeferred(self._run(job))

    async def _run(self, job: Any) -> Any:
        await self.sleeper.sleep(f"stream{job.id}", self.delay_ms)  # type: ignore[arg-type]
        return await _await_job(job)

    def wake(self, n: int) -> None:
        self.sleeper.wake(f"stream{n}")


class SecondsSleepy(Sleepy):
    """BUG (in the glue, not Synapse): passes seconds where ``sleep`` takes milliseconds, so every
    job sleeps 0.2 ms instead of 200 ms. Caught by: ``user.sleeps_until_woken_or_timeout``."""

    delay_ms = SLEEP_MS / 1000


def sleeps_until_woken_or_timeout(run: Any) -> None:
    """``AwakenableSleeper.sleep``: "sleep for the given number of milliseconds, or return if
    the given name is explicitly woken up": job ``n`` starts at the first ``wake(n)`` after its
    submission or ``SLEEP_MS`` after it, whichever comes first (no earlier; no later than the
    clock's lateness allows)."""
    wakes = [(i, e.t_us, run.view.calls[k].args) for k, (i, e) in enumerate(run.view.of_kind(EventKind.CALL))]
    submits = {e.job: i for i, e in run.view.of_kind(EventKind.SUBMIT)}
    for job in run.view.jobs.values():
        if not job.attempts or job.cancelled_us:
            continue
        woken = [t for i, t, args in wakes if i > submits[job.id] and tuple(args) == (job.id,)]
        due = min([job.submitted_us + SLEEP_MS * 1000, *woken[:1]])
        start = job.attempts[0].start_us
        assert start >= due, f"job {job.id} started at {format_ms(start)}, before {format_ms(due)} (no wake since its submission)"
        assert start <= due + run.view.late_us, f"job {job.id} started at {format_ms(start)}, but was due at {format_ms(due)}"


def _sleeper(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(
        build=build,
        operations={"wake": Operation(lambda subject, n: subject.wake(n), args=(st.integers(0, 7),))},
        invariants=(sleeps_until_woken_or_timeout,),
        description=description,
    )


awakenable_sleeper = _sleeper(Sleepy, "Synapse's AwakenableSleeper: sleep 200ms or until woken, then the job")
awakenable_sleeper_seconds = _sleeper(SecondsSleepy, "Synapse's AwakenableSleeper misused: seconds passed as milliseconds")
