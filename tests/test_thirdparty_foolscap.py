"""foolscap's Twisted scheduling (``scenarios.thirdparty.foolscap_utils``), both ways.

Each correct target (the ``Reconnector`` retrying a job until it connects, the ``Reconnector`` kept
connected as a backoff loop, and ``fireEventually``'s turn order), written on the global reactor and
tested on the lent one, stays clean over a bounded campaign with every clock fault on, a longer one in
the slow tier (``benchmarks/soak.py --only foolscap_utils`` runs them longer); each twin is caught with
the invariant named in ``EXPECTED``, shrunk and replayed exactly. Also what the glue relies on:
foolscap reaches the global reactor (refused without ``global_reactor="lend"``), jitter 0 draws
nothing from the global ``random``, and the eventual queue a run leaves behind is not the next
run's. The tests skip without foolscap (``pip install -e '.[thirdparty]'``).
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from twisted.internet import task

from harness import Cancel, ClockPolicy, JobSpec, Jump, Schedule, Start, Stop, Submit, check, load_target, run_schedule
from review_campaigns import assert_listed_needing, assert_listed_without, assert_tabled, assert_twin_caught
from review_campaigns import campaign, needs_extra, spec_id
from scenarios.thirdparty import FOOLSCAP, SCENARIOS

CORRECT = tuple(s.target for s in SCENARIOS if s.target.startswith(FOOLSCAP + ":"))

#: The planted twins, the invariant that must catch each, and the schedule a seed-11 campaign shrinks
#: it to (the fast tier runs each there; the slow tier runs the campaigns, with the shrink and replay).
EXPECTED = {
    # Cancelled at 0, while the retry after the first failure pends: it connects at 200ms.
    f"{FOOLSCAP}:reconnector_keeps_timer": ("cancellation.no_start", Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="fail")), Cancel(at_ms=0, job=0)))),
    # The second retry waits min(0.2, 0.3) * 2 = 0.4 s.
    f"{FOOLSCAP}:reconnector_cap_first": ("time.backoff", Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="fail")),))),
    # A failure, then a connection (lost at once): the next attempt waits the grown 200ms, not 100ms.
    f"{FOOLSCAP}:reconnector_loop_no_reset": ("time.backoff", Schedule(ops=(
        Start(at_ms=0, job=0, spec=JobSpec(kind="raise"), then=(JobSpec(kind="succeed"),)), Stop(at_ms=500)))),
    # Two sends in one instant, a timer each: a clock whose calls run up to 5ms late, ties in pct
    # order, starts the second job first (the campaign's clock, found in its fourth example).
    f"{FOOLSCAP}:eventual_timer_per_call": ("concurrency.fifo", Schedule(
        ops=(Submit(at_ms=0, job=0), Submit(at_ms=0, job=1)),
        clock=ClockPolicy(tie_break="pct", depth=3, jitter_ms=5, seed=20965))),
    # A call answered at 440ms: the first check, at 400ms, let it live on.
    f"{FOOLSCAP}:idle_drop_lenient": ("time.timeout", Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=440)),))),
}

#: foolscap's own bug (24.9.0): the invariant a campaign reports first, and the exact schedule it
#: shrinks to with every invariant that schedule breaks.
FINDINGS = {
    # The wall clock steps back 930ms as the call goes out: unanswered, it is dropped at 1.6 s, not 0.4 s.
    f"{FOOLSCAP}:idle_drop_wall_clock": ("time.timeout", Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="hang")), Jump(at_ms=0, delta_ms=-930))), {"time.timeout"}),
}

#: The correct target each twin is planted in.
CORRECT_OF = {
    f"{FOOLSCAP}:reconnector_keeps_timer": f"{FOOLSCAP}:reconnector",
    f"{FOOLSCAP}:reconnector_cap_first": f"{FOOLSCAP}:reconnector",
    f"{FOOLSCAP}:reconnector_loop_no_reset": f"{FOOLSCAP}:reconnector_loop",
    f"{FOOLSCAP}:eventual_timer_per_call": f"{FOOLSCAP}:eventual_fifo",
    f"{FOOLSCAP}:idle_drop_lenient": f"{FOOLSCAP}:idle_drop",
    f"{FOOLSCAP}:idle_drop_wall_clock": f"{FOOLSCAP}:idle_drop",
}

needs_foolscap = needs_extra("foolscap", CORRECT)

#: A job whose first two attempts fail and the third succeeds.
FAILING_TWICE = Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind="fail"),
                                     then=(JobSpec(kind="fail"), JobSpec(kind="succeed"))),))


# --- the catalogue (no foolscap needed) ----------------------------------------------------------------


def test_the_correct_targets_are_listed_as_passing_scenarios_needing_foolscap() -> None:
    assert_listed_needing(CORRECT, ["reconnector", "reconnector_loop", "eventual_fifo", "idle_drop"], "foolscap")


def test_the_scenarios_page_tables_every_target_twin_and_finding() -> None:
    assert_tabled(CORRECT, [*EXPECTED, *FINDINGS])


def test_without_foolscap_list_works_and_loading_says_what_to_install() -> None:
    assert_listed_without("foolscap", FOOLSCAP, f"{FOOLSCAP}:reconnector")


# --- both ways, fast tier ------------------------------------------------------------------------------


@needs_foolscap
@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_correct_target_stays_clean(spec: str, tmp_path) -> None:
    result = campaign(spec, seed=11, examples=150, tmp_path=tmp_path, all_faults=True)
    assert [f.record.message for f in result.findings] == []
    assert result.error is None and result.examples == 150


@needs_foolscap
@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_twin_is_caught_at_its_shrunk_schedule(spec: str) -> None:
    invariant, schedule = EXPECTED[spec]
    assert [v.invariant for v in check(run_schedule(load_target(spec), schedule))] == [invariant]
    # The same schedule on the correct target breaks nothing.
    assert check(run_schedule(load_target(CORRECT_OF[spec]), schedule)) == []


@needs_foolscap
@pytest.mark.parametrize("spec", sorted(FINDINGS), ids=spec_id)
def test_foolscap_bug_at_its_shrunk_schedule(spec: str) -> None:
    _, schedule, broken = FINDINGS[spec]
    assert {v.invariant for v in check(run_schedule(load_target(spec), schedule))} == broken
    assert check(run_schedule(load_target(CORRECT_OF[spec]), schedule)) == []


@needs_foolscap
def test_the_reconnector_backs_off_as_declared() -> None:
    """A job failing twice: attempts at 0, 200ms (0.1 * 2) and 500ms (+ min(0.4, 0.3)), on the lent
    reactor; the cap-first twin waits 400ms for its second retry, and is caught by ``time.backoff``."""
    run = run_schedule(load_target(f"{FOOLSCAP}:reconnector"), FAILING_TWICE)
    assert check(run) == []
    assert [a.start_us for a in run.view.jobs[0].attempts] == [0, 200_000, 500_000]
    twin = run_schedule(load_target(f"{FOOLSCAP}:reconnector_cap_first"), FAILING_TWICE)
    assert [a.start_us for a in twin.view.jobs[0].attempts] == [0, 200_000, 600_000]
    assert [v.invariant for v in check(twin)] == ["time.backoff"]


@needs_foolscap
def test_foolscap_reaches_the_global_reactor_so_the_targets_borrow_it() -> None:
    """Declared ``global_reactor="refuse"``, the same target's run ends with an error naming the
    global reactor: foolscap takes no clock."""
    target = dataclasses.replace(load_target(f"{FOOLSCAP}:reconnector"), global_reactor="refuse")
    with pytest.raises(Exception, match="global reactor"):
        check(run_schedule(target, FAILING_TWICE))


@needs_foolscap
def test_jitter_zero_draws_nothing_from_the_global_random() -> None:
    """foolscap draws its jitter from the global ``random`` (``normalvariate``); at jitter 0 it draws
    nothing, so the run neither reads nor moves the process's random state. With the default jitter
    it does: the reason the targets declare 0."""
    from foolscap.reconnector import Reconnector

    from scenarios.thirdparty.foolscap_utils import Reconnecting

    state = random.getstate()
    run_schedule(load_target(f"{FOOLSCAP}:reconnector"), FAILING_TWICE)
    assert random.getstate() == state
    assert Reconnecting.jitter == 0 and Reconnector.jitter > 0


@needs_foolscap
def test_a_queue_turn_left_pending_stalls_every_later_eventually_so_build_resets_it() -> None:
    """In plain Twisted: ``eventually`` schedules a turn only when none is pending, so a turn timer left
    on a clock that never runs again (a finished run's) holds every later call. ``build`` gives
    ``foolscap.eventual`` a fresh queue, and the next run's jobs start."""
    import foolscap.eventual as eventual

    from scenarios.thirdparty.foolscap_utils import Eventual

    old_queue, old_reactor = eventual._theSimpleQueue, eventual.reactor
    try:
        dead, live = task.Clock(), task.Clock()
        eventual._theSimpleQueue = eventual._SimpleCallQueue()
        eventual.reactor = dead
        eventual.eventually(lambda: None)  # its turn pends on a clock that never advances
        eventual.reactor = live
        fired: list[int] = []
        eventual.fireEventually(1).addCallback(fired.append)
        live.advance(1)
        assert fired == [] and live.getDelayedCalls() == []
        Eventual(live)
        eventual.fireEventually(2).addCallback(fired.append)
        live.advance(0)
        assert fired == [2]
    finally:
        eventual._theSimpleQueue, eventual.reactor = old_queue, old_reactor


@needs_foolscap
def test_eventual_runs_jobs_in_the_order_sent() -> None:
    """Three jobs sent at 0 start in a later turn (not inside submit), in order."""
    schedule = Schedule(ops=tuple(Submit(at_ms=0, job=n, spec=JobSpec(kind="succeed")) for n in range(3)))
    run = run_schedule(load_target(f"{FOOLSCAP}:eventual_fifo"), schedule)
    assert check(run) == []
    starts = sorted((e.t_us, i, e.job) for i, e in run.view.of_kind("job.start"))
    assert [job for _, _, job in starts] == [0, 1, 2]


# --- the bug in plain Twisted ------------------------------------------------------------------------------


class SteppingWall:
    """A wall clock that runs with ``clock`` and can be stepped (``time.time()`` under NTP)."""

    def __init__(self, clock: task.Clock) -> None:
        self.clock, self.offset = clock, 0.0

    def time(self) -> float:
        return self.clock.seconds() + self.offset


@needs_foolscap
@pytest.mark.parametrize(("data", "step_s", "dropped_at"), [(True, 0, 0.8), (True, 1.0, 0.4), (False, -0.93, 1.6)])
def test_the_idle_age_on_the_wall_clock_in_plain_twisted(data: bool, step_s: float, dropped_at: float) -> None:
    """foolscap's ``Banana(disconnectTimeout=0.3)`` on a ``task.Clock`` (timers that do not step) with
    ``time.time()`` a wall clock stepped by ``step_s`` at 0.35 s, just after the peer's data when
    ``data``. Unstepped, the check at 0.4 s sees 50ms of idleness and the one at 0.8 s drops. Stepped
    forward 1 s, the check at 0.4 s drops a connection that heard from its peer 50ms before. With no
    data and a step back of 930ms, the drop waits for the check at 1.6 s, not 0.4 s."""
    import foolscap.banana as banana
    import foolscap.tokens as tokens
    from twisted.internet.testing import StringTransport

    clock = task.Clock()
    wall = SteppingWall(clock)
    old_reactor, old_time = banana.reactor, banana.time
    dropped: list[float] = []
    try:
        banana.reactor, banana.time = clock, wall

        class Conn(banana.Banana):  # type: ignore[misc]
            def connectionTimedOut(self) -> None:
                dropped.append(clock.seconds())
                self.connectionLost(None)

        conn = Conn()
        conn.disconnectTimeout = 0.3
        conn.makeConnection(StringTransport())
        clock.advance(0.35)
        if data:
            conn.dataReceived(tokens.PONG)
        wall.offset += step_s
        for k in range(1, 200):  # to 2.34 s, 10ms at a time (the drop is seen within 10ms)
            clock.advance(round(0.35 + k / 100, 2) - clock.seconds())
        assert dropped == [pytest.approx(dropped_at, abs=0.011)]
    finally:
        banana.reactor, banana.time = old_reactor, old_time


# --- long campaigns, slow tier ------------------------------------------------------------------------


@pytest.mark.slow
@needs_foolscap
@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_correct_target_stays_clean_over_a_long_campaign(spec: str, tmp_path) -> None:
    result = campaign(spec, seed=3, examples=300, tmp_path=tmp_path, all_faults=True)
    assert [f.record.message for f in result.findings] == []


@pytest.mark.slow
@needs_foolscap
@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_twin_is_caught_and_shrunk_to_its_schedule(spec: str, tmp_path) -> None:
    """A seed-11 campaign finds each twin with its invariant alone and shrinks it to the operations the
    fast tier runs (the same operations at the same times; the jobs' error names and the clock policy
    are the campaign's)."""
    invariant, schedule = EXPECTED[spec]
    result = campaign(spec, seed=11, examples=3000, tmp_path=tmp_path)
    [finding] = result.findings
    assert finding.record.invariant == invariant and finding.shrunk
    assert [(type(op), op.at_ms) for op in finding.record.schedule.ops] == [(type(op), op.at_ms) for op in schedule.ops]


@pytest.mark.slow
@needs_foolscap
@pytest.mark.parametrize("spec", sorted(FINDINGS), ids=spec_id)
def test_foolscap_bug_is_caught_shrunk_and_replayed_exactly(spec: str, tmp_path) -> None:
    """A campaign finds foolscap's bug as it finds a planted twin, shrinks it, and ``harness replay``
    reproduces the saved failure exactly."""
    assert_twin_caught(spec, FINDINGS[spec][0], tmp_path)
