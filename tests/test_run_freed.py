"""A run's clock and trace are freed when the run is dropped, without waiting for a garbage collection.

The runner freezes every older object before each run, so garbage left in a
cycle is not collected until the full sweep every ``SWEEP_EVERY`` runs: a
clock and its trace kept alive by a cycle piled up over 2,000 runs (about
130 objects each) and made that sweep cost 0.2 to 0.4 s. The timer recorder
refers back to the clock weakly, so nothing of a dropped run waits for it.
"""

from __future__ import annotations

import gc

from harness.run.runner import run_schedule
from harness.search.generate import Examples
from scenarios.pools import semaphore_pool


def test_a_dropped_run_leaves_no_cycle_behind() -> None:
    examples = Examples(semaphore_pool.default_menu(), 5)
    schedules = [next(examples) for _ in range(20)]
    # One run first: what the first run of a process imports lazily (attrs classes, whose building leaves
    # cyclic garbage) is not the runs' garbage. Without it the test failed whenever it was the first in its
    # worker to run a schedule (pytest-randomly, seed 1, -n 2: 1,761 objects).
    run_schedule(semaphore_pool, schedules[0])
    gc.collect()
    gc.disable()
    try:
        for schedule in schedules:
            run = run_schedule(semaphore_pool, schedule)
            assert len(run.trace) > 0
            del run
        # Everything of those runs was freed as they were dropped: a collection finds nothing left.
        assert gc.collect() == 0
    finally:
        gc.enable()
