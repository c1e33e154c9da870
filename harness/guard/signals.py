"""Graceful stops: SIGINT and SIGTERM ask a campaign to stop, a second one stops it at once.

A CI system cancels a job with SIGTERM (or SIGINT), and a user presses
Ctrl-C; either way the campaign should save what it found and report it. The
first signal only records the request: the campaign polls it between runs,
because an exception raised inside the subject would be caught by Twisted
(``Deferred`` turns any exception in a callback, ``KeyboardInterrupt``
included, into a ``Failure``) and could pass for a bug of the subject. A
second signal raises ``KeyboardInterrupt`` wherever the program is, for a
run that will not stop.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

#: ``signal.signal`` as imported: the escape guard patches the public name for its runs.
_set_handler = signal.signal

#: The ``StopSignals`` in force, innermost last.
_active: list[StopSignals] = []


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

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def requested(self) -> bool:
        """Whether a stop was asked for (cheap: called once per run)."""
        return self.received is not None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = _set_handler(signum, self._handle)
        _active.append(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            _set_handler(signum, handler)
        self._previous.clear()
        if self in _active:
            _active.remove(self)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
