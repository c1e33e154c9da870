"""Idle timeouts for many sessions, in the manner of Twisted's ``TimeoutMixin``.

Each :class:`Session` has an idle timeout: any activity (``activity()``, a new request, an answer)
resets its timer; ``set_timeout(None)`` disarms it; ``set_timeout(t)`` re-arms it with a new
period. A session idle for its whole period times out: it is closed exactly once, and every
pending request fails with :class:`SessionTimedOut`. ``close()`` closes it explicitly (pending
requests fail with :class:`SessionClosed`). Requests on a closed session fail at once.
``closed`` fires once with the reason string ("timeout" or "closed").
"""

from __future__ import annotations

from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime


class SessionTimedOut(Exception):
    """The session was idle for its whole timeout and was closed."""


class SessionClosed(Exception):
    """The session was closed while the request was pending (or before it was made)."""


class Session:
    """One session with an idle timer."""

    def __init__(self, manager: IdleTimeoutManager, name: str, timeout: float | None) -> None:
        self._manager = manager
        self._clock = manager.clock
        self.name = name
        self.timeout: float | None = None
        self.closed: Deferred[str] = Deferred()
        self.is_closed = False
        self.last_activity = self._clock.seconds()
        self._pending: list[Deferred[object]] = []
        self._timer: DelayedCall | None = None
        self.set_timeout(timeout)

    # -- the timer ----------------------------------------------------------------------------
    def set_timeout(self, period: float | None) -> None:
        """Set a new idle period (None disarms); the timer restarts from now."""
        if self.is_closed:
            return
        self.timeout = period
        self._disarm()
        if period is not None:
            self._timer = self._clock.callLater(period, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def activity(self) -> None:
        """Reset the idle timer."""
        if self.is_closed:
            return
        self.last_activity = self._clock.seconds()
        if self._timer is not None and self._timer.active() and self.timeout is not None:
            self._timer.reset(self.timeout)

    def _timed_out(self) -> None:
        self._timer = None
        self._shut("timeout", SessionTimedOut(self.name))

    # -- requests -----------------------------------------------------------------------------
    def request(self) -> Deferred[object]:
        """A pending request, answered in order by ``answer()``."""
        if self.is_closed:
            return _failed(SessionClosed(self.name))
        self.activity()
        d: Deferred[object] = Deferred(self._cancel_request)
        self._pending.append(d)
        return d

    def _cancel_request(self, d: Deferred[object]) -> None:
        if d in self._pending:
            self._pending.remove(d)

    def answer(self, value: object) -> bool:
        """Answer the oldest pending request; False when there is none."""
        if self.is_closed or not self._pending:
            return False
        self.activity()
        self._pending.pop(0).callback(value)
        return True

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- closing ------------------------------------------------------------------------------
    def close(self) -> None:
        self._shut("closed", SessionClosed(self.name))

    def _shut(self, reason: str, error: Exception) -> None:
        if self.is_closed:
            return
        self.is_closed = True
        self._disarm()
        self._fail_pending(error)
        self._manager._forget(self)
        self.closed.callback(reason)

    def _fail_pending(self, error: Exception) -> None:
        pending, self._pending = self._pending, []
        for d in pending:
            d.errback(error)


def _failed(error: Exception) -> Deferred[object]:
    d: Deferred[object] = Deferred()
    d.errback(error)
    return d


class IdleTimeoutManager:
    """Owns the sessions; ``open()`` makes one, closed ones are forgotten."""

    session_class: type[Session] = Session

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.sessions: dict[str, Session] = {}

    def open(self, name: str, timeout: float | None) -> Session:
        session = self.session_class(self, name, timeout)
        self.sessions[name] = session
        return session

    def _forget(self, session: Session) -> None:
        if self.sessions.get(session.name) is session:
            del self.sessions[session.name]

    def close_all(self) -> None:
        for session in list(self.sessions.values()):
            session.close()


# -- buggy twins ----------------------------------------------------------------------------------
class SessionDisarmKeepsTimer(Session):
    """Bug: set_timeout(None) records the new period but leaves the old timer armed (deadline not
    cleared), so a disarmed session still times out."""

    def set_timeout(self, period: float | None) -> None:
        if self.is_closed:
            return
        self.timeout = period
        if period is not None:
            self._disarm()
            self._timer = self._clock.callLater(period, self._timed_out)


class SessionCloseLeavesTimer(Session):
    """Bug: close() does not cancel the idle timer; it fires later on the closed session (a
    forgotten cancel; the timeout handler then runs on a closed session)."""

    def _shut(self, reason: str, error: Exception) -> None:
        if self.is_closed:
            return
        self.is_closed = True
        if reason == "timeout":
            self._disarm()
        self._fail_pending(error)
        self._manager._forget(self)
        self.closed.callback(reason)

    def _timed_out(self) -> None:
        self._timer = None
        # the session was already closed: closed fires a second time
        if self.is_closed:
            self.closed.callback("timeout")
            return
        self._shut("timeout", SessionTimedOut(self.name))


class SessionTimeoutFailsOne(Session):
    """Bug: a timeout fails only the first pending request; the others hang forever."""

    def _timed_out(self) -> None:
        self._timer = None
        if self.is_closed:
            return
        self.is_closed = True
        if self._pending:
            self._pending.pop(0).errback(SessionTimedOut(self.name))
        self._manager._forget(self)
        self.closed.callback("timeout")


class ManagerDisarmKeepsTimer(IdleTimeoutManager):
    session_class = SessionDisarmKeepsTimer


class ManagerCloseLeavesTimer(IdleTimeoutManager):
    session_class = SessionCloseLeavesTimer


class ManagerTimeoutFailsOne(IdleTimeoutManager):
    session_class = SessionTimeoutFailsOne
