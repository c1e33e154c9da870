"""The harness's own clocks, bound when the harness is imported, before any target is.

A campaign times itself (``--budget``, ``elapsed_seconds``, the shrink time)
with ``time.monotonic`` and ``time.time``. A target that replaces them
(``time.monotonic = lambda: 0.0``) would make a budget never run out and a
summary record a negative time that merge and report refuse. The run guard
puts back clocks a run replaced (``harness.guard.escapes``), but a target may
replace them when its module is imported, outside any run. So the search
reads the functions bound here: ``from harness.guard import clocks as time``
keeps its ``time.monotonic()`` calls and makes them immune.
"""

from __future__ import annotations

import time as _time

#: ``time.monotonic`` as it was when the harness was imported.
monotonic = _time.monotonic
#: ``time.time`` as it was when the harness was imported.
time = _time.time
#: ``time.perf_counter`` as it was when the harness was imported.
perf_counter = _time.perf_counter
