"""``time.loop_died`` and a loop whose way to its next call is several timers in a row (review 8, finding 2).

A loop that, after a call, hops through ``callLater(0)`` (or any chain of its
own timers) before arming its wait may be late by the clock's lateness at
each hop: under a reactor waking every second, a 100 ms backoff after one hop
fires two seconds after the call. Such a loop still waiting on its own timer
is not dead, whatever the number of hops; one that gives up after its hops,
or keeps re-arming without calling its work, still is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from harness import ClockPolicy, JobSpec, Schedule, Start, Stop, Target, check, run_schedule
from scenarios.backoff_loop import reconnecting_client
from specimens import Hopping, HopsForEver, HopsThenGivesUp

FAIL = JobSpec("fail", 0)
OK = JobSpec("immediate")
STRIDE = ClockPolicy(step_ms=1000, jitter_ms=50)
#: Each call late by its own draw, up to 900 ms: every hop of 1 ms late on its own.
JITTER = ClockPolicy(jitter_ms=900, seed=3)


def _hopping(hops: int, cls: type[Hopping] = Hopping, hop_ms: int = 0) -> Target:
    build = type(f"{cls.__name__}{hops}", (cls,), {"HOPS": hops, "HOP_MS": hop_ms})
    return replace(reconnecting_client, build=build)


def _names(target: Target, *ops: Any, clock: ClockPolicy = ClockPolicy()) -> list[str]:
    return [v.invariant for v in check(run_schedule(target, Schedule(ops=tuple(ops), clock=clock)))]


@pytest.mark.parametrize("hops, hop_ms, clock", [(1, 0, STRIDE), (2, 0, STRIDE), (2, 1, JITTER), (6, 1, JITTER)])
@pytest.mark.parametrize("stop_ms", [1250, 1800, 2500, 4999])
def test_a_loop_waiting_through_hops_is_no_dead_loop(hops: int, hop_ms: int, clock: ClockPolicy, stop_ms: int) -> None:
    """After a success (and after a failure), the loop's next call is its hops' and its backoff's
    lateness away: every stop before that finds a live loop."""
    target = _hopping(hops, hop_ms=hop_ms)
    assert _names(target, Start(0, 0, OK), Stop(stop_ms), clock=clock) == []
    assert _names(target, Start(0, 0, FAIL), Stop(stop_ms), clock=clock) == []
    assert _names(target, Start(0, 0, OK, (FAIL, OK, FAIL)), clock=clock) == []


def test_the_wait_names_the_lateness_of_the_hops() -> None:
    """The bare wait (twice the backoff plus one lateness) is 1250 ms, which the one-hop loop's next call
    outlasts under strides (finding 2); the hop fired 1000 ms late, and the wait says so."""
    [violation] = check(run_schedule(_hopping(1, HopsThenGivesUp), Schedule(
        ops=(Start(0, 0, OK), Stop(3500)), clock=STRIDE)))
    assert violation.invariant == "time.loop_died"
    assert ("(3500ms until stop(), past the 2250ms wait: twice the 100ms its next call may wait, plus 1050ms of "
            "lateness, plus the 1000ms the timers on its way fired late, one after another)") in violation.message


@pytest.mark.parametrize("cls", [HopsThenGivesUp, HopsForEver])
def test_a_loop_dead_after_its_hops_is_still_caught(cls: type[Hopping]) -> None:
    """On a punctual clock at once; under strides too, later: only the lateness that happened is
    excused, and a loop re-arming its 100 ms timer for ever outruns it by 100 ms at each tick."""
    assert _names(_hopping(2, cls), Start(0, 0, OK), Stop(1000)) == ["time.loop_died"]
    assert _names(_hopping(2, cls), Start(0, 0, OK), Stop(20_000), clock=STRIDE) == ["time.loop_died"]
