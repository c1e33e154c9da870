"""``time.loop_died`` beyond a failed call: a loop silent from its ``start()`` (its work never called),
or after a last call that succeeded, and the ``skips`` declaration of a loop that skips ticks by
design. Both ways, on ``scenarios.silent_loops``: the two bugs (both passed every invariant before)
are caught by ``time.loop_died``; the correct loop, one skipping every other tick, and one skipping
two in a row that declares it, stay clean; undeclared, the latter is taken for dead."""

from __future__ import annotations

import dataclasses
import math

import pytest

from harness import JobSpec, Schedule, Start, Stop, Target, TargetError, check, load_target, run_schedule
from scenarios import silent_loops

from zoo_checks import Zoo, name_id

ZOO = "scenarios.silent_loops"


def verdict(target: Target, *ops) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


def test_dead_from_the_start():
    target = load_target(f"{ZOO}:never_called_loop")
    [(name, message)] = verdict(target, Start(at_ms=0, job=0, spec=JobSpec(kind="value")), Stop(at_ms=1000))
    assert name == "time.loop_died"
    assert message.startswith("the loop was started at 0ms and its function was never called (1000ms until stop(), "
                              "past the 200ms wait: two 100ms intervals)"), message
    # The correct loop, same schedule: its work is called every tick.
    assert verdict(load_target(f"{ZOO}:rearming_loop"), Start(at_ms=0, job=0, spec=JobSpec(kind="value")),
                   Stop(at_ms=1000)) == []


def test_dead_after_a_success():
    target = load_target(f"{ZOO}:value_ends_loop")
    # A Deferred's success re-arms the loop: not dead.
    assert verdict(target, Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=10)), Stop(at_ms=1000)) == []
    [(name, message)] = verdict(target, Start(at_ms=0, job=0, spec=JobSpec(kind="value")), Stop(at_ms=1000))
    assert name == "time.loop_died"
    assert message.startswith("periodic call 0 succeeded at 100ms and the function was never called again (900ms "
                              "until stop(), past the 200ms wait"), message


def test_a_stop_or_a_call_in_flight_ends_the_judgement():
    target = load_target(f"{ZOO}:never_called_loop")
    assert verdict(target, Start(at_ms=0, job=0, spec=JobSpec(kind="value")), Stop(at_ms=150)) == []
    hang = load_target(f"{ZOO}:value_ends_loop")
    assert verdict(hang, Start(at_ms=0, job=0, spec=JobSpec(kind="hang")), Stop(at_ms=1000)) == []


def test_a_stop_before_the_calls_due_at_the_end_of_the_wait_is_not_yet_a_death():
    """Audit 12 (soak, seed 12): ``sparse_loop`` calls its work on even ticks; a ``stop()`` at 200 ms, exactly
    the wait, handled before the calls due then (a clock fault) cancelled the tick that would have called it,
    and the loop was called dead. The silence ends where the call was owed, not past it; one millisecond
    later, or in the usual order (the calls due first), a dead loop is still caught."""
    start = Start(at_ms=0, job=0, spec=JobSpec(kind="succeed"))
    sparse = load_target(f"{ZOO}:sparse_loop")
    assert verdict(sparse, start, Stop(at_ms=200, after_rounds=0)) == []
    assert verdict(sparse, start, Stop(at_ms=200)) == []
    never = load_target(f"{ZOO}:never_called_loop")
    for stop in (Stop(at_ms=200), Stop(at_ms=201), Stop(at_ms=201, after_rounds=0), Stop(at_ms=300, after_rounds=0)):
        assert [name for name, _ in verdict(never, start, stop)] == ["time.loop_died"], stop


def test_skips_declares_a_longer_wait():
    third = load_target(f"{ZOO}:third_tick_loop")
    schedule = (Start(at_ms=0, job=0, spec=JobSpec(kind="value")), Stop(at_ms=250))
    assert verdict(third, *schedule) == []  # its first call is due at 300ms: three ticks, declared
    [(name, message)] = verdict(dataclasses.replace(third, skips=1), *schedule)
    assert name == "time.loop_died" and "past the 200ms wait: two 100ms intervals" in message
    # Unbounded skipping still judges a loop with no timer left: the value-ended loop is dead.
    unbounded = dataclasses.replace(load_target(f"{ZOO}:value_ends_loop"), skips=math.inf)
    [(name, _)] = verdict(unbounded, Start(at_ms=0, job=0, spec=JobSpec(kind="value")), Stop(at_ms=1000))
    assert name == "time.loop_died"
    never = dataclasses.replace(load_target(f"{ZOO}:never_called_loop"), skips=math.inf)
    assert verdict(never, Start(at_ms=0, job=0, spec=JobSpec(kind="value")), Stop(at_ms=1000)) == []


def test_skips_is_checked():
    build = load_target(f"{ZOO}:rearming_loop").build
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(TargetError, match="skips must be"):
            Target(build=build, kind="periodic", interval_ms=100, skips=bad)  # type: ignore[arg-type]
    with pytest.raises(TargetError, match="skips is how many ticks"):
        Target(build=build, skips=2)
    with pytest.raises(TargetError, match="skips is how many ticks"):
        Target(build=build, kind="periodic", backoff_ms=(10, 20), skips=2)
    assert Target(build=build, kind="periodic", interval_ms=100, skips=math.inf).skips == math.inf


#: Each campaign from seed 2; a twin's one finding names its ``expect`` (``time.loop_died``).
LOOPS = Zoo.of(silent_loops.SCENARIOS, ids=name_id)

test_the_correct_loops_stay_clean = LOOPS.clean(seed=2, examples=200)
test_the_twins_are_caught = LOOPS.caught(seeds=2, examples=600, only=True, also=False, no_error=True)
test_the_correct_loops_stay_clean_over_long_campaigns = LOOPS.clean(seed=2, examples=3000, slow=True)
