"""A run's clock and trace are freed when the run is dropped, without waiting for a garbage collection.

The runner freezes every older object before each run, so garbage left in a
cycle is not collected until the full sweep every ``SWEEP_EVERY`` runs: a
clock and its trace kept alive by a cycle piled up over 2,000 runs (about
130 objects each) and made that sweep cost 0.2 to 0.4 s. The timer recorder
refers back to the clock weakly, so nothing of a dropped run waits for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Counted in a fresh interpreter: in the test process, what earlier tests' subjects left (a visibility
#: queue's hung workers, freed bit by bit as later runs collect) showed up as these runs' garbage.
_COUNT = """
import gc
from harness.run.runner import run_schedule
from harness.search.generate import Examples
from scenarios.pools import semaphore_pool

examples = Examples(semaphore_pool.default_menu(), 5)
schedules = [next(examples) for _ in range(20)]
# One run first: what the first run of a process imports lazily (attrs classes, whose building leaves
# cyclic garbage) is not the runs' garbage.
run_schedule(semaphore_pool, schedules[0])
gc.collect()
gc.disable()
for schedule in schedules:
    run = run_schedule(semaphore_pool, schedule)
    assert len(run.trace) > 0
    del run
print(gc.collect())
"""


def test_a_dropped_run_leaves_no_cycle_behind() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _COUNT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    # Everything of those runs was freed as they were dropped: a collection finds nothing left.
    assert done.stdout.split() == ["0"], done.stdout
