"""The subject's own delayed calls are trace events (set, fired, cancelled) and a lane of the SVG timeline."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from twisted.internet import defer

from harness import JobSpec, Schedule, Stop, Submit, Target, run_schedule
from harness.model.schedule import Start
from harness.output.report.svg import timeline_svg
from scenarios.pools import semaphore_pool

NS = "{http://www.w3.org/2000/svg}"


class Delayer:
    """Hands each job over after 50ms (its own callLater); stop() cancels the hand-overs still pending."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.pending = []

    def submit(self, job):
        d = defer.Deferred()
        self.pending.append(self.clock.callLater(0.05, self._run, job, d))
        return d

    def _run(self, job, d) -> None:
        defer.maybeDeferred(job).chainDeferred(d)

    def stop(self) -> None:
        for call in self.pending:
            if call.active():
                call.cancel()


delayer = Target(build=Delayer, cancellable=False)


def _timers(run):
    return [(e.t_us, e.kind, e.detail) for e in run.trace if e.kind.startswith("timer.")]


def test_set_fire_and_cancel_are_recorded_with_name_and_due_time() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 20)), Submit(0, 1, JobSpec("succeed", 0)), Stop(30)))
    run = run_schedule(delayer, schedule)
    assert _timers(run) == [
        (0, "timer.set", "#1 Delayer._run due 50ms"),
        (0, "timer.set", "#2 Delayer._run due 50ms"),
        (30_000, "timer.cancel", "#1 Delayer._run"),
        (30_000, "timer.cancel", "#2 Delayer._run"),
    ]
    fired = run_schedule(delayer, Schedule((Submit(0, 0, JobSpec("succeed", 20)),)))
    # The job's own 20ms settle call (harness/run/jobs.py) is the harness's, not the subject's: not recorded.
    assert _timers(fired) == [(0, "timer.set", "#1 Delayer._run due 50ms"), (50_000, "timer.fire", "#1 Delayer._run")]
    kinds = [e.kind for e in fired.trace]
    assert kinds[:6] == ["submit", "timer.set", "timer.fire", "job.start", "job.finish", "result"]


def test_looping_call_ticks_are_timers_and_the_trace_stays_deterministic() -> None:
    from scenarios.heartbeat import heartbeat

    schedule = Schedule((Start(0, 0, JobSpec("succeed", 10)), Stop(250)))
    first, second = run_schedule(heartbeat, schedule), run_schedule(heartbeat, schedule)
    assert first.trace.lines() == second.trace.lines()
    kinds = [kind for _, kind, _ in _timers(first)]
    assert kinds.count("timer.fire") >= 2 and kinds[-1] == "timer.cancel"
    assert all("LoopingCall" in detail for _, _, detail in _timers(first))


def test_timers_get_their_own_lane_in_the_svg() -> None:
    run = run_schedule(delayer, Schedule((Submit(0, 0, JobSpec("succeed", 20)), Submit(0, 1, JobSpec("succeed", 0)), Stop(30))))
    root = ET.fromstring(timeline_svg(tuple(run.trace)))
    labels = [t.text for t in root.iter(f"{NS}text") if t.get("class") == "lane-label"]
    assert labels[:2] == ["reactor", "timers"]
    pending = [e for e in root.iter(f"{NS}line") if e.get("class") == "timer-pending"]
    assert len(pending) == 2
    kinds = [g.get("data-kind") for g in root.iter(f"{NS}g") if (g.get("class") or "").startswith("event")]
    assert kinds.count("timer.set") == 2 and kinds.count("timer.cancel") == 2
    legend = " ".join(t.text or "" for t in root.iter(f"{NS}text"))
    assert "subject's callLater set" in legend and "subject's callLater cancelled" in legend
    # No timers, no lane.
    quiet = run_schedule(semaphore_pool, Schedule((Submit(0, 0, JobSpec("succeed", 20)),)))
    quiet_root = ET.fromstring(timeline_svg(tuple(quiet.trace)))
    assert "timers" not in [t.text for t in quiet_root.iter(f"{NS}text") if t.get("class") == "lane-label"]


def test_a_livelock_records_a_bounded_number_of_timers() -> None:
    import robust_targets

    from harness import TargetHung
    from harness.run.steps import MAX_TIMER_EVENTS

    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(10, 1, JobSpec("succeed", 10))))
    try:
        run_schedule(robust_targets.livelock, schedule, timeout_s=None)
    except TargetHung as hung:
        trace = hung.run.trace
    else:
        raise AssertionError("the livelock was not detected")
    sets = [e for e in trace if e.kind == "timer.set"]
    assert len(sets) == MAX_TIMER_EVENTS
    (limit,) = [i for i, e in enumerate(trace) if e.kind == "timer.limit"]
    assert trace[limit - 1] == sets[-1] and trace[-1].kind == "reactor.livelock"


class TimedPool:
    """Starts each job at once, and sets a watchdog timer in submit() before it does."""

    def __init__(self, clock) -> None:
        self.clock = clock

    def submit(self, job):
        self.clock.callLater(1, lambda: None)
        return defer.maybeDeferred(job)


def test_a_timer_set_in_submit_is_no_wait_for_a_slot() -> None:
    from harness.search.exercised import expose

    run = run_schedule(Target(build=TimedPool), Schedule((Submit(0, 0, JobSpec("succeed", 20)),)))
    kinds = [e.kind for e in run.trace]
    assert kinds[:3] == ["submit", "timer.set", "job.start"]
    root = ET.fromstring(timeline_svg(tuple(run.trace)))
    assert [e for e in root.iter(f"{NS}line") if e.get("class") == "wait"] == []
    assert expose(run.trace).peak_waiting == 0
