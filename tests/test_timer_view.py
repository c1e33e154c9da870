"""``run.view.timers``: the subject's own timers as typed records, for user invariants (docs/run-api.md).

Before it, an invariant that needed to know when the subject's timer fired matched ``timer.fire``
detail strings by name. The view is read from the trace on first use only, and a user invariant
on it is shown both ways: a correct flusher stays clean over a campaign, a forgetful one is caught.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from twisted.internet import defer, task

import timer_targets
from harness import JobSpec, Run, Schedule, Stop, Submit, Target, TimerRecord, check, run_schedule
from harness.model.schedule import Start
from harness.run import view as view_module
from harness.run.steps import MAX_TIMER_EVENTS, MAX_TIMER_MOVES
from harness.run.timers import TimerEnd, timer_name
from review_campaigns import campaign
from test_subject_timers import Delayer, delayer

ROOT = Path(__file__).resolve().parent.parent


def test_set_fire_and_cancel_become_records_with_due_times_indices_and_wall_readings() -> None:
    cancelled = run_schedule(delayer, Schedule((Submit(0, 0, JobSpec("succeed", 20)), Submit(0, 1, JobSpec("succeed", 0)), Stop(30))))
    first, second = cancelled.view.timers
    assert (first.id, first.function, first.set_us, first.due_us, first.end, first.end_us) == (
        1, "Delayer._run", 0, 50_000, TimerEnd.CANCELLED, 30_000
    )
    assert first.cancelled_us == 30_000 and first.fired_us is None and second.id == 2
    assert cancelled.view.events[first.set_index].kind == "timer.set"
    assert cancelled.view.events[first.end_index].kind == "timer.cancel"
    fired = run_schedule(delayer, Schedule((Submit(0, 0, JobSpec("succeed", 20)),))).view
    (timer,) = fired.timers
    assert (timer.end, timer.fired_us, timer.cancelled_us) == ("fired", 50_000, None)
    assert timer.pending_at(timer.set_index) and not timer.pending_at(timer.end_index)
    assert fired.timer_limit_index is None and fired.timers_calling(Delayer._run) == [timer]


def test_a_reset_or_a_delay_is_recorded_and_moves_the_records_due_time() -> None:
    """``DelayedCall.reset``/``delay`` were not in the trace (``due_us`` went stale without a word); each is
    now a ``timer.reset`` event with the new due time, read as ``moved_to_us`` (``due_us`` stays the set's)."""
    from harness import Call
    from specimens import ResetsOnRestart, keepalive_target

    run = run_schedule(keepalive_target(ResetsOnRestart), Schedule((
        Start(0, 0, JobSpec("succeed", 0)), Call(90, "restart"), Call(150, "restart"), Stop(400))))
    first = run.view.timers[0]
    assert (first.set_us, first.due_us, first.moved_to_us, first.fired_us) == (0, 100_000, 250_000, 250_000)
    resets = [e for e in run.view.events if e.kind == "timer.reset"]
    assert [(e.t_us, e.detail) for e in resets] == [
        (90_000, f"#{first.id} Keepalive._tick due 190ms"), (150_000, f"#{first.id} Keepalive._tick due 250ms")]
    assert run.view.timers[1].moved_to_us is None


def test_a_looping_calls_ticks_a_jump_and_a_fractional_due_time() -> None:
    from harness import Jump
    from scenarios.heartbeat import heartbeat

    view = run_schedule(heartbeat, Schedule((Start(0, 0, JobSpec("succeed", 10)), Jump(150, 5_000), Stop(250)))).view
    ticks = view.timers_calling(task.LoopingCall)
    assert ticks and ticks == list(view.timers) and timer_name(task.LoopingCall) == "LoopingCall"
    assert [t.end for t in ticks] == ["fired", "fired", "cancelled"]
    assert ticks[-1].set_wall_us == ticks[-1].set_us + 5_000_000 and ticks[0].end_wall_us == ticks[0].end_us

    class Fraction:
        def __init__(self, clock) -> None:
            self.clock = clock

        def submit(self, job):
            self.clock.callLater(0.00225, lambda: None)
            return defer.maybeDeferred(job)

    (odd,) = run_schedule(Target(build=Fraction, cancellable=False), Schedule((Submit(1, 0, JobSpec("value")),))).view.timers
    assert (odd.set_us, odd.due_us, odd.function) == (1_000, 3_250, "<lambda>")


class _Looper:
    """Sets a timer from its timer for ever: past ``MAX_TIMER_EVENTS`` the harness stops recording."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.clock.callLater(0.001, self.tick)

    def tick(self) -> None:
        self.clock.callLater(0.001, self.tick)

    def submit(self, job):
        return defer.maybeDeferred(job)

    def stop(self) -> None:
        pass


def test_timers_past_the_recording_limit_are_said_to_be_unrecorded() -> None:
    view = run_schedule(Target(build=_Looper, cancellable=False), Schedule((Submit(0, 0, JobSpec("value")),))).view
    assert view.timer_limit_index is not None and view.events[view.timer_limit_index].kind == "timer.limit"
    assert len(view.timers) == MAX_TIMER_EVENTS
    assert [t.end for t in view.timers[-2:]] == ["fired", "unrecorded"]
    assert view.timers[-1].end_us is None


class _IdleTimer:
    """An idle timeout: one timer, reset by every request (``resets`` of them each), then left to fire."""

    def __init__(self, clock, resets: int) -> None:
        self.clock, self.resets = clock, resets
        self.idle = clock.callLater(0.5, lambda: None)

    def submit(self, job):
        for _ in range(self.resets):
            self.idle.reset(0.5)
        return defer.maybeDeferred(job)


def _idle(resets: int) -> Run:
    return run_schedule(Target(build=lambda clock: _IdleTimer(clock, resets), cancellable=False),
                        Schedule((Submit(0, 0, JobSpec("value")),)))


def test_an_idle_timer_reset_on_every_event_is_one_timer_against_the_limit() -> None:
    """Resets count apart from the timers set: 1,500 moves of one timer once hit the 1,000-timer limit (and
    every timer event after it went unrecorded), as a livelock does; the timer now fires, recorded."""
    view = _idle(1_500).view
    assert view.timer_limit_index is None
    (idle,) = view.timers
    assert idle.end == "fired" and len([e for e in view.events if e.kind == "timer.reset"]) == 1_500


def test_resets_are_still_bounded() -> None:
    """Past ``MAX_TIMER_MOVES`` moves recording stops, as past ``MAX_TIMER_EVENTS`` timers: memory stays flat."""
    view = _idle(MAX_TIMER_MOVES + 50).view
    kinds = [e.kind for e in view.events]
    assert kinds.count("timer.reset") == MAX_TIMER_MOVES and kinds.count("timer.limit") == 1
    assert view.events[view.timer_limit_index].detail == f"{MAX_TIMER_MOVES} timer moves recorded: no more timer events"
    assert [t.end for t in view.timers] == ["unrecorded"]


def test_the_view_reads_timers_only_when_asked(monkeypatch) -> None:
    """Zero cost for runs whose invariants never read it: the built-in invariants and ``run.view`` do not."""
    calls = []
    real = view_module.read_timers
    monkeypatch.setattr(view_module, "read_timers", lambda *a: calls.append(1) or real(*a))
    run = run_schedule(delayer, Schedule((Submit(0, 0, JobSpec("succeed", 20)),)))
    assert check(run) == [] and run.view.jobs and calls == []
    assert run.view.timers and run.view.timers and calls == [1]  # once, then kept


def test_every_timer_record_field_is_in_the_reference() -> None:
    text = (ROOT / "docs" / "run-api.md").read_text()
    for field in dataclasses.fields(TimerRecord):
        assert f"`{field.name}" in text or f", `{field.name}`" in text, field.name


def _example(subject: type) -> Target:
    """The user invariant of docs/run-api.md, run against ``subject``."""
    text = (ROOT / "docs" / "run-api.md").read_text()
    code = text.split("## `TimerRecord`", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {"Flusher": subject}
    exec(compile(code, "docs/run-api.md", "exec"), namespace)
    return namespace["target"]


@pytest.mark.parametrize(("subject", "expected"), [(timer_targets.Flusher, []), (timer_targets.ForgetfulFlusher, ["user.one_quiet_timer"])])
def test_the_reference_example_passes_a_correct_flusher_and_catches_a_forgetful_one(subject, expected) -> None:
    burst = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(30, 1, JobSpec("succeed", 10)), Submit(60, 2, JobSpec("value"))))
    run = run_schedule(_example(subject), burst)
    assert [v.invariant for v in check(run)] == expected
    if expected:
        [violation] = check(run)
        assert violation.message == "flush timer #2 was set at 30ms while #1 (set at 0ms, due 50ms) was still set"
    else:
        # the batch ran once, 50ms after the last submission
        assert [a.start_us for job in run.view.jobs.values() for a in job.attempts] == [110_000] * 3


def test_a_campaign_passes_the_flusher_and_finds_the_forgetful_one_by_its_user_invariant(tmp_path) -> None:
    clean = campaign("timer_targets:flusher", 3, 300, tmp_path, timer_targets.flusher)
    assert [f.violation.invariant for f in clean.findings] == []
    caught = campaign("timer_targets:forgetful_flusher", 3, 300, tmp_path, timer_targets.forgetful_flusher)
    assert [f.violation.invariant for f in caught.findings] == ["user.one_quiet_timer"]


@pytest.mark.slow
def test_the_flusher_stays_clean_over_a_long_campaign(tmp_path) -> None:
    result = campaign("timer_targets:flusher", 3, 4_000, tmp_path, timer_targets.flusher)
    assert [f.violation.invariant for f in result.findings] == []


def test_a_user_invariant_reading_timers_sees_the_run_so_far(tmp_path) -> None:
    """A target invariant runs while the run is live: the timers it reads are the trace's up to then."""
    seen: list[tuple[TimerRecord, ...]] = []

    def note(run: Run) -> None:
        seen.append(run.view.timers)

    run = run_schedule(Target(build=Delayer, cancellable=False, invariants=(note,)), Schedule((Submit(0, 0, JobSpec("succeed", 20)),)))
    assert seen == [run.view.timers] and seen[0][0].end == "fired"
