"""A rate limiter that keeps its window in wall-clock time: a jump mints a burst.

The promise (as ``scenarios.rate_limit``): at most ``JOBS`` jobs start in
any ``PER_MS`` window of real (monotonic) time. ``scenarios.rate_limit:token_bucket``
keeps it with delayed calls; this one keeps a log of start times read from
``seconds()``.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario
from .rate_limit import JOBS, MENU, PER_MS, TokenBucket


class SecondsLogLimiter(TokenBucket):
    """A sliding-window log: a job starts when fewer than ``jobs`` starts are logged within the last ``per_ms``.

    The log holds the times of the last ``jobs`` starts; when it is full and
    its oldest entry is younger than ``per_ms``, a ``callLater`` wakes the
    limiter when that entry ages out. Waiting jobs keep FIFO order;
    cancelling and ``stop()`` work as in the token bucket.
    BUG: the times come from ``seconds()``, wall-clock time. After a forward
    jump every logged start looks old, and ``jobs`` more jobs start at once
    right after the ``jobs`` that just did: 4 starts within milliseconds
    against a promise of 2 per 100 ms. Caught by: ``time.early``.
    """

    def __init__(self, clock: IReactorTime, jobs: int = JOBS, per_ms: int = PER_MS) -> None:
        super().__init__(clock, jobs, per_ms)
        self.per_us = per_ms * 1000
        self.log: deque[int] = deque()

    def _now_us(self) -> int:
        return round(self.clock.seconds() * 1_000_000)  # BUG: wall-clock time

    def _pump(self) -> None:
        while self.waiting:
            now = self._now_us()
            if len(self.log) >= self.jobs and now - self.log[0] < self.per_us:
                self._wake_in(self.log[0] + self.per_us - now)
                return
            self.log.append(now)
            while len(self.log) > self.jobs:
                self.log.popleft()
            self._start(self.waiting.popleft())

    def _wake_in(self, after_us: int) -> None:
        self._refills = [call for call in self._refills if call.active()]
        if not self._refills:
            self._refills.append(self.clock.callLater(after_us / 1_000_000, self._pump))


seconds_log_limiter = Target(
    build=SecondsLogLimiter,
    rate=(JOBS, PER_MS),
    order="fifo",
    menu=MENU,
    description="sliding-window log of start times read from seconds(), 2 per 100ms",
)

SCENARIOS = (
    Scenario(
        "scenarios.wall_rate:seconds_log_limiter",
        "time.early",
        "sliding-window log of seconds() readings: a forward jump lets 2 more jobs start at once",
        "callLater",
    ),
)
