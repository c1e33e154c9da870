"""A correct pool whose module is slow to import in a parallel campaign's workers: a deterministic window in which
a stop arrives while the workers are still starting (review 8, finding 7), with no timing race.

``SLOW_START_S`` (seconds, default 0) is how long the import sleeps in a worker process (``HARNESS_WORKER`` set);
the campaign's own process imports it at once, unless ``SLOW_START_EVERYWHERE`` is set (a stop while the
campaign's process loads the target, review 8 finding 6). ``SLOW_START_MARKER``, if set, is a file written when
the sleep begins.
"""

from __future__ import annotations

import os
import time

from harness import Target
from scenarios.pools import SemaphorePool

if os.environ.get("HARNESS_WORKER") is not None or os.environ.get("SLOW_START_EVERYWHERE"):
    if os.environ.get("SLOW_START_MARKER"):
        with open(os.environ["SLOW_START_MARKER"], "w") as marker:
            marker.write("loading")
    time.sleep(float(os.environ.get("SLOW_START_S", "0")))

pool = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2)
