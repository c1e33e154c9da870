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

Signals only reach the main thread: elsewhere, on platforms without
``setitimer``, or while another ``ITIMER_REAL`` is armed (``pytest-timeout``,
the user's own alarm), the watchdog does nothing and a run is not limited.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

#: ``signal.setitimer`` as imported: the escape guard refuses the public name to a run (a target's real timer), and
#: never patches this module, whose timer is the run's own.
_setitimer: Any = getattr(signal, "setitimer", None)

#: The wall-clock seconds one run may take unless configured.
DEFAULT_TIMEOUT_S = 10.0
#: Seconds between repeated shots once the limit has passed, until the run stops.
REPEAT_S = 0.25
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
        self._previous = signal.signal(signal.SIGALRM, self._handle)
        self.installed = True
        return True

    def start(self, seconds: float | None) -> None:
        """A run begins: the limit is ``seconds`` (None or 0: none) from now, if the handler is installed
        and no one else's ``ITIMER_REAL`` is running."""
        self.seconds = _limit(seconds)
        self.expired = False
        if not self.installed or self.seconds is None or signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0):
            return
        self.active = self._armed = True
        _setitimer(signal.ITIMER_REAL, self.seconds, REPEAT_S)

    def stop(self) -> None:
        """The run is over: stop the timer (the handler stays installed); idempotent."""
        self._armed = False
        if self.active:
            self.active = False
            _setitimer(signal.ITIMER_REAL, 0)

    def disarm(self) -> None:
        """Stop the timer and restore the previous handler; idempotent."""
        self.stop()
        if self.installed:
            self.installed = False
            signal.signal(signal.SIGALRM, self._previous)

    def check(self) -> None:
        """Raise ``Expired`` if the limit has passed (for code that polls)."""
        if self.expired and self._armed:
            raise Expired(f"the run took longer than {self.seconds:g}s of wall-clock time")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._armed:
            return  # a shot delivered just before the timer stopped
        self.expired = True
        if frame is not None and frame.f_globals.get("__name__") in _POLLING_MODULES:
            return
        self.check()


def _limit(seconds: float | None) -> float | None:
    return min(seconds, MAX_TIMEOUT_S) if seconds else None


def _can_arm() -> bool:
    if _setitimer is None or threading.current_thread() is not threading.main_thread():
        return False
    return signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
