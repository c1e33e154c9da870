"""Correct subjects whose operation Deferreds (and stop() Deferreds) are answered late but legitimately
(audit 12, docs/reviews/audit-12.md): ``completion.operation`` and ``completion.stop`` must never call them
hung. Each answers every waiter by the time it is stopped and idle, in a different way.

- ``late_stop``: ``stop()`` answers the waiters from a timer 50 ms after it, and its own Deferred then.
- ``chained``: ``follow()`` returns a Deferred chained to the newest ``wait()`` waiter (or answered at once).
- ``sem_waiters``: ``lease()`` waits for a ``DeferredSemaphore`` token (held 20 ms); ``stop()`` cancels waiters.
- ``lock_waiters``: the same on a ``DeferredLock``.
- ``fired``: ``ping()`` returns an already-fired Deferred; ``stop()`` returns one too.
- ``coro``: ``wait()`` is a coroutine through ``ensureDeferred`` awaiting a waiter stop() fails.
- ``handled``: ``wait()`` returns a Deferred whose failure at stop() the subject turns into a value.
- ``listed_stop``: ``stop()`` returns a ``DeferredList`` of the waiters it fails and the jobs in flight.
- ``flush``: ``flush()`` answers once every submitted job ended (a ``DeferredList`` of them).
- ``restart``: ``stop()`` then ``resume()`` (declared ``restarts=True``); ``when_stopped()`` is answered at
  the next ``stop()``, and its ``stop()`` returns a Deferred fired at once.

Buggy twins of ``restart`` (session 13), which the restart declaration must not excuse:

- ``restart_forgets``: a stop after a restart answers none of the waiters asked since the restart.
- ``ignores_stop``: ``stop()`` answers the waiters but leaves the subject running, so a waiter asked after
  it (with no restart) is answered by nothing.
- ``undeclared_wake``: ``wake()`` restarts it as ``resume()`` does but is not declared ``restarts``
  (``declared_wake``: the same, declared).
- ``first_stop_hangs``: the Deferred the first ``stop()`` returns never fires once it is restarted.
"""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import strategies as st
from twisted.internet import defer

from harness import Operation, Target


class _Base:
    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.waiting: list[defer.Deferred[Any]] = []
        self.in_flight: list[defer.Deferred[Any]] = []
        self.stopped = False

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        d = defer.maybeDeferred(job)
        self.in_flight.append(d)

        def done(result: Any) -> Any:
            self.in_flight.remove(d)
            return result

        d.addBoth(done)
        return d

    def wait(self) -> defer.Deferred[Any]:
        if self.stopped:  # a stopped subject answers at once
            return defer.fail(RuntimeError("stopped"))
        d: defer.Deferred[Any] = defer.Deferred()
        self.waiting.append(d)
        return d

    def _fail_waiting(self) -> None:
        self.stopped = True
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            if not d.called:
                d.errback(RuntimeError("stopped"))


class LateStop(_Base):
    def stop(self) -> defer.Deferred[None]:
        self.stopped = True
        done: defer.Deferred[None] = defer.Deferred()

        def later() -> None:
            self._fail_waiting()
            done.callback(None)

        self.clock.callLater(0.05, later)
        return done


class Chained(_Base):
    def follow(self) -> defer.Deferred[Any]:
        if not self.waiting:
            return defer.succeed("none")
        d: defer.Deferred[Any] = defer.Deferred()
        self.waiting[-1].addBoth(lambda r: (d.callback("followed"), r)[1])
        return d

    def stop(self) -> None:
        self._fail_waiting()


class SemWaiters(_Base):
    def __init__(self, clock: Any, lock: bool = False) -> None:
        super().__init__(clock)
        self.gate: defer.DeferredSemaphore | defer.DeferredLock = defer.DeferredLock() if lock else defer.DeferredSemaphore(1)

    def lease(self) -> defer.Deferred[Any]:
        d = self.gate.acquire()

        def held(_: Any) -> str:
            self.clock.callLater(0.02, self.gate.release)
            return "leased"

        return d.addCallback(held)

    def stop(self) -> None:
        for waiter in list(self.gate.waiting):
            waiter.cancel()


class Fired(_Base):
    def ping(self) -> defer.Deferred[str]:
        return defer.succeed("pong")

    def stop(self) -> defer.Deferred[None]:
        return defer.succeed(None)


class Coro(_Base):
    def coro_wait(self) -> defer.Deferred[Any]:
        async def body() -> str:
            try:
                await self.wait()
            except RuntimeError:
                return "stopped"
            return "woken"

        return defer.ensureDeferred(body())

    def stop(self) -> None:
        self._fail_waiting()


class Handled(_Base):
    def handled_wait(self) -> defer.Deferred[Any]:
        return self.wait().addErrback(lambda f: f.trap(RuntimeError) and "default")

    def stop(self) -> None:
        self._fail_waiting()


class ListedStop(_Base):
    def stop(self) -> defer.Deferred[Any]:
        self.stopped = True
        waiting = list(self.waiting)
        self.clock.callLater(0, self._fail_waiting)
        return defer.DeferredList(waiting + list(self.in_flight), consumeErrors=True)


class Flush(_Base):
    def flush(self) -> defer.Deferred[Any]:
        return defer.DeferredList(list(self.in_flight), consumeErrors=True)

    def stop(self) -> None:
        pass


class Restart(_Base):
    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.running = True
        self.stopped_waiters: list[defer.Deferred[Any]] = []
        self.stops = 0

    def when_stopped(self) -> defer.Deferred[Any]:
        if not self.running:
            return defer.succeed("already stopped")
        d: defer.Deferred[Any] = defer.Deferred()
        self.stopped_waiters.append(d)
        return d

    def resume(self) -> None:
        self.running = True

    def wake(self) -> None:
        self.resume()

    def stop(self) -> defer.Deferred[None]:
        self.running = False
        self.stops += 1
        waiters, self.stopped_waiters = self.stopped_waiters, []
        for d in waiters:
            d.callback("stopped")
        return defer.succeed(None)


class RestartForgets(Restart):
    def stop(self) -> defer.Deferred[None]:
        if not self.stops:
            return super().stop()
        self.running = False  # the bug: the waiters asked since the restart are left waiting
        return defer.succeed(None)


class IgnoresStop(Restart):
    def stop(self) -> defer.Deferred[None]:
        done = super().stop()
        self.running = True  # the bug: still running, so a later when_stopped() waits for a stop to come
        return done


class FirstStopHangs(Restart):
    def stop(self) -> defer.Deferred[None]:
        super().stop()
        return defer.Deferred() if self.stops == 1 else defer.succeed(None)  # the bug: the first never fires


class Shared:
    """``when()`` returns one shared Deferred to every caller; it fails with ``LookupError`` at 10 ms
    (``tests/test_audit12.py``, ``tests/test_shared_answers.py``)."""

    def __init__(self, clock: Any) -> None:
        self.ready: defer.Deferred[None] = defer.Deferred()
        clock.callLater(0.01, self.ready.errback, LookupError("down"))

    def submit(self, job: Any) -> Any:
        return defer.maybeDeferred(job)

    def when(self) -> defer.Deferred[None]:
        return self.ready

    def stop(self) -> None:
        pass


WAIT = Operation(lambda s: s.wait(), raises=(RuntimeError,))
CANCELLED = (defer.CancelledError,)


def _target(build: Callable[[Any], Any], description: str, **operations: Operation) -> Target:
    return Target(build=build, operations=operations, description=description)


late_stop = _target(LateStop, "audit 12: stop() answers waiters from a timer after it", wait=WAIT)
chained = _target(Chained, "audit 12: follow() chained to the newest waiter", wait=WAIT, follow=Operation(lambda s: s.follow()))
sem_waiters = _target(lambda c: SemWaiters(c), "audit 12: DeferredSemaphore waiters cancelled at stop",
                      lease=Operation(lambda s: s.lease(), raises=CANCELLED))
lock_waiters = _target(lambda c: SemWaiters(c, lock=True), "audit 12: DeferredLock waiters cancelled at stop",
                       lease=Operation(lambda s: s.lease(), raises=CANCELLED))
fired = _target(Fired, "audit 12: already-fired Deferreds", ping=Operation(lambda s: s.ping()))
coro = _target(Coro, "audit 12: a coroutine through ensureDeferred", wait=Operation(lambda s: s.coro_wait()))
handled = _target(Handled, "audit 12: a failure the subject handles", wait=Operation(lambda s: s.handled_wait()))
listed_stop = _target(ListedStop, "audit 12: stop() returns a DeferredList", wait=WAIT)
flush = _target(Flush, "audit 12: flush() answers once the jobs ended", flush=Operation(lambda s: s.flush()))
WHEN_STOPPED = Operation(lambda s: s.when_stopped())
RESUME = Operation(lambda s: s.resume(), restarts=True)
restart = _target(Restart, "audit 12: when_stopped() answered at the next stop(), resume() restarts",
                  when_stopped=WHEN_STOPPED, resume=RESUME)
restart_forgets = _target(RestartForgets, "session 13: a stop after a restart forgets the waiters",
                          when_stopped=WHEN_STOPPED, resume=RESUME)
ignores_stop = _target(IgnoresStop, "session 13: stop() leaves the subject running", when_stopped=WHEN_STOPPED, resume=RESUME)
undeclared_wake = _target(Restart, "session 13: wake() restarts the subject, undeclared",
                          when_stopped=WHEN_STOPPED, resume=RESUME, wake=Operation(lambda s: s.wake()))
declared_wake = _target(Restart, "session 13: wake() restarts the subject, declared", when_stopped=WHEN_STOPPED,
                        resume=RESUME, wake=Operation(lambda s: s.wake(), restarts=True))
first_stop_hangs = _target(FirstStopHangs, "session 13: the first stop()'s Deferred never fires after a restart",
                           when_stopped=WHEN_STOPPED, resume=RESUME)

ALL = ("late_stop", "chained", "sem_waiters", "lock_waiters", "fired", "coro", "handled", "listed_stop", "flush", "restart")


class Handed(Shared):
    """``Shared``, and more Deferreds handed to two of the harness's callers (session 14): ``last()`` returns the
    Deferred ``submit`` returned for the newest job (a caller of ``submit`` and of ``last()`` hold one Deferred),
    ``stop()`` returns ``ready`` (failed at 10 ms, as ``when()`` does). Every callback the subject adds of its
    own, at 5 ms, notes what it received in ``seen``: what it would see without the harness."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.jobs: list[defer.Deferred[Any]] = []
        self.seen: list[str] = []
        clock.callLater(0.005, self._watch_all)

    def submit(self, job: Any) -> Any:
        d = defer.maybeDeferred(job)
        self.jobs.append(d)
        return d

    def last(self) -> defer.Deferred[Any]:
        return self.jobs[-1]

    def _watch_all(self) -> None:
        for d in [*self.jobs, self.ready]:
            d.addBoth(self._note)

    def _note(self, result: Any) -> Any:
        self.seen.append(type(getattr(result, "value", result)).__name__)
        return result

    def stop(self) -> defer.Deferred[None]:  # type: ignore[override]
        return self.ready
