"""The live progress line: examples, examples/s, elapsed time and failures, redrawn in place.

On a terminal the line is redrawn with ``\\r`` a few times a second. Anywhere
else (a CI log) it prints nothing but a plain heartbeat line every
``HEARTBEAT_S`` seconds, so a long quiet campaign still shows it is alive
(some CI systems kill a job that prints nothing for ten minutes). It is
called after every run, so the common path is one clock read and a compare.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from harness.search.campaign import CampaignResult

#: Seconds between redraws on a terminal.
REDRAW_S = 0.2
#: Seconds between heartbeat lines when the stream is not a terminal.
HEARTBEAT_S = 60.0


class Progress:
    """A throttled status line on ``stream``; pass the instance as a campaign's ``on_example``."""

    def __init__(
        self,
        stream: TextIO | None = None,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = _isatty(self.stream) if live is None else live
        self.interval = REDRAW_S if self.live else HEARTBEAT_S
        self._clock = clock
        self._started = clock()
        self._next = self._started + self.interval
        self._width = 0

    def __call__(self, result: CampaignResult) -> None:
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self.interval
        self._draw(self.line(result, now - self._started))

    @staticmethod
    def line(result: CampaignResult, elapsed: float) -> str:
        """The status text: ``harness: 1234 examples, 410/s, 3.0s, 0 failures``."""
        rate = result.examples / elapsed if elapsed > 0 else 0.0
        failures = len(result.findings)
        text = (
            f"harness: {result.examples} examples, {rate:.0f}/s, {elapsed:.1f}s, "
            f"{failures} failure{'' if failures == 1 else 's'}"
        )
        if result.shrinking:
            text += ", shrinking one"
        return text

    def _draw(self, text: str) -> None:
        if self.live:
            pad = " " * max(self._width - len(text), 0)
            self.stream.write(f"\r{text}{pad}")
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the live line (before printing something else to the terminal)."""
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
