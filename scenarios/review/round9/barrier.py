"""A reusable barrier for N parties, with a timeout per generation.

``wait()`` returns a Deferred. When the N-th party arrives, all N waiting parties are released
together with the generation number. The first arrival of a generation starts its deadline: if
the generation is not full ``timeout`` seconds later, all its waiting parties fail with
:class:`BarrierTimeout` and the barrier moves on to the next generation. Cancelling a waiting
party's Deferred makes it leave: it no longer counts towards N. After a release or a timeout
the barrier is reusable, and the next generation gets its own fresh deadline.
"""

from __future__ import annotations

from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime


class BarrierTimeout(Exception):
    """The generation did not fill up before its deadline."""


class Barrier:
    """N parties meet; all released together or all failed at the deadline."""

    def __init__(self, clock: IReactorTime, parties: int, timeout: float) -> None:
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._clock = clock
        self.parties = parties
        self.timeout = timeout
        self.generation = 0
        self._waiting: list[Deferred[int]] = []
        self._deadline: DelayedCall | None = None
        self.released: list[int] = []  # sizes of released generations
        self.timed_out = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def wait(self) -> Deferred[int]:
        d: Deferred[int] = Deferred(self._leave)
        self._waiting.append(d)
        if self._full():
            self._release()
        elif self._deadline is None:
            self._deadline = self._clock.callLater(self.timeout, self._expire)
        return d

    def _full(self) -> bool:
        return len(self._waiting) >= self.parties

    def _leave(self, d: Deferred[int]) -> None:
        if d in self._waiting:
            self._waiting.remove(d)
        if not self._waiting:
            self._clear_deadline()

    def _clear_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _release(self) -> None:
        self._clear_deadline()
        waiting, self._waiting = self._waiting, []
        generation = self.generation
        self.generation += 1
        self.released.append(len(waiting))
        for d in waiting:
            d.callback(generation)

    def _expire(self) -> None:
        self._deadline = None
        waiting, self._waiting = self._waiting, []
        self.generation += 1
        self.timed_out += 1
        for d in waiting:
            d.errback(BarrierTimeout(self.generation - 1))


class BarrierCancelKeepsSlot(Barrier):
    """Bug: a cancelled party is not removed (the slot is not freed on cancel); it still counts
    towards N and its already-cancelled Deferred is fired again at the release."""

    def _leave(self, d: Deferred[int]) -> None:
        pass


class BarrierDeadlineNotCleared(Barrier):
    """Bug: a release does not clear the deadline; the old timer fires during the next
    generation and fails its parties early (and the next generation gets no deadline)."""

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, []
        generation = self.generation
        self.generation += 1
        self.released.append(len(waiting))
        for d in waiting:
            d.callback(generation)


class BarrierOffByOne(Barrier):
    """Bug: ``>`` for ``>=``: the barrier waits for N + 1 parties, so a full generation of N
    is never released and times out."""

    def _full(self) -> bool:
        return len(self._waiting) > self.parties
