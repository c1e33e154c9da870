"""Search examples without Hypothesis: seeded byte strings, decoded by the schedule codec.

Hypothesis costs about a millisecond of bookkeeping per example (choice
sequences, its tree of what was tried, mutation), more than running a medium
schedule. A campaign's search does not need it: every byte string decodes to
a schedule (``harness.search.strategies._Codec.decode_blob``), so drawing bytes from
a seeded ``random.Random`` costs next to nothing per example and is a pure
function of the seed (and of the target's traces, for the guided strategy):
the n-th example of a seed is the same whatever the example cap. What a
strategy keeps between examples is bounded, so memory stays flat however long
the campaign.

Strategies (``STRATEGIES``, chosen with ``CampaignConfig.strategy`` or
``harness fuzz --strategy``):

- ``random``: uniform random bytes under the target's menu;
- ``swarm``: swarm testing: each example first draws which job behaviours,
  operations (cancel, jump, stop), errors and clock faults it may use, a
  random part of the menu, then random bytes under that part (a bug that
  needs many submissions of one kind and no cancels is found when cancels
  are switched off, rather than diluted by them);
- ``guided``: feedback-guided mutation: keep the byte strings whose run
  reached a trace feature not seen before (an event kind with the number of
  jobs running and waiting at that moment) or, with a tracer
  (``harness.search.coverage_feedback``), an arc of the target's own code
  not taken before, and mutate them: insert, delete or duplicate an
  operation, shift one in time, change a job's behaviour or a call's
  arguments, change the tie order; a fresh random example every few;
- ``pct``: random bytes whose calls due at the same instant run in PCT
  order (``harness.run.clock``): random priorities with ``depth - 1`` change
  points, for bugs that need a few same-instant calls in one order;
- ``mixed`` (the default): each example is drawn by one of the four, in
  proportions ``MIXED``, sharing the guided pool.

How ``MIXED`` is chosen (``benchmarks/bench.py --sections strategies``,
``docs/benchmarks.md``): a mix finds a bug at about the sum of its parts'
rates, each weighted by its share. ``pct`` draws the very schedules
``random`` draws and only reorders calls due in one instant, so it is as
good as ``random`` where ties do not matter and better where they do (2.5x
fewer examples on ``shed_throttle``'s depth-3 window); ``swarm`` is the one
that finds the large wall-clock jump of ``wall_watchdog`` (40x fewer
examples than ``random``) and costs 2x to 6x elsewhere; ``guided``'s trace
features did not lead to any rare window of the hard zoo (the slowest part
on four of six), so it keeps a small share.

Hypothesis's ``schedules()`` strategy stays the way to write one's own
property tests; a failure found here is shrunk by ``harness.search.shrink``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from random import Random
from collections.abc import Set as AbstractSet
from typing import Any

from harness.run.facts import FEATURE_CAP as FEATURE_CAP  # running and waiting counts are capped at this in features
from harness.run.facts import FEATURE_BASES, FEATURES, Facts
from harness.run.lines import ArcTracer
from harness.run.runner import Run
from harness.model.schedule import Schedule
from harness.model.trace import EventKind
from harness.model.menu import Menu
from harness.search.coverage_feedback import CoverageFeedback
from harness.search.strategies import HEADER, _Codec, codec

#: The search strategies a campaign can use; ``mixed`` combines the others.
STRATEGIES = ("mixed", "random", "swarm", "guided", "pct")
DEFAULT_STRATEGY = "mixed"
#: The bug depth ``pct`` aims at unless told otherwise.
DEFAULT_DEPTH = 3

#: How ``mixed`` splits its examples between the strategies.
MIXED = (("random", 0.4), ("pct", 0.3), ("swarm", 0.2), ("guided", 0.1))

#: Byte strings the guided strategy keeps (a new one replaces a random old one once full).
POOL_SIZE = 256
#: Trace features remembered (a feature is small; the set stops growing past this).
MAX_FEATURES = 50_000
#: Events that end a job's attempt (for the running count of a feature).
_ENDS = frozenset({EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL})
_SUBMIT, _JOB_START = EventKind.SUBMIT, EventKind.JOB_START  # bound once: ``features`` reads every event


class Examples:
    """The schedules one search round tries, in order, for a menu, a seed and a strategy.

    ``next(examples)`` gives the next schedule; it should be run inside
    ``examples.watching()`` and ``feedback(run)`` must then be called with
    its run (the guided strategies learn from both; the others ignore them).
    ``tracer`` (``harness.run.lines.ArcTracer``) gives the guided
    strategies the target's line and branch coverage; without one they learn
    from trace features alone.
    """

    def __init__(
        self,
        menu: Menu,
        seed: int,
        strategy: str = DEFAULT_STRATEGY,
        depth: int = DEFAULT_DEPTH,
        tracer: ArcTracer | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown search strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        self.menu = menu
        self.codec = codec(menu)
        self.random = Random(seed)
        self.strategy = strategy
        self.depth = depth
        self.pool: list[bytes] = []
        # The trace features seen so far (``features``), kept as the facts pass counts them: integer codes
        # (``harness.run.facts.FEATURE_BASES``), and apart the features of a kind no ``EventKind`` (a walked
        # hand-made trace), which have no code. Ints hash as themselves, where each feature tuple was hashed
        # anew, element by element, every run.
        self.seen: set[int] = set()
        self.seen_odd: set[tuple[str, int, int]] = set()
        self.last: tuple[bytes, bool] | None = None  # the last blob, and whether it was decoded under the full menu
        guided = strategy in ("guided", "mixed")
        self.coverage = CoverageFeedback(tracer) if tracer is not None and guided else None

    def blob(self, menu: Menu | None = None) -> bytes:
        """A random byte string: a uniform number of operations within the menu's bounds."""
        menu = menu or self.menu
        ops = self.random.randint(menu.min_ops, menu.max_ops)
        return self.random.randbytes(self.codec.blob_size(ops))

    def __next__(self) -> Schedule:
        kind = self.strategy
        if kind == "mixed":
            kind = _pick(self.random, MIXED)
        if kind == "swarm":
            part = swarm_menu(self.menu, self.random)
            blob = self.blob(part)
            self.last = (blob, False)
            # Nearly every part is new (not worth a cache); a part of a menu is as valid as the menu.
            return _Codec.of(part, self.codec.trusted).decode_blob(blob)
        if kind == "pct":
            blob = self.blob()
            self.last = (blob, False)  # its bytes decode to another tie order under the full menu
            return self.codec.decode_blob(blob, self.depth)
        if kind == "guided" and self.pool and self.random.random() < 0.8:
            blob = mutate(self.random.choice(self.pool), self.codec.width, self.menu, self.random)
        else:
            blob = self.blob()
        self.last = (blob, True)
        return self.codec.decode_blob(blob)

    def __iter__(self) -> Examples:
        return self

    def watching(self) -> AbstractContextManager[object]:
        """Run the last schedule inside this: the guided strategies record which arcs of the target it takes.

        Only examples whose bytes could be kept are watched (not ``swarm``'s or ``pct``'s).
        """
        if self.coverage is None or self.last is None or not self.last[1]:
            return nullcontext()
        return self.coverage.watching()

    @property
    def features(self) -> set[tuple[str, int, int]]:
        """The trace features seen so far (``features``'s tuples; each kind an ``EventKind`` where it has a code)."""
        return {FEATURES[code] for code in self.seen} | self.seen_odd

    def feedback(self, run: Run) -> None:
        """Learn from the run of the last schedule: keep its bytes if it reached a new trace feature or arc."""
        if self.strategy not in ("guided", "mixed") or self.last is None:
            return
        codes, odd = feature_codes_of(run)
        new = codes - self.seen
        new_odd = odd - self.seen_odd if odd else odd
        arcs = self.coverage is not None and self.coverage.reached_new()
        if not new and not new_odd and not arcs:
            return
        if (new or new_odd) and len(self.seen) + len(self.seen_odd) < MAX_FEATURES:
            self.seen |= new
            if new_odd:
                self.seen_odd |= new_odd
        blob, full_menu = self.last
        if not full_menu:  # a swarm example's bytes mean something else under the full menu
            return
        if len(self.pool) < POOL_SIZE:
            self.pool.append(blob)
        else:
            self.pool[self.random.randrange(POOL_SIZE)] = blob


def features_of(run: Run) -> set[tuple[str, int, int]]:
    """``features(run)``, as the facts pass counted them when the run was checked (the campaign checks every
    run before it learns from it), else by a walk over its events (``feature_codes_of``, decoded)."""
    codes, odd = feature_codes_of(run)
    return {FEATURES[code] for code in codes} | odd


def feature_codes_of(run: Run) -> tuple[AbstractSet[int], AbstractSet[tuple[str, int, int]]]:
    """``features_of(run)`` as the guided search keeps it: the code of each feature whose kind has one
    (``FEATURE_BASES``), and apart the features of a kind that has none (a hand-made trace's kind that is no
    ``EventKind``). The codes are the facts pass's own set when the run was checked (not to be changed);
    one code stands for exactly one feature (``FEATURES[code]``), so the codes seen and the odd features
    seen hold what a set of the tuples would, and as many."""
    facts: Facts | None = run.__dict__.get("_facts")
    if facts is not None and facts.length == len(run.trace.raw):
        codes = facts.feature_codes
        if codes is not None and (not codes or min(codes) >= 0):  # (negative: a kind no EventKind, walked)
            return codes, _NO_FEATURES
    coded: set[int] = set()
    odd: set[tuple[str, int, int]] = set()
    bases = FEATURE_BASES
    for feature in features(run):
        kind, running, waiting = feature
        base = bases.get(kind)
        if base is None:
            odd.add(feature)
        else:  # (a plain string equal to a member is that member's feature: a StrEnum hashes as its value)
            coded.add(base + 8 * running + waiting)
    return coded, odd


#: No features (shared: never changed).
_NO_FEATURES: frozenset[tuple[str, int, int]] = frozenset()


def features(run: Run) -> set[tuple[str, int, int]]:
    """What a run reached: each event kind with the jobs running and waiting when it happened."""
    running = waiting = 0
    # The counts as capped in features, updated only when a count changes (this reads every event).
    shown_running = shown_waiting = 0
    found: set[tuple[str, int, int]] = set()
    add, cap = found.add, FEATURE_CAP
    for _, kind, _, _, _ in run.trace.raw:  # the recorded tuples: no ``Event`` made per event
        if kind == _SUBMIT:
            waiting += 1
            shown_waiting = waiting if waiting < cap else cap
        elif kind == _JOB_START:
            if waiting > 0:
                waiting -= 1
                shown_waiting = waiting if waiting < cap else cap
            running += 1
            shown_running = running if running < cap else cap
        elif kind in _ENDS:
            if running > 0:
                running -= 1
                shown_running = running if running < cap else cap
        add((kind, shown_running, shown_waiting))
    return found


def swarm_menu(menu: Menu, random: Random) -> Menu:
    """A random part of ``menu``: each job behaviour, operation, error and clock fault kept or not."""

    def some(options: tuple[Any, ...]) -> tuple[Any, ...]:
        kept = tuple(option for option in options if random.random() < 0.5)
        return kept or (random.choice(options),)

    return menu.narrowed(  # keyword order is draw order: the same parts as ever for a seed
        job_kinds=some(menu.job_kinds),
        errors=some(menu.errors),
        cancels=menu.cancels and random.random() < 0.5,
        jumps=menu.jumps and random.random() < 0.5,
        stops=menu.stops and random.random() < 0.5,
        tie_breaks=some(menu.tie_breaks),
        steps_ms=some(menu.steps_ms),
        jitters_ms=some(menu.jitters_ms),
    )


def mutate(blob: bytes, width: int, menu: Menu, random: Random) -> bytes:
    """``blob`` changed in one to three places, as a coverage-guided fuzzer mutates its inputs.

    Changes keep whole records: insert a random operation, delete one,
    duplicate one (the copy lands in the same instant: a zero gap), shift one
    in time (its gap byte), change a job's behaviour or duration or a call's
    arguments, or change the tie order and its seed (the header).
    """
    data = bytearray(blob)
    head = HEADER + (width if menu.periodic else 0)
    arguments = codec(menu)
    places = (0, 1, 3) + tuple(range(arguments.arg_at, arguments.arg_at + arguments.arg_width))
    for _ in range(random.randint(1, 3)):
        records = (len(data) - head) // width
        choice = random.randrange(7)
        at = head + random.randrange(records) * width if records else None
        if choice == 0 and records < menu.max_ops:
            where = head + random.randint(0, records) * width
            data[where:where] = random.randbytes(width)
        elif choice == 1 and at is not None and records > menu.min_ops:
            del data[at : at + width]
        elif choice == 2 and at is not None and records < menu.max_ops:
            copy = bytearray(data[at : at + width])
            copy[2] = random.randrange(128)  # no gap: the same instant as the original
            data[at + width : at + width] = copy
        elif choice == 3 and at is not None:
            data[at + 2] = random.choice((0, random.randrange(256), min(data[at + 2] + 1, 255)))
        elif choice == 4 and at is not None:
            data[at + random.choice(places)] = random.randrange(256)
        elif choice == 5:
            data[random.randrange(HEADER)] = random.randrange(256)
        elif at is not None:
            data[at : at + width] = random.randbytes(width)
    return bytes(data)


def _pick(random: Random, weighted: tuple[tuple[str, float], ...]) -> str:
    roll = random.random()
    for name, weight in weighted:
        roll -= weight
        if roll < 0:
            return name
    return weighted[-1][0]
