"""Operations between the rounds of an instant (``after_rounds``; docs/reviews/outside-user.md F1 of the outside-user review).

On a real reactor I/O (a new request: a schedule operation) is handled between two passes of
``runUntilCurrent``, so a call the subject adds with ``callLater(0)`` during a pass may run after
the next request. Before ``after_rounds`` every operation ran after every round of its instant,
and a token bucket whose fast path ignores the queue while the refill hands the token over with
``callLater(0, drain)`` was never caught (``scenarios/review/token_bucket.py``; the hand-driven
real-reactor order is ``test_queue_jumping_bucket_breaks_fifo_when_a_call_comes_between_two_rounds``
in ``tests/test_review_targets.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random

import pytest

from harness import ClockPolicy, Schedule, Submit, check, run_schedule
from harness.model.menu import Menu
from harness.model.schedule import Cancel, Jump, ScheduleError, Stop
from harness.output.timeline import render_schedule
from harness.store.failure_file import load
from harness.run.clock import FaultClock
from harness.search.shrink import _usual_landings
from harness.search.strategies import codec, landing

from scenarios.review import targets as review

from review_campaigns import campaign

#: Three jobs take the bucket's three tokens, a fourth queues; job 4 arrives at the refill tick's instant.
BURST = tuple(Submit(at_ms=0, job=i) for i in range(4))


def _queue_jump(after_rounds: int | None) -> Schedule:
    return Schedule(BURST + (Submit(at_ms=100, job=4, after_rounds=after_rounds),))


def test_the_clock_pauses_a_wake_after_the_rounds_asked_and_runs_the_rest_next() -> None:
    clock = FaultClock()
    ran: list[str] = []
    clock.callLater(1, lambda: (ran.append("tick"), clock.callLater(0, lambda: ran.append("drain"))))
    assert clock.run_until(1_000_000, rounds=1) == 1  # the drain is still due
    assert ran == ["tick"]
    ran.append("io")
    clock.run_until(1_000_000)
    assert ran == ["tick", "io", "drain"]


@pytest.mark.parametrize("rounds, left, order", [(0, 1, ["io", "tick", "drain"]), (1, 1, ["tick", "io", "drain"]), (2, 0, ["tick", "drain", "io"]), (None, 0, ["tick", "drain", "io"])])
def test_every_landing_among_two_rounds(rounds: int | None, left: int, order: list[str]) -> None:
    clock = FaultClock()
    ran: list[str] = []
    clock.callLater(1, lambda: (ran.append("tick"), clock.callLater(0, lambda: ran.append("drain"))))
    assert clock.run_until(1_000_000, rounds=rounds) == left
    ran.append("io")
    clock.run_until(1_000_000)
    assert ran == order


def test_after_rounds_1_plays_the_review_hand_driven_order() -> None:
    """The review drove a real reactor's order by hand (the tick, then I/O, then the hand-over): the
    queue-jumping bucket serves job 4 before job 3. ``after_rounds=1`` plays that order, the trace
    says where the operation landed, and the harness names the broken promise; the correct bucket
    stays clean."""
    run = run_schedule(review.token_bucket_queue_jump, _queue_jump(1))
    [violation] = check(run)
    assert violation.invariant == "concurrency.fifo"
    assert "job 4 started at 100ms ahead of job 3" in violation.message
    pause = [e for e in run.trace if e.kind == "reactor.pause"]
    assert [e.detail for e in pause] == ["step 5 lands after round 1 of this instant; 1 call still due runs after it"]
    assert check(run_schedule(review.token_bucket_ok, _queue_jump(1))) == []


@pytest.mark.parametrize("after_rounds", [None, 0, 2, 7])
def test_every_other_landing_keeps_the_queue_jump_hidden(after_rounds: int | None) -> None:
    assert check(run_schedule(review.token_bucket_queue_jump, _queue_jump(after_rounds))) == []


def test_a_landing_that_leaves_nothing_due_gives_the_default_trace_byte_for_byte() -> None:
    default = run_schedule(review.token_bucket_ok, _queue_jump(None)).trace.digest()
    # The correct bucket's instant at 100ms has three rounds: the tick, the hand-over, job 3's result.
    assert run_schedule(review.token_bucket_ok, _queue_jump(3)).trace.digest() == default
    assert run_schedule(review.token_bucket_ok, _queue_jump(50)).trace.digest() == default
    assert run_schedule(review.token_bucket_ok, _queue_jump(2)).trace.digest() != default
    assert run_schedule(review.token_bucket_ok, _queue_jump(1)).trace.digest() != default


def test_landing_under_a_stride_pauses_the_wake_at_the_operation_instant() -> None:
    schedule = dataclasses.replace(_queue_jump(1), ops=tuple(dataclasses.replace(op, at_ms=op.at_ms + 40) for op in _queue_jump(1).ops))
    strided = dataclasses.replace(schedule, clock=ClockPolicy(step_ms=100))
    # Punctual: the tick is due at 140ms and the reactor wakes then; the operation lands after its round.
    assert [v.invariant for v in check(run_schedule(review.token_bucket_queue_jump, schedule))] == ["concurrency.fifo"]
    # Strides of 100ms: the reactor wakes for the tick only at 200ms, so at 140ms there is no round to land between.
    assert check(run_schedule(review.token_bucket_queue_jump, strided)) == []
    late = dataclasses.replace(strided, ops=strided.ops[:-1] + (dataclasses.replace(strided.ops[-1], at_ms=200),))
    assert [v.invariant for v in check(run_schedule(review.token_bucket_queue_jump, late))] == ["concurrency.fifo"]


def test_after_rounds_is_written_only_when_set_and_makes_a_version_3_schedule() -> None:
    plain = _queue_jump(None)
    assert plain.version == 1 and "after_rounds" not in json.dumps(plain.to_json())
    landed = _queue_jump(1)
    data = landed.to_json()
    assert data["version"] == 3 and data["ops"][-1]["after_rounds"] == 1
    assert Schedule.from_json(data) == landed
    assert Schedule.from_json({**data, "ops": [{**op, "after_rounds": None} for op in data["ops"]]}) == plain
    for bad in (-1, 10_001, True, "1"):
        with pytest.raises(ScheduleError, match="after_rounds must be an integer from 0 to 10000"):
            Schedule.from_json({**data, "ops": data["ops"][:-1] + [{**data["ops"][-1], "after_rounds": bad}]})
    with pytest.raises(ScheduleError, match="after_rounds"):
        Schedule((Cancel(0, 1, after_rounds=-2),))
    assert [Stop(0, 1).after_rounds, Jump(0, 5, 2).after_rounds] == [1, 2]


def test_the_printed_schedule_says_where_an_operation_lands() -> None:
    text = render_schedule(dataclasses.replace(_queue_jump(1), ops=_queue_jump(1).ops[:-1] + (Submit(100, 4, after_rounds=1), Stop(100, after_rounds=0))))
    assert "submit job 4 (succeed after 0ms), after 1 round of the calls due then" in text
    assert "stop the subject, before the calls due then" in text
    assert "submit job 0 (succeed after 0ms)\n" in text


def test_the_codec_draws_landings_from_the_record_bytes_without_changing_any_other_field() -> None:
    """Every field but ``after_rounds`` decodes as before the landings existed: the digest below was
    computed with the harness of commit 3851cb8 (no landings) over the same random byte strings."""
    rng = random.Random(7)
    digest = hashlib.sha256()
    drawn = landed = 0
    for menu in (Menu(), Menu(keys=3, priorities=3, max_then=2, stops=True, canceller_raises=True)):
        c = codec(menu)
        for _ in range(300):
            schedule = c.decode_blob(rng.randbytes(c.blob_size(rng.randint(0, menu.max_ops))))
            data = schedule.to_json()
            for op in data["ops"]:
                drawn += 1
                landed += op.pop("after_rounds", None) is not None
            data.pop("version")
            digest.update(json.dumps(data, sort_keys=True).encode())
    assert digest.hexdigest() == "117f641c5509d2cd0f7f1c96076eadb0272fd4a78a3a85b93c871ee7bd9f80bf"
    assert 0.18 < landed / drawn < 0.32  # about one operation in four
    assert landing(bytes(codec(Menu()).width)) is None  # the simplest record keeps the usual order
    # A menu without landings decodes the same bytes to the same schedules, every operation after every round.
    rng = random.Random(7)
    plain = codec(Menu(landings=False))
    for _ in range(100):
        blob = rng.randbytes(plain.blob_size(16))
        landed = codec(Menu()).decode_blob(blob)
        assert plain.decode_blob(blob) == dataclasses.replace(landed, ops=tuple(dataclasses.replace(op, after_rounds=None) for op in landed.ops))


def test_shrinking_proposes_each_landing_back_to_the_usual_order() -> None:
    schedule = Schedule((Submit(0, 0, after_rounds=0), Submit(0, 1), Cancel(5, 0, after_rounds=2)))
    assert [[op.after_rounds for op in s.ops] for s in _usual_landings(schedule)] == [[None, None, 2], [0, None, None]]


def test_a_campaign_finds_the_queue_jump_and_shrinks_it_to_one_landing(tmp_path) -> None:
    result = campaign("scenarios.review.targets:token_bucket_queue_jump", 1, 3000, tmp_path)
    [finding] = result.findings
    assert finding.record.invariant == "concurrency.fifo"
    ops = finding.record.schedule.ops
    assert len(ops) == 5 and [op.after_rounds for op in ops] == [None] * 4 + [1]
    assert any(e.kind == "reactor.pause" for e in finding.record.trace)
    assert "step 5 handled after 1 round of the calls due then (as I/O between two reactor passes)" in finding.record.message
    # The failure file holds the landing (a version 3 schedule) and replays to the same trace.
    loaded = load(finding.path)
    assert loaded.schedule == finding.record.schedule and loaded.schedule.version == 3
    assert run_schedule(review.token_bucket_queue_jump, loaded.schedule).trace.events == list(loaded.trace)


def test_the_correct_bucket_stays_clean(tmp_path) -> None:
    result = campaign("scenarios.review.targets:token_bucket_ok", 1, 1000, tmp_path)
    assert [f.record.message for f in result.findings] == [] and result.examples == 1000


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_the_correct_bucket_stays_clean_over_a_long_campaign(seed: int, tmp_path) -> None:
    result = campaign("scenarios.review.targets:token_bucket_ok", seed, 2000, tmp_path)
    assert [f.record.message for f in result.findings] == [] and result.examples == 2000


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 11])
def test_other_seeds_find_the_queue_jump(seed: int, tmp_path) -> None:
    result = campaign("scenarios.review.targets:token_bucket_queue_jump", seed, 5000, tmp_path)
    assert [f.record.invariant for f in result.findings] == ["concurrency.fifo"]
