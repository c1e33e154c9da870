"""Hypothesis strategies that generate schedules.

A schedule's operations are drawn as a count and one byte string of that
many fixed-width records, and decoded. Two draws per schedule instead of
several per operation make generation several times cheaper (it was most of
a campaign's cost), and it still shrinks well: Hypothesis lowers the count
(fewer operations) and the bytes towards zero, and every byte decodes so
that zero is the simplest choice (the first action is a plain ``succeed``
submit, zero gap, zero duration, the first error). The campaign then runs
``harness.search.shrink`` over the decoded schedule to delete whatever operations
Hypothesis could not. Half the gaps are zero, so work arrives in bursts:
that is what fills a pool and makes calls fall due at the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from zlib import crc32
from typing import Any

from hypothesis import strategies as st

from harness.model.faults import BUILTIN_ERRORS
from harness.model.menu import Menu
from harness.model.schedule import JOB_KINDS, TIE_BREAKS, Call, Cancel, ClockPolicy, JobSpec, Jump, Schedule, Start, Stop, Submit
from harness.search.arguments import ARG_BYTES, drawers, takes_arguments


#: How often each action appears in the decoding table (its odds); the
#: table lists every action once in this order first, so byte 0 is a
#: ``succeed`` submit and low bytes are the simple actions.
_ODDS = (
    ("succeed", 4),
    ("immediate", 1),
    ("value", 1),
    ("fail", 3),
    ("raise", 2),
    ("hang", 2),
    ("cancel", 3),
    ("jump", 1),
    ("stop", 1),
    ("call", 3),
)
_CANCELLABLE = ("succeed", "fail", "hang")
_TIMED = ("succeed", "fail")

#: Bytes of clock policy at the head of a flat blob (``_Codec.decode_blob``): tie-break, seed (2), step, jitter.
HEADER = 5

#: Where an operation lands among the rounds of its instant (``after_rounds``), by a 4-bit code
#: mixed from its whole record: most codes keep the usual order (after every round); the others put
#: it before the calls due then, or after the first or second round. Mixed from bytes every record
#: already has, so no field draws differently and a record's size is unchanged; an all-zero record
#: (the simplest) keeps the usual order.
_LANDINGS: tuple[int | None, ...] = (None,) * 12 + (0, 1, 1, 2)


def landing(record: bytes) -> int | None:
    """The ``after_rounds`` an operation record decodes to (see ``_LANDINGS``)."""
    return _LANDINGS[crc32(record) & 15] if any(record) else None


def _usual(record: bytes) -> None:
    """The landing of every record under a menu without ``landings``: after every round."""
    return None


@dataclass(frozen=True)
class _Codec:
    """Decodes fixed-width byte records into operations for one menu."""

    menu: Menu
    actions: tuple[str, ...]
    width: int
    #: Where a record's argument bytes start, and how many (0: no operation takes arguments).
    arg_at: int = 0
    arg_width: int = 0
    specs: dict[tuple[str, int, int, bool], JobSpec] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def of(cls, menu: Menu) -> _Codec:
        allowed = set(menu.job_kinds)
        if menu.periodic:
            allowed = set()
        if menu.cancels and not menu.periodic:
            allowed.add("cancel")
        if menu.jumps:
            allowed.add("jump")
        if menu.stops:
            allowed.add("stop")
        if menu.operations and not menu.periodic:
            allowed.add("call")
        ordered = [name for name, _ in _ODDS if name in allowed]
        repeats = [name for name, odds in _ODDS if name in allowed for _ in range(odds - 1)]
        # 4 bytes: action, duration, gap, detail; then a count and 2 bytes per later attempt;
        # then, when an operation takes arguments, ARG_BYTES they are drawn from (harness.search.arguments);
        # then, with keys, one byte for the key (zero decodes to key 0).
        arg_at = 4 + (1 + 2 * menu.max_then if menu.max_then else 0)
        arg_width = ARG_BYTES if "call" in allowed and takes_arguments(menu) else 0
        width = arg_at + arg_width + (1 if menu.keys else 0)
        return cls(menu, tuple(ordered + repeats), width, arg_at, arg_width)

    def spec(self, kind_byte: int, duration_byte: int, detail: int) -> JobSpec:
        menu = self.menu
        kind = menu.job_kinds[kind_byte % len(menu.job_kinds)]
        return self._spec(kind, duration_byte, detail)

    def _spec(self, kind: str, duration_byte: int, detail: int) -> JobSpec:
        menu = self.menu
        after = (duration_byte % (menu.max_duration_ms // menu.grain_ms + 1)) * menu.grain_ms if kind in _TIMED else 0
        key = (kind, after, detail % len(menu.errors), detail >= 224)
        spec = self.specs.get(key)
        if spec is None:  # specs are frozen: one per distinct behaviour, built once (decoding is hot)
            spec = self.specs[key] = JobSpec(
                kind=kind,
                after_ms=after,
                error=menu.errors[key[2]],
                canceller_raises=menu.canceller_raises and kind in _CANCELLABLE and detail >= 224,
            )
        return spec

    def gap(self, byte: int) -> int:
        """Bytes below 128 mean no gap (a burst); the rest spread over ``max_gap_ms``."""
        if byte < 128:
            return 0
        steps = self.menu.max_gap_ms // self.menu.grain_ms + 1
        return ((byte - 128) % steps) * self.menu.grain_ms

    def then(self, record: bytes) -> tuple[JobSpec, ...]:
        if not self.menu.max_then:
            return ()
        count = record[4] % (self.menu.max_then + 1)
        return tuple(self.spec(record[5 + 2 * i], record[6 + 2 * i], record[3]) for i in range(count))

    def policy(self, header: bytes) -> ClockPolicy:
        """The clock policy of a blob's ``HEADER`` bytes (the same choices ``clock_policies`` draws from)."""
        menu = self.menu
        return ClockPolicy(
            tie_break=menu.tie_breaks[header[0] % len(menu.tie_breaks)],
            seed=header[1] << 8 | header[2],
            step_ms=menu.steps_ms[header[3] % len(menu.steps_ms)],
            jitter_ms=menu.jitters_ms[header[4] % len(menu.jitters_ms)],
        )

    def blob_size(self, ops: int) -> int:
        """The length of a blob holding ``ops`` operation records."""
        return HEADER + (self.width if self.menu.periodic else 0) + ops * self.width

    def decode_blob(self, blob: bytes) -> Schedule:
        """One flat byte string as a schedule: ``HEADER`` policy bytes, the periodic start record if
        the menu has one, then whole operation records (at most ``max_ops``; a ragged tail is ignored).

        Every byte string decodes, so a search can draw and mutate plain bytes (``harness.search.generate``).
        A call's arguments are drawn from its record's argument bytes by the operation's strategies
        (``harness.search.arguments``); a call whose bytes the strategies refuse is left out."""
        start = None
        offset = HEADER
        if self.menu.periodic:
            start = blob[offset : offset + self.width].ljust(self.width, b"\0")
            offset += self.width
        records = blob[offset : offset + self.menu.max_ops * self.width] if self.actions else b""
        return self.decode(records, self.policy(blob[:HEADER].ljust(HEADER, b"\0")), start)

    def decode(
        self,
        data: bytes,
        policy: ClockPolicy,
        start: bytes | None,
        arg_pools: tuple[list[tuple[Any, ...]], ...] | None = None,
    ) -> Schedule:
        """Records as a schedule; calls take their arguments from ``arg_pools`` (Hypothesis drew them, in
        turn per operation) or, when None, from each record's argument bytes."""
        menu = self.menu
        land = landing if menu.landings else _usual
        ops: list[Any] = []
        pools = [iter(pool) for pool in arg_pools or ()]
        now = 0
        submitted = 0
        stopped = False
        if start is not None:
            now = self.gap(start[2])
            ops.append(Start(now, 0, self.spec(start[0], start[1], start[3]), self.then(start)))
            submitted = 1
        for offset in range(0, len(data) - self.width + 1, self.width):
            record = data[offset : offset + self.width]
            action = self.actions[record[0] % len(self.actions)]
            now += self.gap(record[2])
            detail = record[3]
            if action in JOB_KINDS:
                priority = (detail // 7) % menu.priorities if menu.priorities else 0
                spec = self._spec(action, record[1], detail)
                key = record[-1] % menu.keys if menu.keys else 0
                ops.append(Submit(now, submitted, spec, priority, self.then(record), key, land(record)))
                submitted += 1
            elif action == "cancel":
                if submitted:
                    ops.append(Cancel(now, submitted - 1 - min(detail % 4, submitted - 1), land(record)))
            elif action == "call":
                which = detail % len(menu.operations)
                operation, strategies = menu.operations[which]
                if not strategies:
                    args: tuple[Any, ...] | None = ()
                elif arg_pools is None:
                    drawer = drawers(menu)[which]
                    args = drawer.draw(record[self.arg_at : self.arg_at + self.arg_width]) if drawer else None
                else:
                    args = next(pools[which], None) if which < len(pools) else None
                if args is not None:  # None: the schedule drew no more arguments for it, so no call
                    ops.append(Call(now, operation, tuple(args), land(record)))
            elif action == "jump":
                magnitude = (record[1] % (menu.max_jump_ms // menu.grain_ms + 1)) * menu.grain_ms
                ops.append(Jump(now, -magnitude if detail % 2 else magnitude, land(record)))
            elif not stopped:
                ops.append(Stop(now, land(record)))
                stopped = True
        return Schedule(tuple(ops), policy)


@lru_cache(maxsize=64)
def codec(menu: Menu = Menu()) -> _Codec:
    """The byte codec of ``menu``'s schedules (built once per menu)."""
    return _Codec.of(menu)


def job_specs(menu: Menu = Menu()) -> st.SearchStrategy[JobSpec]:
    """Job behaviours from the menu, simplest (a prompt success) first."""
    codec = _Codec.of(menu)
    return st.binary(min_size=3, max_size=3).map(lambda b: codec.spec(b[0], b[1], b[2]))


def clock_policies(menu: Menu = Menu()) -> st.SearchStrategy[ClockPolicy]:
    """Tie-break order, stride and jitter, simplest (fifo, punctual, on time) first."""
    return st.builds(
        ClockPolicy,
        tie_break=st.sampled_from(menu.tie_breaks),
        seed=st.integers(0, 2**16),
        step_ms=st.sampled_from(menu.steps_ms),
        jitter_ms=st.sampled_from(menu.jitters_ms),
    )


@lru_cache(maxsize=64)
def schedules(menu: Menu = Menu()) -> st.SearchStrategy[Schedule]:
    """Schedules of submissions (or a periodic start), cancellations, a stop and clock faults.

    Built once per menu: constructing strategies inside every draw would cost
    more than running the schedule.
    """
    codec = _Codec.of(menu)
    records = [st.binary(min_size=codec.width * n, max_size=codec.width * n) for n in range(menu.max_ops + 1)]
    ops = st.integers(menu.min_ops, menu.max_ops).flatmap(records.__getitem__) if codec.actions else st.just(b"")
    start = st.binary(min_size=codec.width, max_size=codec.width) if menu.periodic else st.none()
    if not menu.operations:
        return st.tuples(ops, clock_policies(menu), start).map(lambda parts: codec.decode(*parts))
    pools = st.tuples(
        *(st.lists(st.tuples(*args), max_size=menu.max_ops) if args else st.just([]) for _, args in menu.operations)
    )
    return st.tuples(ops, clock_policies(menu), start, pools).map(lambda parts: codec.decode(*parts))

