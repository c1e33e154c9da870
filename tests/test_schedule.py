"""Schedules round-trip through JSON exactly and reject malformed documents clearly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from harness import Schedule, schedules
from harness.model.schedule import ClockPolicy, JobSpec, ScheduleError, Submit
from harness.model.menu import Menu


@given(schedules(Menu(stops=True, priorities=3, canceller_raises=True)))
def test_json_round_trip_is_exact(schedule: Schedule) -> None:
    text = json.dumps(schedule.to_json())
    assert Schedule.from_json(json.loads(text)) == schedule


def test_generated_ops_are_time_ordered_and_cancels_name_submitted_jobs() -> None:
    @given(schedules())
    def check(schedule: Schedule) -> None:
        times = [op.at_ms for op in schedule.ops]
        assert times == sorted(times)
        submitted: set[int] = set()
        for op in schedule.ops:
            if isinstance(op, Submit):
                submitted.add(op.job)
            elif op.name == "cancel":
                assert op.job in submitted

    check()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "not a harness schedule"),
        (lambda d: d.update(version=99), "version 99 is not supported"),
        (lambda d: d["ops"].append({"op": "explode", "at": 5}), "'explode' is unknown"),
        (lambda d: d["ops"][0].update(at="soon"), "'at' must be int"),
        (lambda d: d["ops"][0]["spec"].update(kind="teleport"), "job kind 'teleport' is unknown"),
        (lambda d: d["ops"][0]["spec"].update(after_ms=True), "'after_ms' must be int"),
        (lambda d: d["clock"].update(tie_break="random"), "tie_break 'random' is unknown"),
        (lambda d: d["ops"].append(dict(d["ops"][0])), "submitted twice"),
        (lambda d: d["ops"].insert(0, {"op": "stop", "at": 50}), "non-decreasing"),
    ],
)
def test_malformed_documents_are_rejected_with_the_reason(mutate, message) -> None:
    good = Schedule((Submit(10, 0, JobSpec("succeed", 5)),), ClockPolicy()).to_json()
    mutate(good)
    with pytest.raises(ScheduleError, match=message):
        Schedule.from_json(good)
