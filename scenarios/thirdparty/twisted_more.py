"""More of Twisted's own scheduling code (outside-user review, round 2), each declaring only
what Twisted documents; ``twisted_prims`` holds the first set.

``client_service``: ``twisted.application.internet.ClientService`` over a stand-in endpoint
whose ``connect`` is the harness's periodic work: the work's failure is a refused connection,
its success a connection, which the stand-in drops at once (so the service reconnects).
``ClientService`` "reconnect[s] after a configurable timeout when a connection fails, either
before or after connecting"; ``retryPolicy`` takes "the number of failed connection attempts
made in a row" and returns the delay. ``backoffPolicy(0.1, 0.8, 2.0, jitter)`` gives
``min(0.1 * 2**k, 0.8) + jitter()`` for the k-th failure in a row (k from 1; the count is reset
to 0 on a connection, and a lost connection counts as failure 1): a backoff loop
(``kind="periodic"``, ``backoff_ms``); the jitter is a seeded ``random.Random`` per subject,
0 to 20 ms. ``stopService`` "stop[s] attempting to reconnect and close[s] any existing
connections": it cancels the connection attempt in flight (the work's Deferred) or the
pending retry. The stand-in drops a connection from a callback appended to the connecting
Deferred by ``prepareConnection`` (it then runs after ``ClientService``'s own callbacks: a drop
from ``whenConnected`` re-enters the state machine, ``RuntimeError: attempting to reentrantly
run _Client.whenConnected``). Work that succeeds synchronously is left out of the menu: the
service's ``_connectionMade`` then runs while it still enters ``Connecting``, and a drop that
soon is ``automat.NoTransition: no transition for _clientDisconnected in Connecting``; no real
endpoint connects inside ``connect()``.

``lock_wait_timeout``: ``DeferredLock().acquire().addTimeout(0.3, clock)``, then the job, then
``release``: the usual way to bound the wait for a lock. ``addTimeout`` cancels the waiting
``acquire`` (whose canceller "removes it from our waiting list") and fails it with
``TimeoutError``; once the lock is held the timeout is gone. One holder (``limit=1``), FIFO,
``timeout_ms=300, timeout_from="wait"``; cancellable (a waiter leaves the list, a holder's
cancel reaches the job's Deferred, which the caller's Deferred waits on).

``cooperative_tasks``: ``Cooperator.cooperate`` with a task per job (two units of work, then
the job's Deferred; "if the iterator yields a Deferred then work will pause until the Deferred
fires"), on the injected clock; the operation ``pause_for(ms)`` pauses every task and resumes it
``ms`` later. Cancellable: before its job runs a caller's cancel stops its task, after it cancels
the job's Deferred. Twisted 26.10's ``Cooperator.stop()`` skips every other task (it iterates its
task list while each task's ``_completeWith`` removes itself), so their ``whenDone()`` never
fires: the glue stops each task first; ``cooperative_tasks_cooperator_stop``, which does not, is
caught by ``completion.deadline``. Also found on the way (the glue's, not Twisted's): ``pause``
of an ended task raises but ``resume`` does not check, so resuming a task whose pause failed
undoes the pause the Cooperator holds while the task waits on a Deferred.

``bounded_queue``: ``DeferredQueue(size=2)`` drained by one worker; ``put`` raises
``QueueOverflow`` when ``size`` objects are pending: ``rejects=(QueueOverflow,)``. Since
``rejects`` excuses any rejection, target invariant ``overflows_only_when_full``: a job is
refused only while two jobs wait in the queue.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from hypothesis import strategies as st
from twisted.internet import defer, protocol, task
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import EventKind, Operation, Run, Target, format_ms

#: ``backoffPolicy`` arguments: first delay, cap, growth; the jitter is up to JITTER_MS.
INITIAL_S, MAX_S, FACTOR = 0.1, 0.8, 2.0
JITTER_MS = 20
#: ``addTimeout`` on the lock's acquire; the bounded queue's size.
LOCK_TIMEOUT_MS = 300
QUEUE_SIZE = 2


# -- ClientService ----------------------------------------------------------------------------

class _Transport:
    """The least of a transport: losing the connection tells the protocol at once."""

    def __init__(self, proto: Any) -> None:
        self.proto = proto
        self.lost = False

    def loseConnection(self) -> None:
        if not self.lost:
            self.lost = True
            self.proto.connectionLost(Failure(ConnectionDone()))

    def write(self, data: bytes) -> None:
        pass


class WorkEndpoint:
    """An ``IStreamClientEndpoint`` stand-in: ``connect`` runs the work; its success connects."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.connecting: defer.Deferred[Any] | None = None

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        def connected(_: Any) -> Any:
            proto = factory.buildProtocol(None)
            proto.makeConnection(_Transport(proto))
            return proto

        self.connecting = defer.maybeDeferred(self.work).addCallback(connected)
        return self.connecting

    def drop_when_connected(self, proto: Any) -> None:
        """``prepareConnection``: drop the connection once ``ClientService`` has taken it."""
        def drop(result: Any) -> Any:
            proto.transport.loseConnection()
            return result

        assert self.connecting is not None
        self.connecting.addCallback(drop)


class Reconnecting:
    """``ClientService`` on the harness's clock, its endpoint running the harness's work.

    ``shift`` plants an off-by-one: ``retryPolicy(k)`` is ``backoffPolicy(...)(k + shift)``."""

    def __init__(self, clock: IReactorTime, work: Callable[[], Any], shift: int = 0) -> None:
        rng = random.Random(5)
        self.endpoint = WorkEndpoint(work)
        policy = backoffPolicy(INITIAL_S, MAX_S, FACTOR, jitter=lambda: rng.random() * JITTER_MS / 1000)
        self.service = ClientService(
            self.endpoint,  # type: ignore[arg-type]
            protocol.Factory.forProtocol(protocol.Protocol),
            retryPolicy=policy if not shift else (lambda failures: policy(failures + shift)),
            clock=clock,
            prepareConnection=self.endpoint.drop_when_connected,
        )

    def start(self) -> None:
        self.service.startService()

    def stop(self) -> defer.Deferred[None]:
        return self.service.stopService()


def _policy_ms(attempt: int) -> float:
    return min(INITIAL_S * FACTOR ** min(100, attempt), MAX_S) * 1000


def client_service_backoff(failures: int) -> tuple[float, float]:
    """``retryPolicy``'s promise: the delay after the k-th failure in a row is ``policy(k)``:
    ``min(0.1 * 2**k, 0.8)`` s, plus the jitter. ``ClientService`` counts a lost connection as a
    failure, so after a connection the k-th failed attempt in a row waits ``policy(k + 1)``, before
    any connection ``policy(k)``: ``backoff_after_success="first_failure"`` declares that count (the
    review's F7: a range covering ``policy(k)`` to ``policy(k + 1)`` was all it could say)."""
    return (_policy_ms(failures), _policy_ms(failures) + JITTER_MS)


client_service_backoff_strict = client_service_backoff  # the same promise, counted as the docstring reads

client_service = Target(
    build=lambda clock, work: Reconnecting(clock, work),
    kind="periodic",
    backoff_ms=client_service_backoff, backoff_after_success="first_failure",
    menu={"job_kinds": ("succeed", "fail", "raise", "hang")},
    description="Twisted's ClientService with backoffPolicy(0.1, 0.8, 2): reconnects with growing delays",
)

#: The same, holding ``retryPolicy`` to its parameter's docstring ("the number of failed
#: connection attempts made in a row", from 0 after a connection): caught by ``time.backoff``.
client_service_strict = Target(
    build=lambda clock, work: Reconnecting(clock, work),
    kind="periodic",
    backoff_ms=client_service_backoff_strict,
    menu={"job_kinds": ("succeed", "fail", "raise", "hang")},
    description="ClientService held to retryPolicy's docstring (the k-th failed attempt in a row waits policy(k))",
)


# -- DeferredLock with a bounded wait ---------------------------------------------------------

class TimedLock:
    """``acquire().addTimeout(...)``, then the job, then ``release``, whatever the job did."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.lock = defer.DeferredLock()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        def run(_: Any) -> defer.Deferred[Any]:
            def release(result: Any) -> Any:
                self.lock.release()
                return result
            return defer.maybeDeferred(job).addBoth(release)

        acquired = self.lock.acquire().addTimeout(LOCK_TIMEOUT_MS / 1000, self.clock)
        return acquired.addCallback(run)


lock_wait_timeout = Target(
    build=TimedLock,
    limit=1,
    order="fifo",
    timeout_ms=LOCK_TIMEOUT_MS,
    timeout_from="wait",
    description="Twisted's DeferredLock, acquire().addTimeout(0.3): one holder, FIFO, a waiter times out after 300ms",
)


# -- DeferredQueue(size=2) ---------------------------------------------------------------------

class QueueStopped(Exception):
    """The worker was stopped before the job was taken off the queue."""


class BoundedQueue:
    """One worker draining a ``DeferredQueue(size=2)``; a put beyond the size is refused."""

    def __init__(self, clock: IReactorTime) -> None:
        self.queue: defer.DeferredQueue[tuple[Callable[[], Any], defer.Deferred[Any]]] = defer.DeferredQueue(size=QUEUE_SIZE)
        self.get: defer.Deferred[Any] | None = None
        self.stopped = False
        self._next()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self.stopped:
            return defer.fail(QueueStopped("submitted after stop()"))
        caller: defer.Deferred[Any] = defer.Deferred()
        try:
            self.queue.put((job, caller))
        except defer.QueueOverflow as overflow:
            return defer.fail(overflow)
        return caller

    def stop(self) -> None:
        self.stopped = True
        if self.get is not None:
            get, self.get = self.get, None
            get.cancel()
        while self.queue.pending:
            _, caller = self.queue.pending.pop(0)
            caller.errback(QueueStopped("stopped before the job was taken"))

    def _next(self) -> None:
        if self.stopped:
            return
        self.get = self.queue.get()
        self.get.addCallbacks(self._run, lambda f: f.trap(defer.CancelledError))

    def _run(self, item: tuple[Callable[[], Any], defer.Deferred[Any]]) -> None:
        self.get = None
        job, caller = item
        defer.maybeDeferred(job).addBoth(self._deliver, caller)

    def _deliver(self, result: Any, caller: defer.Deferred[Any]) -> None:
        if isinstance(result, Failure):
            caller.errback(result)
        else:
            caller.callback(result)
        self._next()


def overflows_only_when_full(run: Run) -> None:
    """A job is refused with ``QueueOverflow`` only while ``QUEUE_SIZE`` jobs wait in the queue
    (submitted, not refused, not yet started); nothing is judged after ``stop()``."""
    view = run.view
    waiting: set[int] = set()
    for _, event in enumerate(view.events):
        if event.kind == EventKind.STOP:
            return
        if event.kind == EventKind.JOB_START:
            waiting.discard(event.job)
        elif event.kind == EventKind.SUBMIT:
            record = view.jobs[event.job]
            refused = not record.ran and record.received is not None and record.received.error == "QueueOverflow"
            if refused:
                assert len(waiting) >= QUEUE_SIZE, (
                    f"job {event.job} was refused at {format_ms(event.t_us)} with only "
                    f"{len(waiting)} job(s) waiting ({sorted(waiting)}); the queue holds {QUEUE_SIZE}")
            else:
                waiting.add(event.job)


bounded_queue = Target(
    build=BoundedQueue,
    limit=1,
    order="fifo",
    cancellable=False,  # a put cannot be taken back
    rejects=(defer.QueueOverflow,),
    invariants=(overflows_only_when_full,),
    description="Twisted's DeferredQueue(size=2) with one worker: FIFO, refuses a put only when full",
)


# -- task.Cooperator: one CooperativeTask per job, paused and resumed --------------------------

def _one_step() -> bool:
    """Termination predicate: one work unit per tick (the default reads wall-clock time)."""
    return True


class CooperativeJobs:
    """Each job is a ``CooperativeTask`` of one ``Cooperator``: two units of work, then the job.

    ``pause_for(ms)`` pauses every task there is and resumes them ``ms`` later: ``pause``
    nests ("resume must be called an equal number of times"). ``pause()`` pauses every task
    until ``resume()``, which ends the latest pause still in force (declared
    ``Operation(suspends="resume")``: docs/reviews/outside-user-2.md, F8). Cancelling a
    caller stops its task before the job runs, or cancels the running job's Deferred.
    """

    STEPS = 2

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.cooperator = task.Cooperator(
            terminationPredicateFactory=lambda: _one_step,
            scheduler=lambda step: clock.callLater(0.01, step),
        )
        self.tasks: list[task.CooperativeTask] = []
        self.pauses = 0  # pauses in force (for the reader; tasks submitted meanwhile run)
        self.held: list[list[task.CooperativeTask]] = []  # the tasks each pause() in force paused

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        running: list[defer.Deferred[Any]] = []
        outcome: list[Any] = []
        cancelled: list[bool] = []

        def steps() -> Iterator[Any]:
            for _ in range(self.STEPS):
                yield None
            work = defer.maybeDeferred(job)
            running.append(work)
            yield work.addBoth(outcome.append)

        cooperative = self.cooperator.cooperate(steps())
        self.tasks.append(cooperative)

        def cancel(_: defer.Deferred[Any]) -> None:
            cancelled.append(True)
            if running:
                running[0].cancel()
            else:
                cooperative.stop()

        caller: defer.Deferred[Any] = defer.Deferred(cancel)

        def done(result: Any) -> None:
            if cancelled or caller.called:
                return
            final = outcome[0] if outcome else result
            if isinstance(final, Failure):
                caller.errback(final)
            else:
                caller.callback(final)

        cooperative.whenDone().addBoth(done)
        return caller

    def pause_for(self, ms: int) -> None:
        self.pauses += 1
        paused = [cooperative for cooperative in self.tasks if _quietly(cooperative.pause)]
        self.clock.callLater(ms / 1000, self._resume, paused)

    def pause(self) -> None:
        self.pauses += 1
        self.held.append([cooperative for cooperative in self.tasks if _quietly(cooperative.pause)])

    def resume(self) -> None:
        if self.held:  # a resume with no pause in force does nothing
            self._resume(self.held.pop())

    def _resume(self, paused: list[task.CooperativeTask]) -> None:
        # Resume only the tasks this pause paused: ``pause`` of an ended task raises, but
        # ``resume`` does not check, and would undo the pause the Cooperator itself holds while
        # the task waits on a Deferred (Twisted's own resume then raises NotPaused, unhandled).
        self.pauses -= 1
        for cooperative in paused:
            _quietly(cooperative.resume)

    def stop(self) -> None:
        # Cooperator.stop() "errback[s] the completion Deferreds of all iterators", but it walks
        # its task list while each task's _completeWith removes itself from it: every other
        # task is skipped and its whenDone() never fires (Twisted 26.10; see
        # cooperative_tasks_cooperator_stop). Stop each task first.
        for cooperative in self.tasks:
            _quietly(cooperative.stop)
        self.cooperator.stop()


class CooperatorStopOnly(CooperativeJobs):
    """The same glue relying on ``Cooperator.stop()`` alone: caught by ``completion.deadline``."""

    def stop(self) -> None:
        self.cooperator.stop()


class ResumeForgetsOne(CooperativeJobs):
    """BUG: ``resume()`` resumes every task its pause paused but the first, which stays paused for ever."""

    def resume(self) -> None:
        if self.held:
            self._resume(self.held.pop()[1:])


def _quietly(call: Callable[[], None]) -> bool:
    """``pause``/``resume`` of a task that has ended raise: its docstring says ``TaskFinished``
    (``TaskStopped``, ``TaskDone``, ``TaskFailed``), but a task whose Cooperator was stopped
    raises ``SchedulerStopped``, which is not one."""
    try:
        call()
    except (task.TaskFinished, task.SchedulerStopped, task.NotPaused):
        return False
    return True


_PAUSE_FOR = {"pause_for": Operation(lambda s, ms: s.pause_for(ms), args=(st.integers(1, 50).map(lambda n: n * 10),))}

cooperative_tasks = Target(
    build=CooperativeJobs,
    operations=_PAUSE_FOR,
    description="Twisted's Cooperator.cooperate, one task per job, paused for a while by pause_for(ms)",
)

#: ``pause()`` until ``resume()``: an operation that suspends progress until another resumes it (F8).
_PAUSE_RESUME = {"pause": Operation(lambda s: s.pause(), suspends="resume"), "resume": Operation(lambda s: s.resume())}

cooperative_tasks_paused = Target(
    build=CooperativeJobs,
    operations=_PAUSE_RESUME,
    description="Twisted's Cooperator.cooperate, one task per job, paused by pause() until resume()",
)

cooperative_tasks_resume_forgets_one = Target(
    build=ResumeForgetsOne,
    operations=_PAUSE_RESUME,
    description="the same, whose resume() leaves the first paused task paused: its job never finishes",
)

cooperative_tasks_cooperator_stop = Target(
    build=CooperatorStopOnly,
    operations=_PAUSE_FOR,
    description="the same, stopped with Cooperator.stop() alone: every other task's whenDone never fires",
)


# -- ClientService with a planted off-by-one (after the review's F7) ----------------------------

#: A planted off-by-one under the exact promise: ``retryPolicy(k) = backoffPolicy(...)(k + 1)``,
#: so every retry waits one step too long: ``time.backoff``, from the first failure on (the range
#: ``client_service`` declared before, ``policy(k)`` to ``policy(k + 1)``, let every wait before
#: the first connection through).
client_service_policy_off_by_one = Target(
    build=lambda clock, work: Reconnecting(clock, work, shift=1),
    kind="periodic",
    backoff_ms=client_service_backoff,
    backoff_after_success="first_failure",
    menu={"job_kinds": ("succeed", "fail", "raise", "hang")},
    description="ClientService whose retryPolicy is off by one (policy(k + 1)): every retry waits one step too long",
)
