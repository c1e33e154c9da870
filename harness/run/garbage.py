"""The garbage-collection policy of runs: each run's garbage is collected, exactly and cheaply, at its end.

A run ends with a garbage collection, so that an "Unhandled error in
Deferred" the subject left behind is logged, and recorded, in the run that
made it. Collecting the whole heap every run would cost 5 to 50 ms; the
policy freezes every object that predates the run, so the collection at its
end scans only what the run made (deterministic, and about 0.1 ms). Cyclic
garbage made between runs (Hypothesis's bookkeeping) would stay frozen, so
every ``sweep_every`` runs one full collection sweeps it.

Inside a run session (a campaign), the heap stays frozen between runs, and
what was made since the last run began (its record, the campaign's work
between runs) is collected, young and cheap, before the next run freezes
it: cyclic garbage no longer piles up frozen until the sweep (in a
campaign about 120 objects a run did, so that every sweep scanned five
times the live heap).

Automatic collection is off while a run goes on: the run's garbage is
collected at the fixed points only (no young collection part-way through a
run, whose place depended on how many objects the run had made), and since
every object the run made is then still young, the collections at its end
are young ones that cover them all (``_covering``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable


#: Runs between full collections of the garbage made between runs. A full collection
#: costs 0.1 to 0.8 s as the heap grows; every 2,000 runs that is 0.1 to 0.4 ms a run
#: (inside a session, where garbage no longer piles up frozen, about a fifth of that).
SWEEP_EVERY = 2_000

#: Collections at the end of a run while each one still logs failures (freeing more garbage).
MAX_COLLECTIONS = 4


class GarbagePolicy:
    """When the heap is frozen, swept and collected around runs (one instance serves a process: ``POLICY``)."""

    def __init__(self, sweep_every: int = SWEEP_EVERY) -> None:
        self.sweep_every = sweep_every
        self.runs_since_sweep = 0
        #: Sessions that keep the heap frozen between runs, and runs going on (a run may hold another).
        self.holding = 0
        self.running = 0

    def isolate(self) -> bool:
        """Before a run: freeze every object that predates it (after a full sweep every ``sweep_every`` runs),
        and turn automatic collection off; return whether it was on (``release`` takes it)."""
        self.runs_since_sweep += 1
        if self.runs_since_sweep >= self.sweep_every:
            self.runs_since_sweep = 0
            gc.unfreeze()
            gc.collect()
        elif self.holding and not self.running:  # (a run inside a run: the outer run's objects are its own)
            # Inside a session the heap stays frozen between runs: what is not frozen was made since
            # the last run began (that run's record, the campaign's work between runs). Collect it
            # now, young and cheap, or its cyclic garbage would stay frozen until the next sweep.
            gc.collect(_covering())
        gc.freeze()
        self.running += 1
        enabled = gc.isenabled()
        gc.disable()
        return enabled

    def release(self, enabled: bool = True) -> None:
        """After a run, however it ended: the objects frozen before it become collectable again (at the
        end of the session, inside one), and automatic collection is back on if it was on before the
        run (``enabled``, from ``isolate``).

        Inside a session, what the run leaves alive (its record, which survived the run's last
        collection) is frozen now, as the next run would freeze it: otherwise it would sit in the
        oldest generation, and the next run's collection of what was made between runs would have
        to be a full one, which also empties the interpreter's free lists (about 25 us a run).
        Garbage made from here to the next run is still collected, young, before it.
        """
        self.running -= 1
        if not self.holding or self.running:  # (a run inside a run: the outer run's objects are collectable again)
            gc.unfreeze()
        else:
            gc.freeze()
        if enabled:
            gc.enable()

    def hold(self) -> None:
        """A session begins (``harness.run.session``): keep the heap frozen between its runs, from now
        (so that the young collection before its first run collects young objects, not the whole heap)."""
        self.holding += 1
        gc.freeze()

    def let_go(self) -> None:
        """A session ends: when no other holds it, the heap becomes collectable again."""
        self.holding -= 1
        if not self.holding or self.running:
            gc.unfreeze()

    @staticmethod
    def collect(failures: Callable[[], int]) -> None:
        """Collect the run's garbage, again while collecting logs failures (``failures()`` grows)
        whose frames held more of it, at most ``MAX_COLLECTIONS`` times."""
        for _ in range(MAX_COLLECTIONS):
            before = failures()
            gc.collect(_covering())
            if failures() == before:
                return


def _covering() -> int:
    """The youngest generation whose collection covers every object not frozen (cheap when they are empty).

    A run's objects are all young: the heap was frozen when it began and no automatic collection
    ran since (unless the target itself collected). Collecting generation 0 (or 1) then collects
    exactly what a full collection would, and skips what only a full one does besides (emptying
    the interpreter's free lists, which the next run would fill again).
    """
    if gc.get_objects(2):
        return 2
    return 1 if gc.get_objects(1) else 0


#: The policy every run of this process follows.
POLICY = GarbagePolicy()
