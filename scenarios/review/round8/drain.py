"""A graceful drain coordinator (written blind).

`run(job)` starts `job()` (a callable returning a Deferred or a value) while the coordinator is open
and returns its Deferred; once `drain(deadline)` has been called every `run` fails at once with
Draining. `drain(deadline)` waits for the work in flight; whatever is still running `deadline`
seconds later is cancelled. Every Deferred returned by `drain` fires exactly once, with a
DrainSummary, when the last job has finished or been cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

log = Logger()


class Draining(Exception):
    """run() was called after drain() began: the coordinator admits no new work."""


@dataclass(frozen=True)
class DrainSummary:
    completed: int  # jobs that finished on their own (success or failure)
    cancelled: int  # jobs cancelled at the deadline


class DrainCoordinator:
    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._inflight: dict[int, "Deferred[Any]"] = {}
        self._next = 0
        self.draining = False
        self.drained = False
        self._expiring = False
        self._timer: Optional[IDelayedCall] = None
        self._done: "Deferred[DrainSummary]" = Deferred()
        self.admitted = 0
        self.rejected = 0
        self.completed = 0
        self.cancelled = 0

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def _closed(self) -> bool:
        return self.draining

    def run(self, job: Callable[[], Any]) -> "Deferred[Any]":
        if self._closed():
            self.rejected += 1
            return fail(Draining())
        self.admitted += 1
        token = self._next
        self._next += 1
        d = maybeDeferred(job)
        if d.called:
            self.completed += 1
            return d
        self._inflight[token] = d
        d.addBoth(self._finished, token)
        return d

    def _finished(self, result: Any, token: int) -> Any:
        if self._inflight.pop(token, None) is not None and not self._expiring:
            self.completed += 1
        if self.draining and not self._inflight and not self._expiring and not self.drained:
            self._finish()
        return result

    def drain(self, deadline: float) -> "Deferred[DrainSummary]":
        if not self.draining:
            self.draining = True
            if not self._inflight:
                self._finish()
            else:
                self._timer = self.clock.callLater(deadline, self._expire)
        d: "Deferred[DrainSummary]" = Deferred()
        self._done.addCallback(self._notify, d)
        return d

    @staticmethod
    def _notify(summary: DrainSummary, d: "Deferred[DrainSummary]") -> DrainSummary:
        d.callback(summary)
        return summary

    def _cancel_deadline(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _finish(self) -> None:
        self._cancel_deadline()
        self.drained = True
        self._done.callback(DrainSummary(self.completed, self.cancelled))

    def _expire(self) -> None:
        self._timer = None
        self._expiring = True
        for d in self._leftover():
            self.cancelled += 1
            try:
                d.cancel()
            except Exception:
                # Found by the harness: a job whose own canceller raises escaped into the reactor
                # here and the drain never fired. Such a job never ends; the drain gives up on it.
                log.failure("cancelling a job at the drain deadline")
        self._expiring = False
        self._inflight.clear()
        self._finish()

    def _leftover(self) -> Any:
        return list(self._inflight.values())


class DeadlineNotCleared(DrainCoordinator):
    """Bug: finishing early leaves the deadline timer armed; at the deadline it finishes again."""

    def _cancel_deadline(self) -> None:
        pass


class CancelWhileIterating(DrainCoordinator):
    """Bug: the deadline cancels while iterating the live in-flight dict; a job whose cancel fires
    synchronously removes itself and the loop dies with 'dictionary changed size'."""

    def _leftover(self) -> Any:
        return self._inflight.values()


class AdmitsWhenIdle(DrainCoordinator):
    """Bug: the admission check also asks for work in flight, so an idle draining (or drained)
    coordinator admits new jobs."""

    def _closed(self) -> bool:
        return self.draining and bool(self._inflight)
