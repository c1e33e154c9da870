"""A restartable pool, correct and with one bug each after a restart (session 14, ``tests/test_restart_windows.py``).

``RestartPool`` runs each job at once under a 50 ms timeout (``Deferred.addTimeout``); ``stop()`` cancels the work
in flight and closes the pool, which then refuses jobs (their Deferreds fail with ``Closed``, a declared
rejection), and ``resume()``, declared ``Operation(restarts=True)``, opens it again. Its target declares that the
pool refuses only while stopped (``rejects_only_while`` says no refusal is legitimate, and the harness excuses
what a stopped subject does): after a restart the pool is judged as a running one.

The buggy twins behave as it does until their first restart, so that each bug is one the invariants used to excuse
when they read only the first ``stop()``:

- ``reopen_forgotten``: ``resume()`` forgets to open the pool: it goes on refusing jobs (``errors.rejects``).
- ``timeout_forgotten``: ``stop()`` drops the timeout and ``resume()`` forgets it: work after a restart runs past
  its 50 ms for ever (``time.timeout``).
- ``error_replaced``: ``stop()`` makes the pool report each failure as ``Stopped`` and ``resume()`` forgets to undo
  it: a job's own error after a restart reaches its caller as another (``errors.propagate``).
- ``hedging_off``: ``stop()`` switches hedging off and ``resume()`` forgets to switch it on: a slow request after
  a restart gets no second copy (``time.hedge_late``; ``hedged`` is its correct pool).
- ``drops_cancelled``: with ``cancellable="detach_queued"``, a queued job cancelled after a restart is dropped,
  never run (``cancellation.detaches``).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.application import service
from twisted.internet import defer
from twisted.python.failure import Failure

from harness import Operation, Target
from scenarios.hedge import HedgedRequest, _Race

TIMEOUT_MS = 50


class Closed(Exception):
    """The pool is stopped: the job was refused."""


class Stopped(RuntimeError):
    """What ``error_replaced`` reports every failure as, once stopped (the bug)."""


class RestartPool:
    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.open = True
        self.timeout_s: float | None = TIMEOUT_MS / 1000
        self.in_flight: list[defer.Deferred[Any]] = []  # a list: cancelled in submission order

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if not self.open:
            return defer.fail(Closed("the pool is stopped"))
        d = defer.maybeDeferred(job)
        if self.timeout_s is not None:
            d.addTimeout(self.timeout_s, self.clock)
        self.in_flight.append(d)

        def done(result: Any) -> Any:
            self.in_flight.remove(d)
            return self.report(result)

        d.addBoth(done)
        return d

    def report(self, result: Any) -> Any:
        return result

    def stop(self) -> None:
        self.open = False
        for d in list(self.in_flight):
            d.cancel()

    def resume(self) -> None:
        self.open = True


class ReopenForgotten(RestartPool):
    def resume(self) -> None:
        pass  # the bug: still closed, it refuses every job after the restart


class TimeoutForgotten(RestartPool):
    def stop(self) -> None:
        super().stop()
        self.timeout_s = None  # dropped at stop ...

    def resume(self) -> None:
        self.open = True  # ... the bug: and not armed again


class ErrorReplaced(RestartPool):
    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True  # failures of the work stop() cancels are reported as Stopped ...
        super().stop()

    def report(self, result: Any) -> Any:
        if self.stopped and isinstance(result, Failure):
            return Failure(Stopped("the pool stopped"))
        return result

    def resume(self) -> None:
        self.open = True  # ... the bug: and still are after the restart


class QueuedPool(RestartPool):
    """One slot: a job waits for it in a queue; a cancelled waiter's job still runs later
    (``cancellable="detach_queued"``: a cancel only stops its caller waiting). ``stop()`` refuses the jobs
    still queued and lets the one running end."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.timeout_s = None
        self.queue: list[tuple[Callable[[], Any], defer.Deferred[Any]]] = []
        self.busy = False

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if not self.open:
            return defer.fail(Closed("the pool is stopped"))
        caller: defer.Deferred[Any] = defer.Deferred(lambda d: None)  # cancel: the caller stops waiting only
        self.queue.append((job, caller))
        self._next()
        return caller

    def _next(self) -> None:
        if self.busy or not self.queue or not self.open:
            return
        job, caller = self.queue.pop(0)
        self.busy = True
        work = defer.maybeDeferred(job)
        self.in_flight.append(work)

        def done(result: Any) -> None:
            self.in_flight.remove(work)
            self.busy = False
            if not caller.called:
                caller.callback(None) if not isinstance(result, Failure) else caller.errback(result)
            self._next()

        work.addBoth(done)

    def stop(self) -> None:
        self.open = False
        queued, self.queue = self.queue, []
        for _, caller in queued:
            if not caller.called:
                caller.errback(Closed("the pool is stopped"))
        # the work running goes on (a detached caller's too: detach_queued promises it runs on)

    def resume(self) -> None:
        self.open = True
        self._next()


class DropsCancelled(QueuedPool):
    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.restarted = False

    def resume(self) -> None:
        self.restarted = self.restarted or not self.open  # a real restart: resume() on a stopped pool
        super().resume()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        caller = super().submit(job)
        if self.restarted:
            entry = self.queue[-1] if self.queue and self.queue[-1][1] is caller else None
            if entry is not None:
                # the bug: after a restart, cancelling a queued caller drops its job too
                caller.addErrback(lambda f: (self.queue.remove(entry) if entry in self.queue else None, f)[1])
        return caller


class PoolService(service.Service):
    """``RestartPool`` as a Twisted ``Service``: open while running (``startService``), closed by ``stopService``,
    which cancels the work in flight; the harness stops it with ``stopService`` and restarts it with
    ``startService`` (declared ``Operation(restarts=True)``)."""

    def __init__(self, clock: Any) -> None:
        self.pool = RestartPool(clock)
        self.startService()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if not self.running:
            return defer.fail(Closed("the service is stopped"))
        return self.pool.submit(job)

    def startService(self) -> None:
        super().startService()
        self.pool.resume()

    def stopService(self) -> defer.Deferred[None] | None:
        self.pool.stop()
        return super().stopService()


class RestartHedger(HedgedRequest):
    """``scenarios.hedge.HedgedRequest`` (a copy every 100 ms while no copy succeeded, up to 2 more) that
    ``stop()`` closes, cancelling every request in flight, and ``resume()`` opens again."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.open = True
        self.hedging = True
        self.races: list[_Race] = []

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if not self.open:
            return defer.fail(Closed("the pool is stopped"))
        race = _Race(self, job)
        self.races.append(race)

        def done(result: Any) -> Any:
            self.races.remove(race)
            return result

        race.caller.addBoth(done)
        race.launch()
        return race.caller

    def may_send(self, race: _Race) -> bool:
        return super().may_send(race) and (self.hedging or race.sent == 0)

    def stop(self) -> None:
        self.open = False
        self.hedging = False
        for race in list(self.races):
            race.caller.cancel()

    def resume(self) -> None:
        self.open = True
        self.hedging = True


class HedgingOff(RestartHedger):
    def resume(self) -> None:
        self.open = True  # the bug: hedging stays off after the restart


RESUME = Operation(lambda s: s.resume(), restarts=True)


def _never(view: Any, job: Any, t_us: int) -> bool:
    """No refusal is legitimate while the pool runs (one while it is stopped the harness excuses)."""
    return False


def _pool(build: Callable[[Any], Any], description: str, **extra: Any) -> Target:
    return Target(build=build, timeout_ms=TIMEOUT_MS, rejects=(Closed,), rejects_only_while=_never,
                  operations={"resume": RESUME}, description=description, **extra)


def _queued(build: Callable[[Any], Any], description: str) -> Target:
    return Target(build=build, limit=1, order="fifo", cancellable="detach_queued", rejects=(Closed,),
                  rejects_only_while=_never, operations={"resume": RESUME}, description=description)


pool = _pool(RestartPool, "session 14: a pool stopped and resumed at will, each job under a 50ms timeout")
reopen_forgotten = _pool(ReopenForgotten, "session 14: resume() forgets to open the pool")
timeout_forgotten = _pool(TimeoutForgotten, "session 14: after a restart the pool forgets its timeout")
error_replaced = _pool(ErrorReplaced, "session 14: after a restart the pool reports each failure as Stopped")
queued = _queued(QueuedPool, "session 14: a one-slot queue stopped and resumed at will; a cancel detaches a queued job")
pool_service = Target(build=PoolService, timeout_ms=TIMEOUT_MS, rejects=(Closed,), rejects_only_while=_never,
                      stop=lambda s: s.stopService(),
                      operations={"start_service": Operation(lambda s: s.startService(), restarts=True)},
                      description="session 14: the pool as a twisted.application.service.Service, stopped and started again")
hedged = Target(build=RestartHedger, hedge_ms=100, hedges=2, rejects=(Closed,), operations={"resume": RESUME},
                description="session 14: a hedged request pool stopped and resumed at will")
hedging_off = Target(build=HedgingOff, hedge_ms=100, hedges=2, rejects=(Closed,), operations={"resume": RESUME},
                     description="session 14: after a restart the hedged pool forgets to hedge")
drops_cancelled = _queued(DropsCancelled, "session 14: after a restart a cancelled queued job is dropped")
