"""A two-slot pool with a one-place queue that sheds the queued job when a third arrives, and a timeout of
100 ms per job (audit 12, docs/reviews/audit-12.md): ``Target(sheds=...)`` must excuse only the cancel the
shedding made, not an early timeout that happens to fall in the instant of an unrelated shed.

``ShedPool`` runs at most two jobs; a job submitted while both slots are busy waits in a queue of one; a
newer one sheds the waiter (its caller refused with ``Shed``). A running job is cancelled after
``TIMEOUT_S`` and its caller fails with ``TimeoutError`` through the job's cancellation (a job whose
canceller raises leaves its caller unanswered and gives its slot up). ``EarlyShedPool`` arms that timer at half of it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from harness import Operation, Target

TIMEOUT_S = 0.1


class Shed(Exception):
    """The caller's job was shed to make room for a newer one."""


class ShedPool:
    timeout_s = TIMEOUT_S

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.running = 0
        self.queued: tuple[Any, defer.Deferred[Any]] | None = None
        self.started: list[defer.Deferred[Any]] = []
        self.aborted: list[defer.Deferred[Any]] = []  # cancelled on purpose: the caller gets CancelledError

    def submit(self, job: Any) -> defer.Deferred[Any]:
        work: list[defer.Deferred[Any]] = []  # the job's Deferred once it runs

        def cancel(_: Any) -> None:
            if self.queued is not None and self.queued[1] is caller:
                self.queued = None
            elif work:
                work.append(caller)  # marks the cancel as the caller's: its CancelledError is passed on
                work[0].cancel()  # the caller is answered by the job's end (a raising canceller propagates)

        caller: defer.Deferred[Any] = defer.Deferred(cancel)
        caller.work = work  # type: ignore[attr-defined]
        if self.running < 2:
            self._run(job, caller)
        else:
            if self.queued is not None:
                _, shed = self.queued
                shed.errback(Shed("shed"))
            self.queued = (job, caller)
        return caller

    def abort_newest(self) -> None:
        """Cancel the job that started last, on purpose (declared ``cancels_work``)."""
        if self.started:
            work = self.started.pop()
            if not work.called:
                self.aborted.append(work)
                work.cancel()

    def _run(self, job: Any, caller: defer.Deferred[Any]) -> None:
        self.running += 1
        d = defer.maybeDeferred(job)
        caller.work.append(d)  # type: ignore[attr-defined]
        self.started.append(d)
        timer = self.clock.callLater(self.timeout_s, self._time_out, d, caller)

        def done(result: Any) -> None:
            if timer.active():
                timer.cancel()
            if isinstance(result, Failure) and result.check(defer.CancelledError) and caller not in caller.work and d not in self.aborted:  # type: ignore[attr-defined]
                result = Failure(TimeoutError("timed out"))  # the timer cancelled it
            if not caller.called:
                caller.callback(result) if not isinstance(result, Failure) else caller.errback(result)
            self._free()

        d.addBoth(done)
        d.addBoth(lambda _: self.started.remove(d) if d in self.started else None)

    def _time_out(self, d: defer.Deferred[Any], caller: defer.Deferred[Any]) -> None:
        try:
            d.cancel()
        except Exception:
            self._free()  # a job whose canceller raised never ends: its slot is given up

    def _free(self) -> None:
        self.running -= 1
        if self.queued is not None and self.running < 2:
            job, caller = self.queued
            self.queued = None
            self._run(job, caller)


class EarlyShedPool(ShedPool):
    """BUG: the timeout is armed at half its length."""

    timeout_s = TIMEOUT_S / 2


class WrongVictimPool(ShedPool):
    """BUG: a job submitted while the queue is full cancels the oldest running job instead of shedding the
    waiter (found only when ``abort_newest()`` was called earlier in that instant: the excuse must not reach it)."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        if self.running >= 2 and self.queued is not None and self.started:
            victim = self.started.pop(0)
            if not victim.called:
                self.aborted.append(victim)
                victim.cancel()
        return super().submit(job)


ABORT = {"abort_newest": Operation(lambda pool: pool.abort_newest(), cancels_work=True)}


def _pool(cls: type[ShedPool]) -> Target:
    return Target(build=cls, limit=2, timeout_ms=100, timeout_error=TimeoutError, rejects=(Shed,), sheds=(Shed,),
                  operations=ABORT, description=f"audit 12: {cls.__name__}")


shed_pool = _pool(ShedPool)
early_shed_pool = _pool(EarlyShedPool)
wrong_victim_pool = _pool(WrongVictimPool)
