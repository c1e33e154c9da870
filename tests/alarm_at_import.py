"""A target module that arms a real timer when it is imported, outside any run (the guard cannot refuse it)."""

from __future__ import annotations

import signal

from scenarios.pools import semaphore_pool

signal.setitimer(signal.ITIMER_REAL, 0.5)

target = semaphore_pool
