"""Run sessions: the escape guard and the watchdog installed once around many runs, armed for each.

Every run is guarded (``harness.guard.escapes``) and limited in wall-clock
time (``harness.guard.watchdog``). Installing both costs more than a short
run itself: patching and restoring a dozen reactor, ``time`` and process
functions, reading signal handlers, installing a ``SIGALRM`` handler. A
campaign runs thousands of schedules in a row, so it enters one
``RunSession`` around all of them: the patches and the handler are
installed when the session begins and removed when it ends, and each run
only arms them (a flag, the working directory and the signal handlers it
must put back, the timer) and disarms them when it ends. The watchdog's
timer is set once a run and left running between runs (the next run sets
it again; ``harness.guard.watchdog``): it counts only while a run is armed,
and it is cleared when the session ends.

Between runs nothing is refused: a patched function passes every call
through to the original while no run is armed, so the campaign's own code
(and other threads, as before) is never mistaken for the target's. What
each run promises holds exactly as without a session: an escape is
refused and named, a hang is stopped, the working directory and signal
handlers are put back, a forked child leaves before any campaign code.

``run_schedule`` uses the session the current thread entered, if any, and
otherwise enters one of its own for the run. A session is the current
thread's and process's alone: a forked child, another thread or a run
inside a run (a target's invariant that runs a schedule) gets its own.

Example::

    with RunSession():
        for schedule in schedules:
            run_schedule(target, schedule)   # guarded and limited, installed once
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

from harness.guard.escapes import EscapeGuard
from harness.guard.watchdog import Watchdog
from harness.run.garbage import POLICY as GARBAGE

#: The innermost session entered, or None.
_current: RunSession | None = None


class RunSession:
    """The escape guard and the watchdog of many runs, installed once (a context manager; see the module)."""

    def __init__(self) -> None:
        self.guard = EscapeGuard()
        self.dog = Watchdog(None)
        #: True while one of its runs is going on.
        self.busy = False
        self._outer: RunSession | None = None
        self._pid = os.getpid()
        self._thread = threading.get_ident()

    def __enter__(self) -> RunSession:
        global _current
        self._pid = os.getpid()
        self._thread = threading.get_ident()
        self.guard.install()
        try:
            self.dog.install()
        except BaseException:
            self.guard.uninstall()
            raise
        self._outer, _current = _current, self
        GARBAGE.hold()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        global _current
        if _current is self:
            _current = self._outer
        self._outer = None
        GARBAGE.let_go()
        try:
            self.dog.disarm()
        finally:
            self.guard.uninstall()

    def usable(self) -> bool:
        """Whether a run may use this session now: no run of it is going on, in its own process and thread."""
        return not self.busy and self.at_home()

    def at_home(self) -> bool:
        """Whether this is the process and thread the session was made in (a fork or another thread has its own)."""
        return self._pid == os.getpid() and self._thread == threading.get_ident()


def current_session() -> RunSession | None:
    """The session a run started now should use, or None (it enters one of its own)."""
    session = _current
    return session if session is not None and session.usable() else None


def running_guard() -> EscapeGuard | None:
    """The escape guard of the run going on now in this thread and process, or None (no run is): where a mistake
    of the target's glue found during a run is refused (``EscapeGuard.refuse``), to end the run with it."""
    session = _current
    if session is None or not session.busy or not session.guard.armed or not session.at_home():
        return None
    return session.guard
