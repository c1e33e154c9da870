"""A multiplexed RPC client: many calls in flight over one connection, answered out of order.

``call(payload)`` gives the request a fresh id, hands ``(id, payload)`` to the injected
``send`` callable and returns a Deferred. The connection delivers answers with
``answer_received(id, result)`` in any order. Each call has its own timeout: when it expires the
call fails with :class:`RpcTimeout` and a late answer for that id is dropped (counted in
``dropped``). ``connection_lost()`` fails every pending call with :class:`ConnectionDone`;
``close()`` does the same with :class:`ClientClosed` and refuses further calls. Every call's
Deferred fires exactly once and no timer outlives its call.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime


class RpcTimeout(Exception):
    """No answer arrived within the call's timeout."""


class ConnectionDone(Exception):
    """The connection was lost with the call pending."""


class ClientClosed(Exception):
    """The client was closed (before or while the call was pending)."""


class RpcClient:
    """Calls with ids, per-call timeouts, out-of-order answers."""

    def __init__(
        self, clock: IReactorTime, send: Callable[[int, object], None], timeout: float
    ) -> None:
        self._clock = clock
        self._send = send
        self.timeout = timeout
        self._next_id = 0
        self._pending: dict[int, tuple[Deferred[object], DelayedCall]] = {}
        self.closed = False
        self.dropped = 0

    def call(self, payload: object) -> Deferred[object]:
        if self.closed:
            return fail(ClientClosed())
        self._next_id += 1
        request_id = self._next_id
        d: Deferred[object] = Deferred(lambda _d: self._cancelled(request_id))
        timer = self._clock.callLater(self.timeout, self._timed_out, request_id)
        self._pending[request_id] = (d, timer)
        self._send(request_id, payload)
        return d

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def _cancelled(self, request_id: int) -> None:
        entry = self._pending.pop(request_id, None)
        if entry is not None and entry[1].active():
            entry[1].cancel()

    def _timed_out(self, request_id: int) -> None:
        entry = self._pending.pop(request_id, None)
        if entry is not None:
            entry[0].errback(RpcTimeout(request_id))

    def answer_received(self, request_id: int, result: object) -> None:
        entry = self._pending.pop(request_id, None)
        if entry is None:
            self.dropped += 1
            return
        d, timer = entry
        self._stop_timer(timer)
        d.callback(result)

    def _stop_timer(self, timer: DelayedCall) -> None:
        if timer.active():
            timer.cancel()

    def connection_lost(self) -> None:
        self._fail_all(ConnectionDone())

    def close(self) -> None:
        self.closed = True
        self._fail_all(ClientClosed())

    def _fail_all(self, error: Exception) -> None:
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            self._stop_timer(timer)
            d.errback(error)


class RpcTimeoutKeepsId(RpcClient):
    """Bug: a timeout fails the call but leaves its id pending, so a late answer fires the
    already-failed Deferred again (AlreadyCalledError) and lost-connection fails it twice."""

    def _timed_out(self, request_id: int) -> None:
        entry = self._pending.get(request_id)
        if entry is not None:
            entry[0].errback(RpcTimeout(request_id))


class RpcAnswerLeavesTimer(RpcClient):
    """Bug: an answer does not cancel the call's timer (a forgotten cancel); the timer later
    fires for an id that is gone and finds nothing, but it outlives the call."""

    def answer_received(self, request_id: int, result: object) -> None:
        entry = self._pending.pop(request_id, None)
        if entry is None:
            self.dropped += 1
            return
        entry[0].callback(result)


class RpcAnswersInOrder(RpcClient):
    """Bug: answers are matched to the oldest pending call instead of by id, so out-of-order
    answers reach the wrong caller."""

    def answer_received(self, request_id: int, result: object) -> None:
        if request_id not in self._pending:
            self.dropped += 1
            return
        oldest = min(self._pending)
        d, timer = self._pending.pop(oldest)
        self._stop_timer(timer)
        d.callback(result)
