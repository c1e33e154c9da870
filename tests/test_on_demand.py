"""``Operation(calls_now=True)`` and ``time.on_demand``: a periodic target's request for a call of its work
now (buildbot's ``Poller.__call__``: "Force a call to the decorated method now. If the decorated method
is currently running, another call will begin as soon as it completes"). Both ways: buildbot's poller
forced by an operation passes; the subclass that ignores a force while a poll runs is caught by the
built-in invariant, as the submit-shaped ``poll_forced`` target's hand-written one caught it. A call made
on demand keeps no interval with the periodic ones (``time.early`` leaves it out), and only when declared."""

from __future__ import annotations

import dataclasses

import pytest

from harness import (
    Call,
    JobSpec,
    Operation,
    Schedule,
    Start,
    Stop,
    Target,
    TargetError,
    check,
    load_target,
    run_schedule,
)

from review_campaigns import campaign

ZOO = "scenarios.thirdparty.buildbot_utils"


def verdict(target: Target, *ops) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


def test_the_declaration_is_checked():
    with pytest.raises(TargetError, match="calls_now must be True or False"):
        Operation(lambda s: s.force(), calls_now="yes")  # type: ignore[arg-type]
    with pytest.raises(TargetError, match="declares calls_now=True.*submit Target"):
        Target(build=lambda clock: None, operations={"force": Operation(lambda s: s.force(), calls_now=True)})


def test_a_force_while_a_poll_runs_is_owed_a_poll_right_after_it():
    ops = (Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=50)), Call(at_ms=510, operation="force"),
           Stop(at_ms=2000))
    assert verdict(load_target(f"{ZOO}:polled_forced"), *ops) == []
    [(name, message)] = verdict(load_target(f"{ZOO}:polled_forced_skipped_while_running"), *ops)
    assert name == "time.on_demand"
    assert message.startswith("operation force asked for a call of the work now at 510ms while call 0 ran (until "
                              "550ms); the next call started at 1000ms, past 550ms (its end plus 0ms of lateness)"), message


def test_a_call_on_demand_keeps_no_interval_only_when_declared():
    ops = (Start(at_ms=0, job=0, spec=JobSpec(kind="value")), Call(at_ms=100, operation="force"), Stop(at_ms=1200))
    forced = load_target(f"{ZOO}:polled_forced")
    assert verdict(forced, *ops) == []  # calls at 100 (forced) and 500, 1000 (periodic)
    plain = dataclasses.replace(forced, operations={"force": Operation(lambda subject: subject.force())})
    [(name, message)] = verdict(plain, *ops)
    assert name == "time.early" and "periodic call 1 came at 500ms" in message, message


@pytest.mark.parametrize("name, expect", [("polled_forced", None), ("polled_forced_skipped_while_running", "time.on_demand")])
def test_the_pollers(name, expect, tmp_path):
    result = campaign(f"{ZOO}:{name}", 4, 200 if expect is None else 800, tmp_path)
    assert result.error is None
    if expect is None:
        assert result.findings == [], [f.violation.message for f in result.findings]
        return
    [finding] = result.findings
    assert finding.violation.invariant == expect, finding.violation.message


@pytest.mark.slow
def test_the_forced_poller_stays_clean_over_a_long_campaign(tmp_path):
    result = campaign(f"{ZOO}:polled_forced", 4, 3000, tmp_path)
    assert result.findings == [], [f.violation.message for f in result.findings]
