"""Escapes from virtual time: the global reactor and real sleeps, refused while a run is going on.

A subject must schedule through the clock its target was built with. One
that calls the global reactor instead (``reactor.callLater``,
``deferLater(reactor, ...)``, a ``LoopingCall`` whose ``clock`` was never
set, the global ``Cooperator``) or sleeps for real escapes the harness: its
calls never fire under the fault clock, and the run's verdict means nothing.

While a run is going on, ``EscapeGuard`` replaces those entry points (on the
global reactor object and in the ``time`` module) with ones that record the
first escape and raise ``Escaped`` (a ``BaseException``, so ``except
Exception`` in the target does not hide it); the runner turns it into a
``TargetError`` whose message says how to inject the clock. Everything is
restored when the run ends, however it ends. Calls from other threads pass
through untouched.

Importing ``twisted.internet.reactor`` installs the default reactor if none
is installed yet; the guard does that on the first run, after the target's
module was imported, so a target that installs a reactor of its own at
import time keeps it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

_INJECT = (
    "pass the clock given to build(clock) to your code instead of using the global reactor "
    "(e.g. deferLater(clock, ...), LoopingCall.clock = clock)"
)

#: The global reactor's methods a run must not call, and the fix for each.
REACTOR_METHODS: dict[str, str] = {
    "callLater": _INJECT,
    "callWhenRunning": _INJECT,
    "seconds": "read the time from the clock given to build(clock) (clock.seconds()), not the global reactor",
    "run": "never run the reactor inside a target: the harness drives the clock given to build(clock)",
    "callInThread": "threads run outside virtual time: give the target a synchronous stand-in for the threaded work",
    "listenTCP": "a target must not open real sockets: give it a fake transport",
    "connectTCP": "a target must not open real sockets: give it a fake transport",
    "listenUDP": "a target must not open real sockets: give it a fake transport",
    "spawnProcess": "a target must not spawn processes: give it a fake",
}

#: Functions of the ``time`` module a run must not call, and the fix for each.
TIME_FUNCTIONS: dict[str, str] = {
    "sleep": "wait with clock.callLater or deferLater(clock, seconds) instead of sleeping for real",
}


class Escaped(BaseException):
    """Raised in the target's code when it calls the global reactor or sleeps for real during a run."""


class EscapeGuard:
    """A context manager that refuses the global reactor and real sleeps to the current thread.

    ``escaped`` is the first refused call (``"reactor.callLater"``) or None;
    ``explanation`` says how to fix it. ``check()`` raises ``Escaped`` once
    something escaped, for code that polls.
    """

    def __init__(self) -> None:
        self.escaped: str | None = None
        self.explanation = ""
        self._thread = threading.get_ident()
        self._restore: list[Callable[[], None]] = []

    def __enter__(self) -> EscapeGuard:
        self._thread = threading.get_ident()
        try:
            reactor = _global_reactor()
            for name, fix in REACTOR_METHODS.items():
                self._patch(reactor, name, f"reactor.{name}", fix)
            for name, fix in TIME_FUNCTIONS.items():
                self._patch(time, name, f"time.{name}", fix)
        except BaseException:
            self._undo()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._undo()

    def check(self) -> None:
        if self.escaped is not None:
            raise Escaped(self.escaped)

    def _patch(self, owner: Any, name: str, label: str, fix: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return
        had_own = name in vars(owner)
        guard = self

        def refused(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != guard._thread:
                return original(*args, **kwargs)
            if guard.escaped is None:
                guard.escaped, guard.explanation = label, fix
            raise Escaped(label)

        setattr(owner, name, refused)
        if had_own:
            self._restore.append(lambda: setattr(owner, name, original))
        else:
            self._restore.append(lambda: delattr(owner, name))

    def _undo(self) -> None:
        while self._restore:
            self._restore.pop()()


def _global_reactor() -> Any:
    from twisted.internet import reactor

    return reactor
