"""Keys: schedules carry a key per job, invariants judge order, limits and "stuck" per key."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from twisted.internet import defer

from harness import JobSpec, Schedule, Submit, Target, TargetError, check, run_schedule, schedules
from harness.output.report.svg import timeline_svg
from harness.model.schedule import Cancel, ScheduleError
from harness.search.shrink import shrink_schedule
from harness.model.menu import Menu
from harness.search.strategies import _Codec
from harness.output.timeline import render_schedule, render_trace
from scenarios.keyed_lock import KeyedLock, keyed_lock
from scenarios.lock import SerialResource

HANG = JobSpec("hang")


def _ms(kind: str = "succeed", after_ms: int = 10) -> JobSpec:
    return JobSpec(kind, after_ms if kind in ("succeed", "fail") else 0)


def test_a_keyed_schedule_round_trips_and_is_written_as_version_2() -> None:
    schedule = Schedule((Submit(0, 0, _ms(), key=2), Submit(5, 1, _ms())))
    data = json.loads(json.dumps(schedule.to_json()))
    assert data["version"] == 2
    assert data["ops"][0]["key"] == 2 and "key" not in data["ops"][1]
    assert Schedule.from_json(data) == schedule


def test_a_schedule_without_keys_is_written_exactly_as_version_1_was() -> None:
    data = Schedule((Submit(0, 0, _ms()),)).to_json()
    assert data["version"] == 1
    assert set(data["ops"][0]) == {"op", "at", "job", "spec", "priority"}


def test_a_version_1_document_loads_with_every_job_on_key_0() -> None:
    old = {
        "format": "harness-schedule",
        "version": 1,
        "clock": {"tie_break": "fifo", "seed": 0, "step_ms": 0},
        "ops": [{"op": "submit", "at": 0, "job": 0, "priority": 0,
                 "spec": {"kind": "succeed", "after_ms": 10, "error": "InjectedError", "canceller_raises": False}}],
    }
    assert Schedule.from_json(old).ops[0].key == 0


@pytest.mark.parametrize("key", [-1, True, "1", 10**10])
def test_a_bad_key_is_refused_with_the_reason(key) -> None:
    data = Schedule((Submit(0, 0, _ms(), key=1),)).to_json()
    data["ops"][0]["key"] = key
    with pytest.raises(ScheduleError, match="key"):
        Schedule.from_json(data)


def test_zero_bytes_decode_to_key_0_and_keys_stay_in_range() -> None:
    codec = _Codec.of(Menu(keys=3, cancels=False, jumps=False))
    assert codec.decode(bytes(codec.width * 3), Schedule().clock, None).ops[0].key == 0

    @settings(max_examples=50, deadline=None)
    @given(schedules(Menu(keys=3)))
    def spread(schedule: Schedule) -> None:
        assert all(0 <= op.key < 3 for op in schedule.ops if isinstance(op, Submit))

    spread()


def test_keys_without_a_key_menu_stay_0() -> None:
    @settings(max_examples=30, deadline=None)
    @given(schedules(Menu()))
    def none(schedule: Schedule) -> None:
        assert all(op.key == 0 for op in schedule.ops if isinstance(op, Submit))

    none()


def test_shrinking_moves_jobs_to_key_0() -> None:
    schedule = Schedule((Submit(0, 0, _ms(), key=2), Submit(0, 1, _ms(), key=1)))
    shrunk = shrink_schedule(schedule, lambda s: sum(isinstance(op, Submit) for op in s.ops) == 2)
    assert [op.key for op in shrunk.ops] == [0, 0]


def test_the_default_submit_hands_the_key_over_and_the_job_carries_it() -> None:
    seen: list[tuple[int, int]] = []

    class Subject:
        def submit(self, job, key):
            seen.append((job.key, key))
            return defer.succeed(None)

    run_schedule(Target(build=lambda clock: Subject(), keys=4), Schedule((Submit(0, 0, _ms(), key=3),)))
    assert seen == [(3, 3)]


def test_timelines_show_the_key() -> None:
    schedule = Schedule((Submit(0, 0, _ms(), key=2),))
    run = run_schedule(keyed_lock, schedule)
    assert "key 2" in render_schedule(schedule)
    assert "p0 key 2" in render_trace(run.trace.events)
    assert ">job 0 key 2<" in timeline_svg(run.trace.events)
    # A target without keys keeps the old submit detail, so old trace hashes still match.
    plain = run_schedule(Target(build=SerialResource, limit=1), Schedule((Submit(0, 0, _ms()),)))
    assert [e.detail for e in plain.trace if e.kind == "submit"] == ["p0"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"key_limit": 1}, "declare keys=N"),
        ({"keys": 2, "cache_ms": 10}, "declare shared=True"),
        ({"keys": 0}, "keys must be a positive integer"),
        ({"keys": 2, "kind": "periodic", "interval_ms": 10}, "periodic Target cannot declare them"),
        ({"cancellable": "sometimes"}, "True, False, 'detach', 'abandon', 'delayed' or 'detach_queued'"),
    ],
)
def test_key_options_are_checked(options, message) -> None:
    with pytest.raises(TargetError, match=message):
        Target(build=KeyedLock, **options)


def test_a_job_behind_its_own_hung_key_is_not_stuck_but_one_behind_another_key_is() -> None:
    # Key 0 hangs for ever; the second job of key 0 rightly waits, the job of key 1 must run.
    schedule = Schedule((Submit(0, 0, HANG), Submit(0, 1, _ms()), Submit(0, 2, _ms(), key=1)))
    assert check(run_schedule(keyed_lock, schedule)) == []
    # One lock for every key: the job of key 1 waits behind key 0's hang, a real deadlock.
    global_lock = Target(build=lambda clock: _IgnoresKey(clock), keys=2, key_limit=1)
    assert [v.invariant for v in check(run_schedule(global_lock, schedule))] == ["completion.deadline"]


class _IgnoresKey(SerialResource):
    def submit(self, job, key=None):
        return super().submit(job)


def test_fifo_is_judged_per_key() -> None:
    # Key 1's job may overtake key 0's waiting job: order is promised within a key.
    schedule = Schedule((Submit(0, 0, _ms()), Submit(0, 1, _ms()), Submit(0, 2, _ms(), key=1)))
    assert check(run_schedule(keyed_lock, schedule)) == []


def test_key_limit_names_the_key_and_the_jobs() -> None:
    overlapping = Target(build=lambda clock: _Parallel(), keys=2, key_limit=1)
    schedule = Schedule((Submit(0, 0, _ms(), key=1), Submit(0, 1, _ms(), key=0), Submit(0, 2, _ms(), key=1)))
    [violation] = check(run_schedule(overlapping, schedule))
    assert violation.invariant == "concurrency.key_limit"
    assert "2 jobs of key 1" in violation.message and "job 2 started while job 0 still ran" in violation.message


class _Parallel:
    def submit(self, job, key):
        return defer.maybeDeferred(job)



def test_a_cancel_that_fails_the_other_callers_of_a_shared_execution_is_caught() -> None:
    from scenarios.single_flight import leader_holds_work_flight

    schedule = Schedule((Submit(0, 0, _ms()), Submit(0, 1, _ms()), Cancel(5, 0)))
    names = [v.invariant for v in check(run_schedule(leader_holds_work_flight, schedule))]
    assert names[:2] == ["cancellation.detaches", "sharing.isolated"]


def test_callers_that_join_a_running_execution_get_its_outcome_and_its_caller_list() -> None:
    from harness.run.facts import facts_of
    from harness.run.outcomes import callers_of, served_by
    from scenarios.single_flight import single_flight

    schedule = Schedule((Submit(0, 0, _ms("fail")), Submit(5, 1, _ms()), Submit(5, 2, _ms(), key=1), Submit(20, 3, _ms())))
    run = run_schedule(single_flight, schedule)
    assert check(run) == []
    facts = facts_of(run)
    assert [served_by(facts, facts.jobs[j]).job for j in range(4)] == [0, 0, 2, 3]
    assert [job.id for job in callers_of(facts, facts.jobs[0].attempts[0])] == [0, 1]


def test_a_finished_execution_may_be_served_again_only_within_cache_ms() -> None:
    from dataclasses import replace

    from scenarios.single_flight import caches_failures_flight

    schedule = Schedule((Submit(0, 0, _ms("fail")), Submit(20, 1, _ms())))
    [first, *_] = check(run_schedule(caches_failures_flight, schedule))
    assert first.invariant == "sharing.joined" and "finished 10ms earlier; no cache lifetime" in first.message
    assert check(run_schedule(replace(caches_failures_flight, cache_ms=10), schedule)) == []
    assert check(run_schedule(replace(caches_failures_flight, cache_ms=5), schedule))[0].invariant == "sharing.joined"


def test_a_caller_handed_another_jobs_result_is_caught_without_sharing() -> None:
    class Swapping:
        def __init__(self) -> None:
            self.results: list = []

        def submit(self, job):
            d = defer.Deferred()
            self.results.append((d, job()))
            if len(self.results) == 2:
                (a, ra), (b, rb) = self.results
                a.callback(rb)
                b.callback(ra)
            return d

    schedule = Schedule((Submit(0, 0, _ms("value")), Submit(0, 1, _ms("value"))))
    [violation] = check(run_schedule(Target(build=lambda clock: Swapping()), schedule))
    assert violation.invariant == "errors.own_result"
    assert "job 0's Deferred delivered 'job1.0'" in violation.message


def test_a_subject_whose_submit_takes_no_key_gets_a_one_line_fix() -> None:
    with pytest.raises(TargetError, match=r"default submit calls subject.submit\(job, key=...\) because the target declares keys"):
        run_schedule(Target(build=SerialResource, keys=2), Schedule((Submit(0, 0, _ms()),)))


def test_a_declared_cache_lifetime_lets_a_finished_execution_serve_new_callers() -> None:
    from scenarios.single_flight import caching_flight

    schedule = Schedule((Submit(0, 0, _ms()), Submit(30, 1, _ms()), Submit(70, 2, _ms())))
    run = run_schedule(caching_flight, schedule)
    assert check(run) == []
    assert [run.view.served_by(job).job for job in range(3)] == [0, 0, 2]


def test_shrinking_numbers_the_keys_in_order_of_first_use() -> None:
    schedule = Schedule((Submit(0, 0, _ms(), key=2), Submit(0, 1, _ms(), key=1), Submit(0, 2, _ms(), key=2)))
    # Only a schedule with two distinct keys, the first job's key shared by the third, still "fails".
    shrunk = shrink_schedule(schedule, lambda s: len({op.key for op in s.ops}) == 2 and s.ops[0].key == s.ops[-1].key and len(s.ops) == 3)
    assert [op.key for op in shrunk.ops] == [0, 1, 0]
