"""Graceful stops: SIGINT and SIGTERM ask a campaign to stop, a second one stops it at once.

A CI system cancels a job with SIGTERM (or SIGINT), and a user presses
Ctrl-C; either way the campaign should save what it found and report it. The
first signal only records the request: the campaign polls it between runs,
because an exception raised inside the subject would be caught by Twisted
(``Deferred`` turns any exception in a callback, ``KeyboardInterrupt``
included, into a ``Failure``) and could pass for a bug of the subject. A
second signal raises ``KeyboardInterrupt`` wherever the program is, for a
run that will not stop; the campaign still keeps and reports what it found.

A run that hangs where the watchdog cannot stop it (``--example-timeout 0``,
or a target that catches ``Expired``) never reaches the next poll, and a CI
system sends one signal, not two. So a stop not honoured within
``STOP_GRACE_S`` seconds is made the second signal by the process itself
(``pthread_kill`` of the main thread with the same signal, which interrupts
a blocking call too), with a note on stderr that says what the campaign was
waiting on when that is known (``explaining``: a parallel campaign's workers
still starting, review 8 finding 7), else "a run that hangs?"; ``finish()`` says the campaign
is over and its reports are being written, which nothing interrupts then.
While the summary is written (``held()``), a second signal waits for it (it
is small: milliseconds, plus tallying coverage with ``--coverage`` or
``--html``) and aborts right after, so an impatient
second Ctrl-C never loses the summary; only the large HTML report after it
is left unwritten.

Start-up: before a campaign's ``StopSignals`` is in force, the ``harness``
command imports the harness (Twisted, Hypothesis: seconds on a loaded
machine), forks its supervised child and loads the target. A signal then
printed a 25-line ``KeyboardInterrupt`` traceback from an import (a SIGTERM:
nothing) and wrote no summary (review 8, finding 6). So the console entry
point (``harness_console``, stdlib only) records SIGINT and SIGTERM first
thing, and ``record_startup`` keeps recording them (a second one raises
``KeyboardInterrupt``: stop at once) until the campaign's ``StopSignals``
takes the first over as its own stop request: the campaign then runs no
example and writes its summary as after any stop. Other commands end the
recording (``end_startup``) before they run.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType, TracebackType
from typing import Any

SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

#: The private setting with which the harness's own slow signal tests shorten every grace period of the stop
#: machinery alike (``grace_s``): a factor in (0, 1]. Not for users: the periods are sized for loaded machines.
GRACE_SCALE_ENV = "_HARNESS_GRACE_SCALE"


def grace_s(seconds: float) -> float:
    """A grace period of the stop machinery (this module's, ``supervise.KILL_GRACE_S``, ``workers.ABORT_GRACE_S``),
    ``seconds`` long, times the factor in ``GRACE_SCALE_ENV`` when it holds one in (0, 1] (anything else is
    ignored). Read once, at import: a test that only waits through a period (a child that resists every stop
    is killed) sets it for the processes it starts, and every period shrinks alike, so their order holds."""
    try:
        scale = float(os.environ.get(GRACE_SCALE_ENV, "1"))
    except ValueError:
        return seconds
    return seconds * scale if 0 < scale <= 1 else seconds


#: Seconds a campaign has to honour a stop signal before the process repeats it to itself (stop at once).
STOP_GRACE_S = grace_s(5.0)

#: The C module's ``signal.signal`` as imported, for the harness's own handlers (the stops', the watchdog's, the
#: supervisor's): the escape guard patches both public names for its runs (the Python one calls the C one).
try:
    _c_set_handler: Callable[[int, Any], Any] = importlib.import_module("_signal").signal
except (ImportError, AttributeError):  # another Python: the public function
    _c_set_handler = signal.signal


def set_handler(signum: int, handler: Any) -> Any:
    """``signal.signal`` for the harness's own handlers, never refused: returns the previous handler (as a plain
    number for ``SIG_DFL`` and ``SIG_IGN``, which it takes either way)."""
    return _c_set_handler(int(signum), int(handler) if isinstance(handler, signal.Handlers) else handler)


_set_handler = set_handler

#: Bound at import: the escape guard patches ``time.sleep`` for its runs.
_sleep = time.sleep

#: The ``StopSignals`` in force, innermost last.
_active: list[StopSignals] = []

#: The stop signals received during start-up (``record_startup``), first first; None while not recording.
_startup: list[int] | None = None


def _record_startup(signum: int, frame: FrameType | None) -> None:
    """The start-up handler of SIGINT and SIGTERM: the first is recorded, a second stops at once."""
    if _startup is None or _startup:
        raise KeyboardInterrupt
    _startup.append(signum)
    startup_grace()


def startup_grace() -> None:
    """A stop recorded during start-up that no campaign takes over within ``STOP_GRACE_S`` (a target whose
    import hangs) is repeated, as a campaign's is: the second stops at once. Called where it was recorded, and
    in a forked child (threads do not survive the fork)."""
    recorded = _startup
    if not recorded:
        return

    def taken_up() -> bool:
        _sleep(STOP_GRACE_S)
        return _startup is not recorded  # a campaign took it over, or this process handed it to its child

    note = (f"the campaign had not begun within {STOP_GRACE_S:g}s of {signal.Signals(recorded[0]).name} "
            "(loading the target?); stopping at once")
    _repeat_unless_taken_up(recorded[0], taken_up, lambda: note, "harness-startup-grace")


def _repeat_unless_taken_up(signum: int, taken_up: Callable[[], bool], note: Callable[[], str], name: str) -> None:
    """The grace repeat of a stop signal, for a stop recorded at start-up and a campaign's alike: a daemon thread
    (called ``name``) waits with ``taken_up()``, which returns once the grace is over (or sooner) and says whether
    the stop was taken up; if it was not, the thread prints ``harness: note: `` and ``note()`` (asked then, so it
    says what the process is waiting on by now) to stderr and sends ``signum`` to the main thread again, the
    second signal that stops at once (``pthread_kill``: it interrupts a blocking call too). Nothing where
    ``pthread_kill`` does not exist."""
    main = threading.main_thread().ident
    if main is None or not hasattr(signal, "pthread_kill"):
        return

    def repeat() -> None:
        if taken_up():
            return
        print(f"harness: note: {note()}", file=sys.stderr, flush=True)
        try:
            signal.pthread_kill(main, signum)
        except (OSError, ValueError):
            pass

    threading.Thread(target=repeat, name=name, daemon=True).start()


def hand_over_startup() -> None:
    """In the supervising parent once the child is forked: the child records and acts on start-up signals now
    (the parent forwards them), so this process's record, and its repeat, end (the handlers stay as set)."""
    global _startup
    _startup = None


def record_startup(received: Sequence[int] = ()) -> None:
    """Record SIGINT and SIGTERM from now until a ``StopSignals`` takes them over (``end_startup`` ends it), as
    the ``harness`` command's start-up does; ``received`` are the signals the entry point recorded before
    (read after this handler is set, so none is lost in between). In the main thread only."""
    global _startup
    if threading.current_thread() is not threading.main_thread():
        return
    _startup = []
    for signum in SIGNALS:
        _set_handler(signum, _record_startup)
    _startup[:0] = list(received)[:1]


def recording_startup() -> bool:
    """Whether start-up signals are being recorded (a forked child keeps recording them)."""
    return _startup is not None


def end_startup() -> str | None:
    """Stop recording start-up signals, put the default handlers back, and return the first one received, by
    name (None if none came)."""
    global _startup
    received, _startup = _startup, None
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            _set_handler(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    return signal.Signals(received[0]).name if received else None


def handled() -> frozenset[int]:
    """The signals a ``StopSignals`` in force handles (none outside a campaign): a run may not take them over."""
    return frozenset(int(signum) for stop in _active for signum in stop._previous)


def interrupt_requested() -> bool:
    """Whether a ``KeyboardInterrupt`` now may be the user's: true unless a ``StopSignals`` is in
    force and received no signal (then the interrupt was raised by code, such as a target's)."""
    handling = [stop for stop in _active if stop._previous]
    return not handling or any(stop.received is not None for stop in handling)


class StopSignals:
    """A context manager that turns SIGINT and SIGTERM into a stop request while it is active.

    ``received`` names the first signal (``"SIGTERM"``), or is None. Outside
    the main thread (where Python cannot handle signals) it does nothing.
    The previous handlers are restored on exit.

    Example::

        with StopSignals() as stop:
            result = run_campaign(target, spec, config, stop_requested=stop.requested)
    """

    def __init__(self, grace: float | None = STOP_GRACE_S) -> None:
        self.received: str | None = None
        #: Seconds before an unhonoured stop is repeated (None: never).
        self.grace = grace
        self._previous: dict[signal.Signals, Any] = {}
        #: Set when the campaign is over (``finish``) or the context left: no stop is repeated from then on.
        self._over = threading.Event()
        #: Inside ``held()``, and whether a second signal came meanwhile.
        self._holding = False
        self._held = False
        #: What the campaign is waiting on, for the note of a stop not honoured in time (``explaining``).
        self.explain: Callable[[], str | None] | None = None

    def requested(self) -> bool:
        """Whether a stop was asked for (cheap: called once per run)."""
        return self.received is not None

    def finish(self) -> None:
        """The campaign is over and its reports are being written: a stop is no longer repeated."""
        self._over.set()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """While the summary is written: a second signal does not interrupt it, and aborts (``KeyboardInterrupt``)
        as soon as it is written, as it would have at once."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._held:
            self._held = False
            raise KeyboardInterrupt

    def __enter__(self) -> StopSignals:
        early = end_startup() if recording_startup() else None
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = _set_handler(signum, self._handle)
        _active.append(self)
        if early is not None:  # a stop during start-up: this campaign's stop request
            self._handle(int(signal.Signals[early]), None)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._over.set()
        for signum, handler in self._previous.items():
            _set_handler(signum, handler)
        self._previous.clear()
        if self in _active:
            _active.remove(self)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            if self._holding:
                self._held = True  # raised once the summary is written
                return
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        if self.grace is not None and not self._over.is_set():
            grace, name = self.grace, self.received
            _repeat_unless_taken_up(
                signum, lambda: self._over.wait(grace),  # the campaign finished (or the context was left) in time
                lambda: f"the campaign did not stop within {grace:g}s of {name} ({self._waiting_on()}); "
                "stopping at once, keeping what was found",
                "harness-stop-grace",
            )

    def _waiting_on(self) -> str:
        """Why the stop is slow, as far as is known: what ``explain`` says, else a run that hangs."""
        try:
            known = self.explain() if self.explain is not None else None
        except Exception:  # a note is no reason to fail the stop
            known = None
        return known or "a run that hangs?"


@contextlib.contextmanager
def explaining(waiting_on: Callable[[], str | None]) -> Iterator[None]:
    """While active, a stop not honoured in time is explained by ``waiting_on()`` (called in another thread; None:
    the default, a run that hangs) in the note of the innermost ``StopSignals`` in force. Outside one: nothing."""
    stop = _active[-1] if _active else None
    if stop is None:
        yield
        return
    previous, stop.explain = stop.explain, waiting_on
    try:
        yield
    finally:
        stop.explain = previous
