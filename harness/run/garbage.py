"""The garbage-collection policy of runs: each run's garbage is collected, exactly and cheaply, at its end.

A run ends with a garbage collection, so that an "Unhandled error in
Deferred" the subject left behind is logged, and recorded, in the run that
made it. Collecting the whole heap every run would cost 5 to 50 ms; the
policy freezes every object that predates the run, so the collection at its
end scans only what the run made (deterministic, and about 0.1 ms). Cyclic
garbage among frozen objects is left to a full collection now and then,
the sweep (below).

Inside a run session (a campaign), the heap stays frozen between runs, and
what was made since the last run began (its record, the campaign's work
between runs) is collected, young and cheap, before the next run freezes
it: cyclic garbage no longer piles up frozen until the sweep (in a
campaign about 120 objects a run did, so that every sweep scanned five
times the live heap).

The sweep (``unfreeze`` and a full collection, 30 to 200 ms as the heap
grows, made as a run begins, never in a run inside a run) has one job:
cyclic garbage among frozen objects, alive when a run froze them and
dropped later. A campaign makes next to none (a sweep after
2,000 examples finds 0 to 50 objects in a heap of 150,000), so each sweep
that frees under an eighth of the heap doubles the runs until the next one
(up to ``MAX_STRETCH`` times ``sweep_every``), and one that frees more than a
quarter brings it back to ``sweep_every``: garbage that keeps coming at the
same rate stays under about a quarter of the heap. The heap is measured in
the interpreter's allocated memory blocks (``sys.getallocatedblocks``, about
0.1 ms: counting the frozen objects, ``gc.get_freeze_count``, walks them all
and costs as much as the sweep itself); every ``sweep_every`` runs it is
measured again, and a heap more than twice the last sweep's is swept at
once, so memory stays within twice the live heap however the garbage comes.

Automatic collection is off while a run goes on: the run's garbage is
collected at the fixed points only (no young collection part-way through a
run, whose place depended on how many objects the run had made), and since
every object the run made is then still young, the collections at its end
are young ones that cover them all (``_covering``).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable


#: Runs between full collections of the garbage made between runs (at first; see the module), and
#: between two measures of the heap. A full collection costs 30 to 200 ms as the heap grows.
SWEEP_EVERY = 2_000

#: At most this many times ``sweep_every`` runs between two sweeps, however little they find.
MAX_STRETCH = 32

#: Collections at the end of a run while each one still logs failures (freeing more garbage).
MAX_COLLECTIONS = 4


class GarbagePolicy:
    """When the heap is frozen, swept and collected around runs (one instance serves a process: ``POLICY``)."""

    def __init__(self, sweep_every: int = SWEEP_EVERY) -> None:
        self.sweep_every = sweep_every
        self.runs_since_sweep = 0
        #: Runs from one sweep to the next (a multiple of ``sweep_every``: it doubles while sweeps find little).
        self.gap = sweep_every
        #: The heap just after the last sweep, in allocated memory blocks (0 before the first).
        self.swept_heap = 0
        #: Sessions that keep the heap frozen between runs, and runs going on (a run may hold another).
        self.holding = 0
        self.running = 0
        #: What this policy's own freezes and collections left young (``_covering_known``): the youngest
        #: generation covering every object not frozen, and the collector's count of young collections then.
        self.young = 0
        self.young_count = -1

    def isolate(self) -> bool:
        """Before a run: freeze every object that predates it (after a sweep, when one is due: see the
        module), and turn automatic collection off; return whether it was on (``release`` takes it)."""
        self.runs_since_sweep += 1
        if self.runs_since_sweep % self.sweep_every == 0 and not self.running and self._sweep_due():
            # (never in a run inside a run: the outer run's garbage is collected at its own end)
            self.runs_since_sweep = 0
            before = sys.getallocatedblocks()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            after = sys.getallocatedblocks()
            self._learn(before - after, after)
        else:
            if self.holding and not self.running:  # (a run inside a run: the outer run's objects are its own)
                # Inside a session the heap stays frozen between runs: what is not frozen was made since
                # the last run began (that run's record, the campaign's work between runs). Collect it
                # now, young and cheap, or its cyclic garbage would stay frozen until the next sweep.
                gc.collect(_covering())
            gc.freeze()
        self.young, self.young_count = 0, gc.get_count()[1]  # every generation is empty now
        self.running += 1
        enabled = gc.isenabled()
        gc.disable()
        return enabled

    def _sweep_due(self) -> bool:
        """Whether this run (one of every ``sweep_every``) sweeps: ``gap`` runs have gone since the last
        sweep, or the heap has more than doubled since."""
        return self.runs_since_sweep >= self.gap or sys.getallocatedblocks() > 2 * self.swept_heap

    def _learn(self, freed: int, heap: int) -> None:
        """After a sweep that freed ``freed`` memory blocks and left ``heap``: a sweep that freed under an
        eighth of the heap doubles the gap to the next one (up to ``MAX_STRETCH`` times ``sweep_every``);
        one that freed more than a quarter brings it back to ``sweep_every``."""
        if freed * 8 <= heap:
            self.gap = min(2 * self.gap, MAX_STRETCH * self.sweep_every)
        elif freed * 4 > heap:
            self.gap = self.sweep_every
        self.swept_heap = heap

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

    def collect(self, failures: Callable[[], int]) -> None:
        """Collect the run's garbage, again while collecting logs failures (``failures()`` grows)
        whose frames held more of it, or ran finalizers that made objects (``gc.get_objects(0)`` is not
        empty), at most ``MAX_COLLECTIONS`` times.

        A finalizer run by a collection (a suspended generator closed, its ``finally`` firing Deferreds)
        that makes an object referring into the garbage it belongs to makes the collector count the
        whole cycle as alive again (a reference from outside it): none of it is freed, all of it moves a
        generation up, and no young collection of this run would cover it again. It was then frozen
        with the next run and freed only by a sweep, during a later run's start (a visibility queue's
        hung workers: about 20 objects a run). The finalizers ran once and do not run again: the next
        collection, covering the generation they moved to, frees them. A collection that ran no
        finalizer leaves generation 0 empty (its objects moved up; listing it then costs next to nothing).
        """
        for _ in range(MAX_COLLECTIONS):
            before = failures()
            generation = self._covering_known()
            gc.collect(generation)
            # Its survivors (the run's record among them) moved one generation up: the next collection covers it.
            self.young, self.young_count = (generation + 1 if generation < 2 else 2), gc.get_count()[1]
            if failures() == before and not gc.get_objects(0):
                return

    def _covering_known(self) -> int:
        """``_covering()``, from what this policy's own freezes and collections left (``young``) while the
        collector counted no young collection since: without listing generation 1, which before a run's
        second collection holds the ~500 survivors of its first (``gc.get_objects(1)``, about 0.6% of a
        medium example).

        Exact, as ``_covering`` is: an object enters generation 1 only as it survives a collection of
        generation 0, which adds one to the collector's count of them (``gc.get_count()[1]``); that count
        goes back to 0 only with a collection of generation 1 or 2, which moves every survivor to
        generation 2, and the run's record always survives (it is young and alive until the run ends),
        so generation 2 is then not empty, which is tested first, as is a heap the target unfroze. Any
        collection the policy did not make (the target's ``gc.collect``, or automatic ones it turned
        on) thus shows, and ``_covering`` answers instead. ``tests/test_garbage_covering.py`` holds it
        to ``_covering`` over real runs and targets that collect, unfreeze or turn collection on.
        """
        if gc.get_objects(2):
            return 2
        if gc.get_count()[1] == self.young_count:
            return self.young
        return 1 if gc.get_objects(1) else 0


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
