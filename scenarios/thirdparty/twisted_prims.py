"""Twisted's own scheduling primitives, each declaring only what Twisted documents.

Every target here is Twisted's code with the thinnest glue a user would
write; the glue is part of the target and kept obvious. What each one
promises, from Twisted's docstrings (Twisted 23.10 to 26.10), and what the
harness checks:

``semaphore``: ``DeferredSemaphore(3).run``. "At most ``limit`` users may
acquire this semaphore at once" (``limit=3``); ``run`` "acquire, run,
release", the Deferred of the function's result (errors propagate);
``acquire``'s Deferred has a canceller that "removes it from our waiting
list" and ``release`` "pops a deferred out of self.waiting" (the head:
FIFO, ``order="fifo"``); cancelling a running job cancels the job's own
Deferred, because the Deferred ``run`` returns is chained to it
(``cancellable``).

``lock``: ``DeferredLock().run``. One holder at a time (``limit=1``); a
waiter "is placed at the end of a waiting list" and ``release`` calls back
"the first Deferred in that waiting list" (``order="fifo"``); cancel as for
the semaphore.

``queue_workers``: ``DeferredQueue`` drained by three workers, each
``get()``-ting the next job and running it. ``put`` hands an object to the
first waiting ``get`` or appends it to the pending list, and ``get`` pops
the head: FIFO, at most three jobs at once. ``DeferredQueue`` documents
cancelling a *get* (``stop()`` cancels the idle workers' gets), not taking
back a put, so submissions are not declared cancellable.

``cooperator``: ``task.Cooperator`` with two tasks coiterating over one
queue of jobs. "If the iterator yields a Deferred then work will pause until
the Deferred fires" (at most two jobs at once, ``limit=2``); both tasks take
the head of the same queue (FIFO). ``Cooperator.stop`` "errbacks the
completion Deferreds of all iterators" (the glue fails jobs still queued).
The glue takes a cancelled queued job out of the queue and cancels a running
job's Deferred.

``looping_call`` and ``looping_call_now``: ``task.LoopingCall(work)``
started with ``start(0.1)`` and ``start(0.1, now=True)``. Calls every
interval, never overlapping (it waits for a returned Deferred); "if the
function raises or its Deferred fails, the loop stops and the Deferred
returned by ``start`` errbacks" (reported, not silent); after ``stop()`` the
function is not called again.

``add_timeout``: ``maybeDeferred(job).addTimeout(0.3, clock)``. The job's
Deferred is cancelled 300 ms after it started and "errbacks with a
``TimeoutError``" (``timeout_ms=300``); cancelling it is cancelling the
job's own Deferred. A job whose own canceller raises leaves the Deferred
unfired (Twisted ticket 9534): the harness blames that on the job, and
``timeout_deferred`` in ``scenarios.thirdparty.synapse_prims`` is written to
keep the stronger promise.

``defer_later``: ``task.deferLater(clock, 0.05, job)``. "A deferred that
fires with the result of the callable when the specified time has elapsed":
the job starts no sooner than 50 ms after its submission (a target
invariant, ``starts_after_delay``) and its result or error reaches the
caller. Cancelling before the call cancels the delayed call (the job never
starts); after, it cancels the job's Deferred. No concurrency promise.

``gather_results``: ``gatherResults([maybeDeferred(job), deferLater(clock,
0.05, ...)], consumeErrors=True)``: "returns a Deferred that fires with a list
of the results when every Deferred has", fails at the first failure with
``FirstError`` (``fireOnOneErrback``), and ``consumeErrors`` keeps the
failure from staying, unhandled, in the job's own Deferred; cancelling it
cancels every Deferred in the list (``cancellable``). The glue hands on the
job's result; ``wraps`` declares that ``FirstError`` carries the job's
failure (``subFailure``), which ``errors.propagate`` then compares with the
job's own; target invariant ``at_least_the_floor``.
``gather_results_unconsumed`` leaves ``consumeErrors`` off, the misuse its
docstring warns about: caught by ``errors.unhandled``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Menu, Target

#: ``DeferredSemaphore`` tokens, ``DeferredQueue`` workers, ``Cooperator`` tasks.
SEMAPHORE_TOKENS = 3
QUEUE_WORKERS = 3
COOPERATOR_TASKS = 2
#: ``LoopingCall`` interval, ``addTimeout`` timeout, ``deferLater`` delay.
INTERVAL_MS = 100
TIMEOUT_MS = 300
DELAY_MS = 50


def _run(primitive: defer.DeferredSemaphore | defer.DeferredLock, job: Callable[[], Any], priority: int) -> Any:
    return primitive.run(job)


semaphore = Target(
    build=lambda clock: defer.DeferredSemaphore(SEMAPHORE_TOKENS),
    submit=_run,
    limit=SEMAPHORE_TOKENS,
    order="fifo",
    description="Twisted's DeferredSemaphore(3).run: at most three at once, FIFO, cancellable waiters",
)

lock = Target(
    build=lambda clock: defer.DeferredLock(),
    submit=_run,
    limit=1,
    order="fifo",
    description="Twisted's DeferredLock.run: one at a time, FIFO, cancellable waiters",
)


class WorkersStopped(Exception):
    """The workers were stopped before the job was taken off the queue."""


class QueueWorkers:
    """``workers`` loops, each taking the next ``(job, caller)`` off a ``DeferredQueue`` and running it.

    ``stop()`` cancels the idle workers' ``get()`` Deferreds (which
    ``DeferredQueue`` supports) and fails the jobs still queued; running
    jobs deliver their results. A submit after ``stop()`` fails.
    """

    def __init__(self, clock: IReactorTime, workers: int) -> None:
        self.clock = clock
        self.queue: defer.DeferredQueue[tuple[Callable[[], Any], defer.Deferred[Any]]] = defer.DeferredQueue()
        self.gets: dict[int, defer.Deferred[Any]] = {}
        self.stopped = False
        for worker in range(workers):
            self._next(worker)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self.stopped:
            return defer.fail(WorkersStopped("submitted after stop()"))
        caller: defer.Deferred[Any] = defer.Deferred()
        self.queue.put((job, caller))
        return caller

    def stop(self) -> None:
        self.stopped = True
        gets, self.gets = list(self.gets.values()), {}
        for get in gets:
            get.cancel()
        while self.queue.pending:
            _, caller = self.queue.pending.pop(0)
            caller.errback(WorkersStopped("workers stopped before the job was taken"))

    def _next(self, worker: int) -> None:
        if self.stopped:
            return
        get = self.queue.get()
        self.gets[worker] = get
        get.addCallbacks(self._run, lambda f: f.trap(defer.CancelledError), callbackArgs=(worker,))

    def _run(self, item: tuple[Callable[[], Any], defer.Deferred[Any]], worker: int) -> None:
        self.gets.pop(worker, None)
        job, caller = item
        defer.maybeDeferred(job).addBoth(self._deliver, caller, worker)

    def _deliver(self, result: Any, caller: defer.Deferred[Any], worker: int) -> None:
        if isinstance(result, Failure):
            caller.errback(result)
        else:
            caller.callback(result)
        self._next(worker)


queue_workers = Target(
    build=lambda clock: QueueWorkers(clock, QUEUE_WORKERS),
    limit=QUEUE_WORKERS,
    order="fifo",
    cancellable=False,
    rejects=(WorkersStopped,),
    description="Twisted's DeferredQueue drained by three workers: at most three at once, FIFO",
)


def _one_step() -> bool:
    """Termination predicate: one work unit per tick (the default reads wall-clock time)."""
    return True


class _Entry:
    __slots__ = ("job", "caller", "running")

    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.caller: defer.Deferred[Any] = defer.Deferred()
        self.running: defer.Deferred[Any] | None = None


class CooperatorQueue:
    """``tasks`` coiterators of one ``task.Cooperator`` draining one FIFO queue of jobs.

    The Cooperator steps on the injected clock (``scheduler``) and stops each
    step after one unit (``terminationPredicateFactory``): the defaults use
    the global reactor and wall-clock time. A coiterator is started when a job
    is queued and fewer than ``tasks`` are running; it ends when the queue is
    empty. Each yields its job's Deferred, with the result already handed to
    the caller, so a failing job does not end the coiterator.
    """

    def __init__(self, clock: IReactorTime, tasks: int) -> None:
        self.clock = clock
        self.tasks = tasks
        self.active = 0
        self.queue: deque[_Entry] = deque()
        self.cooperator = task.Cooperator(
            terminationPredicateFactory=lambda: _one_step,
            scheduler=lambda step: clock.callLater(0, step),
        )
        self.stopped = False

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self.stopped:
            return defer.fail(task.SchedulerStopped("submitted after stop()"))
        entry = _Entry(job)
        entry.caller = defer.Deferred(lambda d: self._cancel(entry))
        self.queue.append(entry)
        if self.active < self.tasks:
            self.active += 1
            self.cooperator.coiterate(self._drain()).addBoth(self._ended)
        return entry.caller

    def stop(self) -> None:
        self.stopped = True
        self.cooperator.stop()
        while self.queue:
            self.queue.popleft().caller.errback(task.SchedulerStopped("stopped before the job ran"))

    def _cancel(self, entry: _Entry) -> None:
        if entry.running is None:
            self.queue.remove(entry)
        else:
            entry.running.cancel()

    def _drain(self) -> Iterator[defer.Deferred[Any]]:
        while self.queue:
            entry = self.queue.popleft()
            entry.running = defer.maybeDeferred(entry.job)
            yield entry.running.addBoth(self._deliver, entry)

    @staticmethod
    def _deliver(result: Any, entry: _Entry) -> None:
        if entry.caller.called:
            return  # cancelled while running: the canceller's CancelledError was delivered
        if isinstance(result, Failure):
            entry.caller.errback(result)
        else:
            entry.caller.callback(result)

    def _ended(self, result: Any) -> None:
        self.active -= 1
        if isinstance(result, Failure):
            result.trap(task.SchedulerStopped)


cooperator = Target(
    build=lambda clock: CooperatorQueue(clock, COOPERATOR_TASKS),
    limit=COOPERATOR_TASKS,
    order="fifo",
    rejects=(task.SchedulerStopped,),
    description="Twisted's task.Cooperator, two tasks coiterating one queue: at most two at once, FIFO",
)


class Looper:
    """Holds the clock until the harness supplies the work; then ``task.LoopingCall(work)``."""

    def __init__(self, clock: IReactorTime, now: bool) -> None:
        self.clock = clock
        self.now = now
        self.loop: task.LoopingCall | None = None

    def start(self, work: Callable[[], Any]) -> defer.Deferred[Any]:
        self.loop = task.LoopingCall(work)
        self.loop.clock = self.clock
        return self.loop.start(INTERVAL_MS / 1000, now=self.now)

    def stop(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()


looping_call = Target(
    build=lambda clock: Looper(clock, now=False),
    kind="periodic",
    interval_ms=INTERVAL_MS,
    description="Twisted's LoopingCall.start(0.1): every 100ms, no overlap, a failure ends it loudly",
)

looping_call_now = Target(
    build=lambda clock: Looper(clock, now=True),
    kind="periodic",
    interval_ms=INTERVAL_MS,
    description="Twisted's LoopingCall.start(0.1, now=True): a first call at once, then every 100ms",
)


def _add_timeout(clock: IReactorTime, job: Callable[[], Any], priority: int) -> defer.Deferred[Any]:
    return defer.maybeDeferred(job).addTimeout(TIMEOUT_MS / 1000, clock)


add_timeout = Target(
    build=lambda clock: clock,
    submit=_add_timeout,
    timeout_ms=TIMEOUT_MS,
    description="Twisted's Deferred.addTimeout(0.3): cancelled with TimeoutError 300ms after the job started",
)


def _defer_later(clock: IReactorTime, job: Callable[[], Any], priority: int) -> defer.Deferred[Any]:
    return task.deferLater(clock, DELAY_MS / 1000, job)


def starts_after_delay(run: Any) -> None:
    """``deferLater``'s promise: no job starts sooner than ``DELAY_MS`` after its submission."""
    submitted: dict[int, int] = {}
    for event in run.trace:
        if event.kind == "submit":
            submitted.setdefault(event.job, event.t_us)
        elif event.kind == "job.start" and event.job in submitted:
            waited = event.t_us - submitted[event.job]
            assert waited >= DELAY_MS * 1000, (
                f"job {event.job} started {waited / 1000:g}ms after its submission, "
                f"sooner than deferLater's {DELAY_MS}ms delay"
            )


defer_later = Target(
    build=lambda clock: clock,
    submit=_defer_later,
    invariants=(starts_after_delay,),
    description="Twisted's task.deferLater(clock, 0.05, job): the job runs 50ms later, its result reaches the caller",
)


#: ``gather_results``: the floor the job's sibling holds every call to.
FLOOR_MS = 50


def _first_of(results: list[Any]) -> Any:
    return results[0]


#: ``gatherResults`` fails with ``FirstError`` carrying the first failure as ``subFailure``.
FIRST_ERROR = {defer.FirstError: lambda e: e.subFailure}


def _gather(consume_errors: bool) -> Callable[[IReactorTime, Callable[[], Any], int], defer.Deferred[Any]]:
    def submit(clock: IReactorTime, job: Callable[[], Any], priority: int) -> defer.Deferred[Any]:
        floor = task.deferLater(clock, FLOOR_MS / 1000, lambda: None)
        gathered = defer.gatherResults([defer.maybeDeferred(job), floor], consumeErrors=consume_errors)
        return gathered.addCallback(_first_of)

    return submit


def at_least_the_floor(run: Any) -> None:
    """``gatherResults`` fires with the results once every Deferred has: a caller that got a
    result got it no sooner than ``FLOOR_MS`` after its submission."""
    for job in run.view.jobs.values():
        got = job.received
        if got is not None and got.kind == "result":
            assert got.t_us - job.submitted_us >= FLOOR_MS * 1000, (
                f"job {job.id} got its result {(got.t_us - job.submitted_us) / 1000:g}ms after its "
                f"submission, before its {FLOOR_MS}ms sibling fired"
            )


gather_results = Target(
    build=lambda clock: clock,
    submit=_gather(consume_errors=True),
    wraps=FIRST_ERROR,
    invariants=(at_least_the_floor,),
    description="Twisted's gatherResults([job, deferLater(0.05)], consumeErrors=True): the result once both fire, the first error at once",
)

#: The misuse the ``consumeErrors`` docstring warns about: without it the failure also stays
#: in the job's own Deferred, unhandled. Caught by: ``errors.unhandled``.
gather_results_unconsumed = Target(
    build=lambda clock: clock,
    submit=_gather(consume_errors=False),
    wraps=FIRST_ERROR,
    invariants=(at_least_the_floor,),
    description="Twisted's gatherResults without consumeErrors: every job failure is also an unhandled error",
)
