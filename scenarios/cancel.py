"""Cancellation done wrong: three hand-rolled pools, each careful but for one thing.

All three are the shared pool skeleton (``scenarios._pool.Pool``: jobs
``limit`` at a time from a FIFO queue, results and errors delivered to the
caller, a cancelled waiting job taken out of the queue) with one override
each: what cancelling a job does.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario
from ._pool import Entry, Pool


class DetachingPool(Pool):
    """Cancelling a running job detaches the caller but leaves the job running.

    BUG: the canceller (``_cancel``) only stops the caller from waiting ("the job will
    finish on its own and free its slot"); the job's own Deferred is never
    cancelled, so the work, and the slot, stay busy for nothing, and a job
    that hangs holds its slot for ever. Caught by: ``cancellation.propagates``.
    """

    def _cancel(self, entry: Entry) -> None:
        if entry.running is None:
            self.waiting.remove(entry)
        # BUG: a running job is left running; Twisted fails the caller with CancelledError.


class CooperativeCancelPool(Pool):
    """``cancel()`` is a request the pool honours at its next opportunity.

    The pool returns (``_new_caller``) a ``Deferred`` subclass whose ``cancel`` only sets a
    flag: a waiting job is failed with ``CancelledError`` when its turn comes
    (instead of running), a running one when it finishes (its result is
    dropped). BUG: so the cancelled Deferred fires late, at the job's turn or
    its end (never, if the job hangs); callers that cancel to stop waiting
    (timeouts, shutdown) keep waiting. Caught by: ``cancellation.fires``.
    """

    def _new_caller(self, entry: Entry) -> defer.Deferred[Any]:
        return _CancelRequest(entry)

    def _start(self, entry: Entry) -> None:
        if entry.cancelled:
            self.active -= 1
            entry.caller.errback(defer.CancelledError())
            return
        super()._start(entry)

    def _deliver(self, result: Any, entry: Entry) -> None:
        if entry.cancelled and not entry.caller.called:
            entry.caller.errback(defer.CancelledError())  # the job's own outcome is dropped
            return
        super()._deliver(result, entry)


class _CancelRequest(defer.Deferred):  # type: ignore[type-arg]
    """A Deferred whose ``cancel`` asks the pool to cancel, and returns."""

    def __init__(self, entry: Entry) -> None:
        super().__init__()
        self._entry = entry

    def cancel(self) -> None:
        if not self.called:
            self._entry.cancelled = True  # BUG: nothing fires now


class TicketPool(Pool):
    """Hands out ``Ticket`` Deferreds (``_new_caller``) and keeps the open ones in a list.

    BUG: ``Ticket.cancel`` takes the ticket off the open list with
    ``list.remove`` before cancelling; on a second cancel, or a cancel after
    the result (the ticket was taken off when it fired), ``remove`` raises
    ``ValueError`` out of ``cancel()``. Caught by: ``cancellation.harmless``.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        super().__init__(clock, limit)
        self.open: list[Ticket] = []

    def _new_caller(self, entry: Entry) -> defer.Deferred[Any]:
        ticket = Ticket(self, entry)
        self.open.append(ticket)
        return ticket

    def _deliver(self, result: Any, entry: Entry) -> None:
        ticket = entry.caller
        if ticket in self.open:
            self.open.remove(ticket)
        super()._deliver(result, entry)


class Ticket(defer.Deferred):  # type: ignore[type-arg]
    """A Deferred that knows its pool."""

    def __init__(self, pool: TicketPool, entry: Entry) -> None:
        super().__init__(lambda d: pool._cancel(entry))
        self._pool = pool

    def cancel(self) -> None:
        self._pool.open.remove(self)  # BUG: raises ValueError if the ticket is no longer open
        super().cancel()


detaching_pool = Target(
    build=lambda clock: DetachingPool(clock, limit=2),
    limit=2,
    order="fifo",
    description="pool whose cancel detaches the caller but leaves the running job running",
)

cooperative_cancel_pool = Target(
    build=lambda clock: CooperativeCancelPool(clock, limit=2),
    limit=2,
    order="fifo",
    description="pool whose cancel() only sets a flag: the Deferred fires at the job's turn or end",
)

ticket_pool = Target(
    build=lambda clock: TicketPool(clock, limit=2),
    limit=2,
    order="fifo",
    description="pool whose Ticket.cancel() raises ValueError on a second cancel or after the result",
)

SCENARIOS = (
    Scenario(
        "scenarios.cancel:detaching_pool",
        "cancellation.propagates",
        "cancelling a running job only detaches the caller: the job's own Deferred is never cancelled",
        "Deferred",
    ),
    Scenario(
        "scenarios.cancel:cooperative_cancel_pool",
        "cancellation.fires",
        "cancel() only sets a flag: the cancelled Deferred fires at the job's turn or when the job ends",
        "Deferred subclass",
    ),
    Scenario(
        "scenarios.cancel:ticket_pool",
        "cancellation.harmless",
        "Ticket.cancel() does list.remove first: cancelling twice or after the result raises ValueError",
        "Deferred subclass",
    ),
)
