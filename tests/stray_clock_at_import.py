"""A target module that freezes the process's clocks when imported (outside any run): import it only in a subprocess."""

from __future__ import annotations

import time

from scenarios.pools import semaphore_pool

time.monotonic = lambda: 0.0
time.time = lambda: 0.0

target = semaphore_pool
