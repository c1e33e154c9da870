"""A run's clock and trace are freed when the run is dropped, without waiting for a garbage collection;
its subject is freed at the end of the run, even while its record is kept.

The runner freezes every older object before each run, so garbage left in a
cycle is not collected until the full sweep every ``SWEEP_EVERY`` runs: a
clock and its trace kept alive by a cycle piled up over 2,000 runs (about
130 objects each) and made that sweep cost 0.2 to 0.4 s. The timer recorder
refers back to the clock weakly, so nothing of a dropped run waits for it.

A run is isolated: nothing of it may be alive, or act, in a later one. The
record kept the Deferred a graceful ``stop()`` returned (``Run.stopping``), and
through it the whole subject, as long as the record lived; and a collection
whose finalizers (a hung generator closed, its ``finally`` run) made an object
referring into their garbage freed none of it (the collector counts it alive
again) and left it to the sweep, during a later run's start (the round-5
visibility queue: about 20 objects a run, ``scenarios.at_least_once:lease_queue``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

from twisted.internet import defer

from harness import JobSpec, Schedule, Submit, Target, run_schedule

ROOT = Path(__file__).resolve().parents[1]

#: What a fresh interpreter runs after a head setting ``target`` and ``schedules``: the runs, then a
#: collection, whose count it prints. Counted in a fresh interpreter: in the test process, what earlier
#: tests' subjects left (a visibility queue's hung workers, freed bit by bit as later runs collect) showed
#: up as these runs' garbage.
_COUNT = """
import gc
from harness.run.runner import run_schedule

# One run first: what the first run of a process imports lazily (attrs classes, whose building leaves
# cyclic garbage) is not the runs' garbage.
run_schedule(target, schedules[0])
gc.collect()
gc.disable()
for schedule in schedules:
    run = run_schedule(target, schedule)
    assert len(run.trace) > 0
    del run
print(gc.collect())
"""

_POOL = """
from harness.search.generate import Examples
from scenarios.pools import semaphore_pool as target

examples = Examples(target.default_menu(), 5)
schedules = [next(examples) for _ in range(20)]
"""

#: A loop waiting on a job that never ends: the run's teardown lets the job go, and the collection that
#: frees the loop closes it; its ``finally`` then makes an object referring back into the loop's garbage.
_HUNG_LOOP = """
from twisted.internet import defer
from harness import JobSpec, Schedule, Submit, Target


class HungLoop:
    def __init__(self, clock):
        self.ended = None

    def submit(self, job):
        self._loop(job)
        return defer.Deferred()

    @defer.inlineCallbacks
    def _loop(self, job):
        try:
            yield job()
        finally:
            self.ended = [self]


target = Target(build=HungLoop)
schedules = [Schedule(ops=(Submit(0, 0, JobSpec(kind="hang")),))] * 5
"""


def _left_by_runs(*heads: str) -> list[str]:
    """What a collection finds after the runs of each head (see ``_COUNT``), in turn in one fresh interpreter
    (one interpreter for all: starting one and importing the harness costs about 2 s)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    script = "".join(head + _COUNT for head in heads)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_dropped_run_leaves_no_cycle_behind() -> None:
    pool, hung_loop = _left_by_runs(_POOL, _HUNG_LOOP)
    # Everything of the pool's runs was freed as they were dropped: a collection finds nothing left.
    assert pool == "0"
    # The hung loop's finalizer made an object that made the collector count the loop's cycle alive again;
    # the run collects once more and frees it (before: 2 objects a run left, frozen, to a later run's sweep).
    assert hung_loop == "0"


class _GracefulStop:
    """``stop()`` waits for the work in flight (here a job that never ends), then closes the subject."""

    def __init__(self, clock: Any) -> None:
        self.in_flight: list[defer.Deferred[Any]] = []
        self.closed = False

    def submit(self, job: Any) -> defer.Deferred[Any]:
        d = defer.maybeDeferred(job)
        self.in_flight.append(d)
        return d

    def stop(self) -> defer.Deferred[Any]:
        return defer.DeferredList(list(self.in_flight)).addCallback(self._close)

    def _close(self, _: object) -> None:
        self.closed = True


def test_a_kept_record_keeps_nothing_of_its_subject() -> None:
    built: list[weakref.ref[_GracefulStop]] = []

    def build(clock: Any) -> _GracefulStop:
        subject = _GracefulStop(clock)
        built.append(weakref.ref(subject))
        return subject

    run = run_schedule(Target(build=build), Schedule(ops=(Submit(0, 0, JobSpec(kind="hang")),)))
    assert [e.kind.value for e in run.trace][-2:] == ["stop", "end"]
    # The record is kept (as a campaign keeps a finding's): the subject, reached from the Deferred stop()
    # returned, was freed at the end of the run all the same.
    [subject] = built
    assert subject() is None
    assert run.stopping is None and run.subject is None
