"""The byte codec's fast decoder gives exactly the schedules of the plain one, and they are valid.

``_Codec.decode`` reads its records through tables, shares job behaviours
between codecs and builds operations through their slots, unchecked
(``Schedule.trusted``); ``reference_decode`` below is the decoder it
replaced, kept as the model. Over many menus (swarm parts of menus with
priorities, keys, retries, periodic starts, operations, hostile cancellers)
and random byte strings, both must give equal schedules, and every decoded
schedule must pass the full checks of ``Schedule(...)``.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from random import Random
from typing import Any

import pytest
from hypothesis import strategies as st

from harness.model.menu import Menu
from harness.model.schedule import JOB_KINDS, Call, Cancel, ClockPolicy, Jump, Schedule, ScheduleError, Start, Stop, Submit
from harness.search.arguments import drawers
from harness.search.generate import Examples, swarm_menu
from harness.search.strategies import HEADER, _Codec, _draft, _landing_shares, _landings_of, codec, landing


def reference_decode(codec: _Codec, blob: bytes, pct_depth: int | None = None) -> Schedule:
    """The decoder before the fast one: one method call per field, every operation and the schedule validated."""
    menu = codec.menu
    start = None
    offset = HEADER
    if menu.periodic:
        start = blob[offset : offset + codec.width].ljust(codec.width, b"\0")
        offset += codec.width
    data = blob[offset : offset + menu.max_ops * codec.width] if codec.actions else b""
    header = blob[:HEADER].ljust(HEADER, b"\0")
    policy = ClockPolicy(
        tie_break=menu.tie_breaks[header[0] % len(menu.tie_breaks)],
        seed=header[1] << 8 | header[2],
        step_ms=menu.steps_ms[header[3] % len(menu.steps_ms)],
        jitter_ms=menu.jitters_ms[header[4] % len(menu.jitters_ms)],
    )
    if pct_depth is not None:
        policy = ClockPolicy("pct", policy.seed, policy.step_ms, policy.jitter_ms, pct_depth)
    land = landing if menu.landings else (lambda record: None)
    ops: list[Any] = []
    now = submitted = 0
    stopped = False
    if start is not None:
        now = codec.gap(start[2])
        ops.append(Start(now, 0, codec.spec(start[0], start[1], start[3]), codec.then(start)))
        submitted = 1
    for at in range(0, len(data) - codec.width + 1, codec.width):
        record = data[at : at + codec.width]
        action = codec.actions[record[0] % len(codec.actions)]
        now += codec.gap(record[2])
        detail = record[3]
        if action in JOB_KINDS:
            priority = (detail // 7) % menu.priorities if menu.priorities else 0
            key = record[-1] % menu.keys if menu.keys else 0
            spec = codec._spec(action, record[1], detail)
            ops.append(Submit(now, submitted, spec, priority, codec.then(record), key, land(record)))
            submitted += 1
        elif action == "cancel":
            if submitted:
                ops.append(Cancel(now, submitted - 1 - min(detail % 4, submitted - 1), land(record)))
        elif action == "call":
            which = detail % len(menu.operations)
            operation, strategies = menu.operations[which]
            args = ()
            if strategies:
                drawer = drawers(menu)[which]
                args = drawer.draw(record[codec.arg_at : codec.arg_at + codec.arg_width]) if drawer else None
            if args is not None:
                ops.append(Call(now, operation, tuple(args), land(record)))
        elif action == "jump":
            magnitude = (record[1] % (menu.max_jump_ms // menu.grain_ms + 1)) * menu.grain_ms
            ops.append(Jump(now, -magnitude if detail % 2 else magnitude, land(record)))
        elif not stopped:
            ops.append(Stop(now, land(record)))
            stopped = True
    return Schedule(tuple(ops), policy)


MENUS = [
    Menu(),
    Menu(max_ops=30, stops=True, priorities=3, canceller_raises=True),
    Menu(max_ops=20, keys=4, max_then=3, errors=("InjectedError", "ValueError", "OSError")),
    Menu(max_ops=10, periodic=True, max_then=3, stops=True),
    Menu(max_ops=12, operations=(("flush", ()), ("resize", (st.integers(0, 5),)))),
    Menu(max_ops=50, min_ops=50, stops=False, jumps=False, max_gap_ms=7, grain_ms=3, max_duration_ms=2_000),
    Menu(max_ops=20, stops=True, landings=False),
]


@pytest.mark.parametrize("menu", MENUS, ids=range(len(MENUS)))
def test_fast_decoding_matches_the_reference_and_passes_the_full_checks(menu: Menu) -> None:
    random = Random(7)
    for index in range(300):
        part = swarm_menu(menu, random) if index % 3 == 0 else menu
        fast = codec(part)
        blob = random.randbytes(random.randrange(fast.blob_size(part.max_ops) + fast.width))  # ragged tails too
        depth = random.choice((None, 1, 3))
        decoded = fast.decode_blob(blob, depth)
        assert decoded == reference_decode(fast, blob, depth)
        assert Schedule(decoded.ops, decoded.clock) == decoded  # passes the checks files and users get
        assert decoded.to_json() == Schedule.from_json(decoded.to_json()).to_json()


def test_a_menu_beyond_the_schedule_limits_decodes_through_the_full_checks() -> None:
    menu = Menu(max_ops=3, min_ops=3, max_gap_ms=10**12, grain_ms=10**11, cancels=False, jumps=False)
    assert not codec(menu).trusted and codec(Menu()).trusted
    with pytest.raises(ScheduleError, match="operation time"):
        codec(menu).decode_blob(bytes(HEADER) + bytes([0, 0, 255, 0]) * 3)


def test_a_bad_pct_depth_is_refused_as_before() -> None:
    with pytest.raises(ScheduleError, match="depth"):
        next(iter(Examples(Menu(), 1, "pct", depth=99)))


@pytest.mark.parametrize("strategy", ["swarm", "mixed", "pct"])
def test_every_schedule_the_search_draws_passes_the_full_checks(strategy: str) -> None:
    for menu in MENUS:
        examples = Examples(menu, 3, strategy)
        for _ in range(60):
            schedule = next(examples)
            assert Schedule(schedule.ops, schedule.clock) == schedule


def test_a_narrowed_menu_is_the_checked_one() -> None:
    menu = MENUS[1]
    narrowed = menu.narrowed(job_kinds=("fail", "hang"), cancels=False, steps_ms=(0,))
    checked = menu.with_(job_kinds=("fail", "hang"), cancels=False, steps_ms=(0,))
    assert narrowed == checked and hash(narrowed) == hash(checked) and codec(narrowed) == codec(checked)
    assert menu.job_kinds == MENUS[1].job_kinds and menu.cancels  # the whole menu is unchanged


def test_decoded_operations_are_the_frozen_classes_themselves() -> None:
    """Built as drafts and then given their class (``_draft``): the very objects the checked constructors make."""
    random = Random(5)
    for menu in MENUS:
        fast = codec(menu)
        for _ in range(40):
            schedule = fast.decode_blob(random.randbytes(fast.blob_size(menu.max_ops)))
            checked = Schedule(tuple(replace(op) for op in schedule.ops), replace(schedule.clock))
            assert [type(op) for op in schedule.ops] == [type(op) for op in checked.ops]
            assert type(schedule.clock) is ClockPolicy and hash(schedule) == hash(checked) and schedule == checked
            for op in schedule.ops[:3]:
                with pytest.raises(FrozenInstanceError):
                    op.at_ms = 1  # type: ignore[misc]


def test_a_draft_whose_slots_differ_cannot_become_the_frozen_class() -> None:
    """The guard the draft trick rests on: Python refuses ``__class__`` assignment between other layouts."""
    draft = _draft(Submit)()
    draft.at_ms, draft.job, draft.spec, draft.priority, draft.then, draft.key, draft.after_rounds = 0, 0, None, 0, (), 0, None
    draft.__class__ = Submit
    assert isinstance(draft, Submit)
    wrong = _draft(Cancel)()
    with pytest.raises(TypeError):
        wrong.__class__ = Submit


@pytest.mark.parametrize("width", [4, 5, 7, 12])
def test_every_records_landing_at_once_is_each_ones_crc(width: int) -> None:
    """``_landings_of`` (CRC-32 worked out per byte position, XORed) gives ``landing`` of every record."""
    random = Random(width)
    final = _landing_shares(width)[1]
    for _ in range(200):
        count = random.randrange(1, 60)
        records = [
            bytes(width) if random.random() < 0.1  # blank records land as usual
            else bytes(random.choice((0, random.randrange(256))) for _ in range(width))
            for _ in range(count)
        ]
        codes = _landings_of(b"".join(records), width)
        assert [final[code] for code in codes] == [landing(record) for record in records]
