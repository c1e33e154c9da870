"""The per-example watchdog: a wall-clock limit on one run, so a target that hangs cannot hang CI.

Virtual time cannot stop code that never returns: a ``while True`` in a
callback, a lock that is never released, a blocking read. The watchdog
arms ``SIGALRM`` (``setitimer(ITIMER_REAL)``) for the length of one run; when
it fires, the handler raises ``Expired`` in whatever code is running.

``Expired`` is a ``BaseException``, so an ``except Exception`` in the target
does not swallow it. Twisted's ``Deferred`` does (it turns any exception in a
callback into a ``Failure``), and so may a careless ``except BaseException``:
the timer therefore keeps firing every ``REPEAT_S`` until the run notices,
and the runner also polls ``expired`` between the steps it drives. The
handler never raises inside the runner itself (it polls), so the runner's
own recovery cannot be interrupted.

Inside a session (``harness.run.session``) the timer is set once a run, not
set and cleared: ``stop`` leaves a timer that has not gone off running
(it lingers), and the next ``start`` sets it again, in one system call
whose answer says what was running before (the watchdog's own lingering
timer, or someone else's, which is put back and left alone). A lingering
timer that goes off between runs (a pause longer than the limit) is
cleared by the handler; a shot of it that Python handles only after the
next run began is told apart by the time the run has taken, read from
the monotonic clock when it began (``_started``): a run is declared hung
only once its own limit has passed. ``disarm`` clears a lingering timer.

Signals only reach the main thread: elsewhere, on platforms without
``setitimer``, or while another ``ITIMER_REAL`` is armed (``pytest-timeout``,
the user's own alarm), the watchdog does nothing and a run is not limited.
"""

from __future__ import annotations

import signal
import threading
from time import monotonic as _monotonic
from types import FrameType, TracebackType
from typing import Any

from harness.guard.signals import set_handler

#: ``signal.setitimer`` as imported: the escape guard refuses the public name to a run (a target's real timer), and
#: never patches this module, whose timer is the run's own.
_setitimer: Any = getattr(signal, "setitimer", None)
#: ``signal.signal`` as imported: the guard refuses the public names to a run given SIGALRM, whose handler is this
#: module's (a target that ignored it would never be stopped).
_set_handler = set_handler

#: What ``setitimer`` answers for a timer that is not running.
_OFF = (0.0, 0.0)
#: The watchdog whose timer lingers (``Watchdog.stop``), if any: not someone else's timer to the others.
_LINGERING: list[Watchdog | None] = [None]
#: The wall-clock seconds one run may take unless configured.
DEFAULT_TIMEOUT_S = 10.0
#: Seconds between repeated shots once the limit has passed, until the run stops.
REPEAT_S = 0.25
#: How much earlier than ``seconds`` after a run began a shot may come and still count as its limit passing
#: (``setitimer`` never fires early, but it takes microseconds and its time is in microseconds); a stray shot
#: of the previous run's lingering timer comes within microseconds of the start.
EARLY_S = 1e-3
#: The longest limit ``setitimer`` is asked for (larger values overflow ``time_t`` on some platforms).
MAX_TIMEOUT_S = 1e7

#: Modules in which the handler only records the expiry: they poll it and stop cleanly themselves
#: (the runner's own code: its lifecycle, steps, log capture and garbage policy).
_POLLING_MODULES = frozenset(
    {
        __name__,
        "harness.run.runner",
        "harness.run.steps",
        "harness.run.logcapture",
        "harness.run.garbage",
        "harness.run.describe",
        "harness.run.checks",
        "harness.run.session",
    }
)


class Expired(BaseException):
    """Raised in the target's code when a run has used up its wall-clock limit."""


class Watchdog:
    """A context manager that limits the wall-clock time of the code it wraps to ``seconds``.

    ``seconds`` of None or 0 means no limit. ``active`` says whether the
    watchdog could arm (see the module docstring for when it cannot);
    ``expired`` turns true when the limit passes, and ``check()`` raises
    ``Expired`` from then on.

    Entering it installs the ``SIGALRM`` handler and starts the timer;
    leaving it stops both. A campaign that runs many schedules installs the
    handler once (``install``) and only starts and stops the timer for each
    run (``start``, ``stop``): between runs the handler ignores any shot.

    Example::

        with Watchdog(10) as dog:
            while True:        # Expired is raised here after 10 s
                dog.check()    # (or here, in code that polls)
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = _limit(seconds)
        self.active = False
        self.expired = False
        self.installed = False
        self._armed = False
        #: Whether this watchdog's timer was left running when the last run stopped (reset by the next start).
        self._lingering = False
        #: ``time.monotonic()`` when the current run's timer was set.
        self._started = 0.0
        self._previous: Any = None

    def __enter__(self) -> Watchdog:
        if self.seconds is not None and self.install():
            self.start(self.seconds)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.disarm()

    def install(self) -> bool:
        """Install the ``SIGALRM`` handler if the watchdog can arm here; return whether it did."""
        if self.installed or not _can_arm():
            return self.installed
        self._previous = _set_handler(signal.SIGALRM, self._handle)
        self.installed = True
        return True

    def start(self, seconds: float | None) -> None:
        """A run begins: the limit is ``seconds`` (None or 0: none) from now, if the handler is installed
        and no one else's ``ITIMER_REAL`` is running."""
        self.seconds = _limit(seconds)
        self.expired = False
        lingering, self._lingering = self._lingering, False  # (first: a shot handled from here on is ignored)
        if not self.installed or self.seconds is None:
            if lingering:
                _clear()
            return
        self._started = _monotonic()
        # One system call sets the timer and says what was running: nothing, the watchdog's own lingering
        # timer (its interval is REPEAT_S), or someone else's, put back as it was and left alone.
        previous = _setitimer(signal.ITIMER_REAL, self.seconds, REPEAT_S)
        if previous != _OFF and not (lingering and previous[1] == REPEAT_S):
            _setitimer(signal.ITIMER_REAL, *previous)
            return
        self.active = self._armed = True

    def stop(self) -> None:
        """The run is over: its timer no longer counts (the handler stays installed); idempotent.

        A timer that has not gone off is left running (lingering): the next ``start`` sets it again,
        ``disarm`` or a shot between runs clears it. One that went off (it repeats) is cleared now.
        """
        self._armed = False
        if self.active:
            self.active = False
            if self.expired:
                _setitimer(signal.ITIMER_REAL, 0)
            else:
                self._lingering = True
                _LINGERING[0] = self

    def disarm(self) -> None:
        """Stop the timer and restore the previous handler; idempotent."""
        self.stop()
        if self._lingering:
            self._lingering = False
            _clear()
        if _LINGERING[0] is self:
            _LINGERING[0] = None
        if self.installed:
            self.installed = False
            _set_handler(signal.SIGALRM, self._previous)

    def check(self) -> None:
        """Raise ``Expired`` if the limit has passed (for code that polls)."""
        if self.expired and self._armed:
            raise Expired(f"the run took longer than {self.seconds:g}s of wall-clock time")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._armed:
            # A shot delivered just before the timer stopped, or the lingering timer gone off between runs.
            if self._lingering:
                self._lingering = False
                _clear()
            return
        if _monotonic() - self._started < self.seconds - EARLY_S:  # type: ignore[operator]
            return  # a shot of the previous run's lingering timer, handled only after this run began
        self.expired = True
        if frame is not None and frame.f_globals.get("__name__") in _POLLING_MODULES:
            return
        self.check()


def _clear() -> None:
    """Clear the watchdog's ``ITIMER_REAL``; a timer of someone else's that replaced it is put back."""
    previous = _setitimer(signal.ITIMER_REAL, 0)
    if previous != _OFF and previous[1] != REPEAT_S:
        _setitimer(signal.ITIMER_REAL, *previous)


def _limit(seconds: float | None) -> float | None:
    return min(seconds, MAX_TIMEOUT_S) if seconds else None


def _can_arm() -> bool:
    """Whether a watchdog may install here: in the main thread, with no ``ITIMER_REAL`` running but,
    at most, another watchdog's lingering one (cleared: that one's next start finds someone else's)."""
    if _setitimer is None or threading.current_thread() is not threading.main_thread():
        return False
    running = signal.getitimer(signal.ITIMER_REAL)
    if running == _OFF:
        return True
    other = _LINGERING[0]
    if other is not None and other._lingering and running[1] == REPEAT_S:
        other._lingering = False
        _clear()
        return True
    return False
