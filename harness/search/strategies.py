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

from dataclasses import dataclass, field
from functools import lru_cache
from struct import iter_unpack
from zlib import crc32
from typing import Any, cast

from hypothesis import strategies as st

from harness.model.menu import Menu
from harness.model.schedule import (
    JOB_KINDS,
    MAX_DEPTH,
    MAX_ID,
    MAX_MS,
    Call,
    Cancel,
    ClockPolicy,
    JobSpec,
    Jump,
    Schedule,
    ScheduleError,
    Start,
    Stop,
    Submit,
)
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


@lru_cache(maxsize=16)
def _landing_shares(width: int) -> tuple[tuple[bytes, ...], tuple[int | None, ...]]:
    """Tables to work out the landing of every ``width``-byte record of a blob at once (``_landings_of``).

    CRC-32 is affine over GF(2) for a given length: the CRC of a record is
    the CRC of the blank record XOR, for each byte position, the share of the
    byte there (the CRC of a record holding only that byte, XOR the blank
    one's). So the landing code's 4 bits are the XOR of one table entry per
    byte. Returned: per position, each byte value's share (a ``bytes.translate``
    table), and the landing of each combined code (bit 4 set: a record that is
    not blank; a blank one, code below 16, lands as usual).
    """
    blank = crc32(bytes(width))
    shares = []
    for position in range(width):
        share = bytearray(256)
        for value in range(256):
            record = bytearray(width)
            record[position] = value
            share[value] = (crc32(record) ^ blank) & 15
        shares.append(bytes(share))
    final = tuple(None if code < 16 else _LANDINGS[(code ^ blank) & 15] for code in range(32))
    return tuple(shares), final


#: ``bytes.translate`` table: 16 for a byte that is not zero (marks a record that is not blank).
_NOT_ZERO = bytes([0] + [16] * 255)
#: Every landing code lands as usual (a menu without landings).
_NO_LANDINGS: tuple[int | None, ...] = (None,)


def _landings_of(data: bytes, width: int) -> bytes:
    """For each whole ``width``-byte record of ``data``, its landing code (``_landing_shares``): with
    ``landing``'s result, ``_landing_shares(width)[1][code]``, for all the records at once (each
    column of bytes translated to its shares and XORed as one integer, in C, where a CRC per record
    was one call and one slice each)."""
    count = len(data) // width
    shares = _landing_shares(width)[0]
    code = not_blank = 0
    for position in range(width):
        column = data[position::width]
        code ^= int.from_bytes(column.translate(shares[position]), "big")
        not_blank |= int.from_bytes(column, "big")
    marks = int.from_bytes(not_blank.to_bytes(count, "big").translate(_NOT_ZERO), "big")
    return (code | marks).to_bytes(count, "big")


#: Action codes of the decoding tables: a job kind's code is its index in ``JOB_KINDS`` (below 6).
_CANCEL, _CALL, _JUMP, _STOP = 6, 7, 8, 9
_CODES = {**{kind: index for index, kind in enumerate(JOB_KINDS)}, "cancel": _CANCEL, "call": _CALL, "jump": _JUMP, "stop": _STOP}

#: Every job behaviour decoded so far, shared by every codec: a spec is frozen and drawn from a
#: small set, so each distinct one is built (and validated) once. Keyed by an integer (``_Codec.decode``)
#: that says the kind, the duration, the error (by its ``_ERROR_IDS`` number) and whether its
#: canceller raises, so a swarm part's codec finds the behaviours of every other part's.
_SPECS: dict[int, JobSpec] = {}
#: Past this many, ``_SPECS`` starts again (a menu has a few thousand behaviours).
_MAX_SPECS = 100_000
#: A number per error name seen (the names a schedule may inject: a few per target).
_ERROR_IDS: dict[str, int] = {}
#: The duration's place in a spec key: below it, the kind (4 bits) and the error's detail (``_details``).
_AFTER_SHIFT = 40

def _draft(frozen: type) -> type:
    """A plain class with the slots of the frozen dataclass ``frozen``, to build its instances fast.

    The codec builds the operations it made valid without their dataclass
    ``__init__`` (a frozen dataclass sets each field through
    ``object.__setattr__``): it fills in a draft with plain slot stores, then
    makes it a ``frozen`` by ``__class__`` assignment, which Python allows
    between classes with the same slots (and refuses, with a ``TypeError``,
    between any others). The result is the very object ``frozen(...)``
    builds (its type, fields, equality and hash), at about a third of the
    cost of setting each slot through its descriptor, which the decoder did
    before (``tests/test_decode_fast.py`` holds it to the checked path).
    """
    return type(f"_{frozen.__name__}Draft", (), {"__slots__": getattr(frozen, "__slots__"), "__module__": __name__})


_SubmitDraft, _CancelDraft, _PolicyDraft = _draft(Submit), _draft(Cancel), _draft(ClockPolicy)


@lru_cache(maxsize=256)
def _codes(actions: tuple[str, ...]) -> tuple[int, ...]:
    """The action code of each first byte of a record."""
    return tuple(_CODES[actions[byte % len(actions)]] for byte in range(256)) if actions else ()


@lru_cache(maxsize=64)
def _gaps(max_gap_ms: int, grain_ms: int) -> tuple[int, ...]:
    """The gap each third byte of a record decodes to (``_Codec.gap``)."""
    steps = max_gap_ms // grain_ms + 1
    return tuple(0 if byte < 128 else ((byte - 128) % steps) * grain_ms for byte in range(256))


@lru_cache(maxsize=64)
def _afters(max_duration_ms: int, grain_ms: int) -> tuple[tuple[int, ...], ...]:
    """Per job kind (by its ``JOB_KINDS`` index), the duration each second byte of a record decodes to."""
    steps = max_duration_ms // grain_ms + 1
    timed = tuple((byte % steps) * grain_ms for byte in range(256))
    return tuple(timed if kind in _TIMED else (0,) * 256 for kind in JOB_KINDS)


@lru_cache(maxsize=256)
def _details(errors: tuple[str, ...], canceller_raises: bool) -> tuple[int, ...]:
    """What of a job's behaviour each fourth byte of its record says, as a spec key's middle bits:
    the error's number (``_ERROR_IDS``) and whether a cancellable job's canceller raises."""
    ids = tuple(_ERROR_IDS.setdefault(error, len(_ERROR_IDS)) for error in errors)
    return tuple((ids[byte % len(errors)] * 2 + (canceller_raises and byte >= 224)) << 4 for byte in range(256))


@lru_cache(maxsize=64)
def _priorities(levels: int) -> tuple[int, ...]:
    """The priority each fourth byte of a submit's record decodes to."""
    return tuple((byte // 7) % levels if levels else 0 for byte in range(256))


@lru_cache(maxsize=256)
def _valid_policies(tie_breaks: tuple[str, ...], steps_ms: tuple[int, ...], jitters_ms: tuple[int, ...]) -> bool:
    """Whether every clock policy a menu's choices make passes ``ClockPolicy``'s checks."""
    try:
        for tie_break in tie_breaks:
            ClockPolicy(tie_break=tie_break)
        for step in steps_ms:
            ClockPolicy(step_ms=step)
        for jitter in jitters_ms:
            ClockPolicy(jitter_ms=jitter)
    except (ScheduleError, TypeError):
        return False
    return True


def _trusted_bounds(menu: Menu) -> bool:
    """Whether every schedule this menu's codec decodes is valid by construction (then built unchecked).

    The codec keeps times, job ids, priorities, keys and jumps within the
    menu's bounds; the menu does not bound those, so they are checked here,
    once, against the schedule's limits. A menu that could exceed them decodes
    through the full checks, which then name what is out of range.
    """
    if not _valid_policies(menu.tie_breaks, menu.steps_ms, menu.jitters_ms):
        return False
    ints = (menu.max_ops, menu.max_gap_ms, menu.grain_ms, menu.max_jump_ms, menu.priorities, menu.keys, menu.max_duration_ms)
    if any(type(value) is not int or value < 0 for value in ints) or menu.grain_ms < 1:
        return False
    longest = (menu.max_ops + 1) * (menu.max_gap_ms + menu.grain_ms)
    return longest <= MAX_MS and menu.max_jump_ms + menu.grain_ms <= MAX_MS and menu.max_ops + 1 <= MAX_ID and menu.priorities <= MAX_ID and menu.keys <= MAX_ID


@dataclass(frozen=True)
class _Codec:
    """Decodes fixed-width byte records into operations for one menu."""

    menu: Menu
    actions: tuple[str, ...]
    width: int
    #: Where a record's argument bytes start, and how many (0: no operation takes arguments).
    arg_at: int = 0
    arg_width: int = 0
    #: Decoding tables, one entry per byte value (shared by the codecs of menus that agree on them):
    #: the action code of a record's first byte, a job's duration (per kind) of its second, the gap
    #: of its third, a job's error (part of a spec key) and a submit's priority of its fourth.
    codes: tuple[int, ...] = field(default=(), compare=False, hash=False, repr=False)
    afters: tuple[tuple[int, ...], ...] = field(default=(), compare=False, hash=False, repr=False)
    gaps: tuple[int, ...] = field(default=(), compare=False, hash=False, repr=False)
    details: tuple[int, ...] = field(default=(), compare=False, hash=False, repr=False)
    priorities: tuple[int, ...] = field(default=(), compare=False, hash=False, repr=False)
    #: Whether decoded schedules are valid by construction (``_trusted_bounds``).
    trusted: bool = field(default=False, compare=False, hash=False, repr=False)

    @classmethod
    def of(cls, menu: Menu, trusted: bool | None = None) -> _Codec:
        """The codec of ``menu``; ``trusted`` (when known: a swarm part of a trusted menu is) skips
        working out whether its schedules are valid by construction (``_trusted_bounds``)."""
        allowed = set(menu.job_kinds)
        if menu.periodic:
            allowed = set()
        if menu.cancels and not menu.periodic:
            allowed.add("cancel")
        if menu.jumps:
            allowed.add("jump")
        if menu.stops:
            allowed.add("stop")
        if menu.operations:  # a periodic target's operations too (a restart, a forced call)
            allowed.add("call")
        ordered = [name for name, _ in _ODDS if name in allowed]
        repeats = [name for name, odds in _ODDS if name in allowed for _ in range(odds - 1)]
        # 4 bytes: action, duration, gap, detail; then a count and 2 bytes per later attempt;
        # then, when an operation takes arguments, ARG_BYTES they are drawn from (harness.search.arguments);
        # then, with keys, one byte for the key (zero decodes to key 0).
        arg_at = 4 + (1 + 2 * menu.max_then if menu.max_then else 0)
        arg_width = ARG_BYTES if "call" in allowed and takes_arguments(menu) else 0
        width = arg_at + arg_width + (1 if menu.keys else 0)
        actions = tuple(ordered + repeats)
        return cls(
            menu,
            actions,
            width,
            arg_at,
            arg_width,
            codes=_codes(actions),
            afters=_afters(menu.max_duration_ms, menu.grain_ms),
            gaps=_gaps(menu.max_gap_ms, menu.grain_ms),
            details=_details(menu.errors, menu.canceller_raises),
            priorities=_priorities(menu.priorities),
            trusted=_trusted_bounds(menu) if trusted is None else trusted,
        )

    def spec(self, kind_byte: int, duration_byte: int, detail: int) -> JobSpec:
        menu = self.menu
        kind = menu.job_kinds[kind_byte % len(menu.job_kinds)]
        return self._spec(kind, duration_byte, detail)

    def _spec(self, kind: str, duration_byte: int, detail: int) -> JobSpec:
        menu = self.menu
        after = (duration_byte % (menu.max_duration_ms // menu.grain_ms + 1)) * menu.grain_ms if kind in _TIMED else 0
        return JobSpec(
            kind=kind,
            after_ms=after,
            error=menu.errors[detail % len(menu.errors)],
            canceller_raises=menu.canceller_raises and kind in _CANCELLABLE and detail >= 224,
        )

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

    def policy(self, header: bytes, depth: int | None = None) -> ClockPolicy:
        """The clock policy of a blob's ``HEADER`` bytes (the same choices ``clock_policies`` draws from);
        with ``depth``, the ``pct`` tie order at that bug depth instead of the drawn one."""
        menu = self.menu
        tie_break = menu.tie_breaks[header[0] % len(menu.tie_breaks)] if depth is None else "pct"
        seed = header[1] << 8 | header[2]
        step = menu.steps_ms[header[3] % len(menu.steps_ms)]
        jitter = menu.jitters_ms[header[4] % len(menu.jitters_ms)]
        # A pct depth comes from the caller: checked, unless it is a depth ``ClockPolicy`` takes.
        if not self.trusted or (depth is not None and not (type(depth) is int and 1 <= depth <= MAX_DEPTH)):
            return ClockPolicy(tie_break=tie_break, seed=seed, step_ms=step, jitter_ms=jitter, depth=3 if depth is None else depth)
        policy = _PolicyDraft()
        policy.tie_break, policy.seed, policy.step_ms, policy.jitter_ms = tie_break, seed, step, jitter
        policy.depth = 3 if depth is None else depth
        policy.__class__ = ClockPolicy
        return cast(ClockPolicy, policy)

    def blob_size(self, ops: int) -> int:
        """The length of a blob holding ``ops`` operation records."""
        return HEADER + (self.width if self.menu.periodic else 0) + ops * self.width

    def decode_blob(self, blob: bytes, pct_depth: int | None = None) -> Schedule:
        """One flat byte string as a schedule: ``HEADER`` policy bytes, the periodic start record if
        the menu has one, then whole operation records (at most ``max_ops``; a ragged tail is ignored).

        Every byte string decodes, so a search can draw and mutate plain bytes (``harness.search.generate``).
        A call's arguments are drawn from its record's argument bytes by the operation's strategies
        (``harness.search.arguments``); a call whose bytes the strategies refuse is left out.
        With ``pct_depth`` the schedule's calls due together run in ``pct`` order at that depth
        (the ``pct`` strategy), whatever tie order the header names."""
        start = None
        offset = HEADER
        if self.menu.periodic:
            start = blob[offset : offset + self.width].ljust(self.width, b"\0")
            offset += self.width
        records = blob[offset : offset + self.menu.max_ops * self.width] if self.actions else b""
        return self.decode(records, self.policy(blob[:HEADER].ljust(HEADER, b"\0"), pct_depth), start)

    def decode(
        self,
        data: bytes,
        policy: ClockPolicy,
        start: bytes | None,
        arg_pools: tuple[list[tuple[Any, ...]], ...] | None = None,
    ) -> Schedule:
        """Records as a schedule; calls take their arguments from ``arg_pools`` (Hypothesis drew them, in
        turn per operation) or, when None, from each record's argument bytes.

        Hot: a campaign decodes every example. Each record's action, gap and
        priority come from tables indexed by its bytes, its job behaviour from
        ``specs`` (one shared, frozen ``JobSpec`` per behaviour), and submits
        and cancels are built through their slots; with a menu whose bounds
        make every decoded schedule valid (``trusted``) the schedule is not
        checked again."""
        menu = self.menu
        width = self.width
        ops: list[Any] = []
        append = ops.append
        now = 0
        submitted = 0
        stopped = False
        restarts = menu.restarts
        if start is not None:
            now = self.gap(start[2])
            append(Start(now, 0, self.spec(start[0], start[1], start[3]), self.then(start)))
            submitted = 1
        if len(data) % width:
            data = data[: len(data) - len(data) % width]
        if data:
            codes, afters, gaps, details, priorities = self.codes, self.afters, self.gaps, self.details, self.priorities
            specs = _SPECS
            plain = not menu.max_then and not menu.keys  # a submit's record says nothing past its 4th byte
            submit_draft, cancel_draft = _SubmitDraft, _CancelDraft
            # Where each operation lands among its instant's rounds (``landing``), for every record at once.
            if menu.landings:
                landing_codes, landings = _landings_of(data, width), _landing_shares(width)[1]
            else:
                landing_codes, landings = bytes(len(data) // width), _NO_LANDINGS
            pools = [iter(pool) for pool in arg_pools or ()]
            # The first four bytes of each record unpacked at once; the rest, when needed, read from ``data``.
            heads = iter_unpack("4B" + "x" * (width - 4), data)
            for offset, (action, duration, gap, detail), landed in zip(
                range(0, len(data), width), heads, map(landings.__getitem__, landing_codes)
            ):
                code = codes[action]
                now += gaps[gap]
                if code < _CANCEL:
                    # The behaviour's key: its duration, error, hostile canceller and kind, as ``_spec`` reads them.
                    key = afters[code][duration] << _AFTER_SHIFT | details[detail] | code
                    try:  # a subscript, not ``get``: nearly every behaviour is in the table already
                        spec = specs[key]
                    except KeyError:
                        if len(specs) >= _MAX_SPECS:
                            specs.clear()
                        spec = specs[key] = self._spec(JOB_KINDS[code], duration, detail)
                    op = submit_draft()  # a Submit, built through its slots (``_draft``)
                    op.at_ms = now
                    op.job = submitted
                    op.spec = spec
                    op.priority = priorities[detail]
                    if plain:
                        op.then = ()
                        op.key = 0
                    else:
                        op.then = self.then(data[offset : offset + width])
                        op.key = data[offset + width - 1] % menu.keys if menu.keys else 0
                    op.after_rounds = landed
                    op.__class__ = Submit
                    append(op)
                    submitted += 1
                elif code == _CANCEL:
                    if submitted:
                        cancel = cancel_draft()
                        cancel.at_ms = now
                        back = detail & 3  # how many submits back: ``min(detail % 4, submitted - 1)``
                        cancel.job = submitted - 1 - back if back < submitted else 0
                        cancel.after_rounds = landed
                        cancel.__class__ = Cancel
                        append(cancel)
                elif code == _CALL:
                    which = detail % len(menu.operations)
                    operation, strategies = menu.operations[which]
                    if not strategies:
                        args: tuple[Any, ...] | None = ()
                    elif arg_pools is None:
                        drawer = drawers(menu)[which]
                        at = offset + self.arg_at
                        args = drawer.draw(data[at : at + self.arg_width]) if drawer else None
                    else:
                        args = next(pools[which], None) if which < len(pools) else None
                    if args is not None:  # None: the schedule drew no more arguments for it, so no call
                        append(Call(now, operation, tuple(args), landed))
                        if operation in restarts:  # a restart: the subject may be stopped again
                            stopped = False
                elif code == _JUMP:
                    magnitude = (duration % (menu.max_jump_ms // menu.grain_ms + 1)) * menu.grain_ms
                    append(Jump(now, -magnitude if detail % 2 else magnitude, landed))
                elif not stopped:
                    append(Stop(now, landed))
                    stopped = True
        if self.trusted:
            return Schedule.trusted(tuple(ops), policy)
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

