"""autobahn's Twisted timers (``scenarios.thirdparty.autobahn_utils``), both ways.

Each correct target (the WAMP ``Component``'s transport retry, bounded and forever, and the
WebSocket auto-ping over an in-memory transport, declaring what autobahn documents) stays clean over
a bounded campaign, a longer one in the slow tier (``benchmarks/soak.py --only autobahn_utils`` runs
them with every clock fault on); each twin is caught with the invariant named in ``EXPECTED``, shrunk
and replayed exactly. The two bugs found in autobahn 26.11.1 are caught the same way (``FINDINGS``),
at their exact shrunk schedules, and shown in plain Twisted (``task.Clock``, no harness). Also the
harness's false alarm the retry target met (``time.backoff`` held a job's retry reached through two
timers in a row to one timer's lateness). The tests skip without autobahn
(``pip install -e '.[thirdparty]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import defer, task

from harness import Cancel, JobSpec, Schedule, Submit, check, load_target, run_schedule
from review_campaigns import assert_listed_needing, assert_listed_without, assert_tabled, assert_twin_caught
from review_campaigns import campaign, needs_extra, spec_id
from scenarios.thirdparty import AUTOBAHN, SCENARIOS

CORRECT = tuple(s.target for s in SCENARIOS if s.target.startswith(AUTOBAHN + ":"))

#: The planted twins and the invariant that must catch each: one of each kind in the fast tier, the
#: others in the slow one (each costs a shrink and a replay in a subprocess).
EXPECTED = {
    f"{AUTOBAHN}:component_retry_cap_first": "time.backoff",
    f"{AUTOBAHN}:auto_ping_peer_ignores_close": "time.timeout",
}
EXPECTED_SLOW = {
    f"{AUTOBAHN}:component_retry_one_more": "errors.escaped",
    f"{AUTOBAHN}:component_retry_forever_cap_first": "time.backoff",
}

#: autobahn's own bugs (26.11.1): the invariant a campaign reports first, and the exact schedule it
#: shrinks to with every invariant that schedule breaks.
FINDINGS = {
    # Stopped while its first attempt connects (the cancel lands after the round that started it), the
    # component connects again 200ms later.
    f"{AUTOBAHN}:component_stop_while_connecting": ("cancellation.no_start", Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed")),
        Cancel(at_ms=0, job=0, after_rounds=1),
    )), {"cancellation.no_start"}),
    # autobahn's 0.2 s batched timer truncates to whole seconds: the ping due at 100ms goes at 0, and
    # its 300ms timeout fires at once, dropping the peer before it could answer.
    f"{AUTOBAHN}:auto_ping_batched": ("time.timeout", Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed")),
    )), {"time.timeout"}),
}

needs_autobahn = needs_extra("autobahn", CORRECT)


# --- the catalogue (no autobahn needed) ----------------------------------------------------------------


def test_the_correct_targets_are_listed_as_passing_scenarios_needing_autobahn() -> None:
    assert_listed_needing(CORRECT, ["component_retry", "component_retry_forever", "auto_ping"], "autobahn")


def test_the_scenarios_page_tables_every_target_twin_and_finding() -> None:
    assert_tabled(CORRECT, [*EXPECTED, *EXPECTED_SLOW, *FINDINGS])


def test_without_autobahn_list_works_and_loading_says_what_to_install() -> None:
    assert_listed_without("autobahn", AUTOBAHN, f"{AUTOBAHN}:auto_ping")


# --- both ways, fast tier ------------------------------------------------------------------------------


@needs_autobahn
@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_correct_target_stays_clean(spec: str, tmp_path) -> None:
    result = campaign(spec, seed=11, examples=60, tmp_path=tmp_path, all_faults=True)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 60


@needs_autobahn
@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_twin_is_caught_shrunk_and_replayed_exactly(spec: str, tmp_path) -> None:
    assert_twin_caught(spec, EXPECTED[spec], tmp_path)


@needs_autobahn
@pytest.mark.parametrize("spec", sorted(FINDINGS), ids=spec_id)
def test_autobahn_bug_at_its_shrunk_schedule(spec: str) -> None:
    _, schedule, broken = FINDINGS[spec]
    assert {v.invariant for v in check(run_schedule(load_target(spec), schedule))} == broken


@needs_autobahn
@pytest.mark.parametrize(("kind", "gaps_ms", "outcome"), [
    ("raise", [200, 300], "InjectedError"),  # three attempts, 0.2 s then 0.4 s capped at 0.3 s apart
    ("succeed", [], "job0.0"),
])
def test_component_retry_delays_and_outcomes(kind: str, gaps_ms: list[int], outcome: str) -> None:
    """The first attempt at once, each retry ``min(0.1 * 2**k, 0.3)`` s after the failed one; the
    caller gets the job's value, or, once ``max_retries`` is spent, the last connect error (not
    autobahn's "Exhausted all transport connect attempts")."""
    run = run_schedule(load_target(f"{AUTOBAHN}:component_retry"), Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind=kind)),)))
    assert check(run) == []
    job = run.view.jobs[0]
    assert [(b.start_us - a.end_us) // 1000 for a, b in zip(job.attempts, job.attempts[1:])] == gaps_ms
    assert job.received is not None and outcome in f"{job.received.value} {job.received.error}"


@needs_autobahn
@pytest.mark.parametrize(("kind", "outcome", "at_ms"), [("succeed", "job0.0", 150), ("hang", "PeerTimedOut", 400),
                                                        ("fail", "InjectedError", 150)])
def test_each_outcome_of_a_ping_reaches_the_caller(kind: str, outcome: str, at_ms: int) -> None:
    """The ping goes at 100 ms and runs the peer's job (50 ms): its success is the pong, its failure
    a close carrying the error; a peer that never answers is dropped at 400 ms, the job cancelled."""
    schedule = Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind=kind, after_ms=50)),))
    run = run_schedule(load_target(f"{AUTOBAHN}:auto_ping"), schedule)
    assert check(run) == []
    job = run.view.jobs[0]
    assert job.attempts[0].start_us == 100_000
    assert job.received is not None and outcome in f"{job.received.value} {job.received.error}"
    assert job.received.t_us == at_ms * 1000


@needs_autobahn
def test_a_retry_reached_through_two_late_timers_is_no_backoff_violation() -> None:
    """The harness's false alarm on ``component_retry_forever`` (seed 11, 21 examples): the retry
    goes through ``callLater(0, transport_check)`` and then ``txaio.sleep(0.3)``; here the first hop
    ran a stride late (an operation landed between the rounds of 530 ms) and the sleep another, 320 ms
    after the failed attempt. ``time.backoff`` allowed a job's retry one timer's lateness (a backoff
    loop's, the chain's): it now allows the chain's for both."""
    schedule = Schedule.from_json({
        "clock": {"jitter_ms": 5, "seed": 6637, "step_ms": 10, "tie_break": "fifo"}, "format": "harness-schedule",
        "version": 3, "ops": [
            {"at": 0, "job": 0, "op": "submit", "priority": 0,
             "spec": {"after_ms": 0, "canceller_raises": False, "error": "InjectedError", "kind": "raise"}},
            {"after_rounds": 1, "at": 530, "job": 1, "op": "submit", "priority": 0,
             "spec": {"after_ms": 0, "canceller_raises": False, "error": "RuntimeError", "kind": "succeed"}}]})
    run = run_schedule(load_target(f"{AUTOBAHN}:component_retry_forever"), schedule)
    second, third = run.view.jobs[0].attempts[2:4]
    assert (third.start_us - second.end_us, second.end_us) == (320_000, 530_000)
    assert check(run) == []


# --- the bugs in plain Twisted ------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Iterator[task.Clock]:
    """txaio's loop set to a ``task.Clock`` for the test (``txaio.testutil.replace_loop``)."""
    import txaio
    from txaio.testutil import replace_loop

    txaio.use_twisted()
    with replace_loop(task.Clock()) as fake:
        yield fake


@needs_autobahn
def test_a_component_stopped_while_connecting_connects_again_in_plain_twisted(clock: task.Clock) -> None:
    """``Component.stop()`` while a connect is in flight: ``start()``'s Deferred fires, but when the
    attempt then fails (refused), the component sleeps its retry delay and connects again."""
    from autobahn.twisted.component import Component
    from twisted.internet.error import ConnectionRefusedError
    from twisted.internet.interfaces import IStreamClientEndpoint
    from zope.interface import implementer

    attempts: list[defer.Deferred[Any]] = []

    @implementer(IStreamClientEndpoint)
    class Slow:
        def connect(self, factory: object) -> defer.Deferred[Any]:
            attempts.append(defer.Deferred())
            return attempts[-1]

    component = Component(transports=[{"type": "websocket", "url": "ws://x.example/ws", "endpoint": Slow(),
                                       "max_retries": 2, "initial_retry_delay": 0.1, "retry_delay_jitter": 0}],
                          realm="r")
    done: list[object] = []
    component.start(clock).addBoth(done.append)
    clock.advance(0)
    assert len(attempts) == 1
    component.stop()
    assert done == [None]  # stopped, says start()'s Deferred
    attempts[0].errback(ConnectionRefusedError())
    clock.advance(0)
    clock.advance(0.2)  # the retry delay: 0.1 * 1.5 (the default growth)
    assert len(attempts) == 2  # ... and it connects again


@needs_autobahn
def test_a_subsecond_auto_ping_timeout_drops_a_live_peer_at_once_in_plain_twisted(clock: task.Clock) -> None:
    """``autoPingInterval=0.1, autoPingTimeout=0.3`` on autobahn's own factory: the ping due at 0.1 s
    goes at once, and its timeout fires in the same instant, before the peer's pong can arrive: the
    server drops a peer that answers every ping (autobahn's default ``onPing``)."""
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from twisted.test import iosim

    closed: list[tuple[float, str]] = []
    server_factory = WebSocketServerFactory("ws://x.example/ws", reactor=clock)
    server_factory.protocol = WebSocketServerProtocol
    server_factory.setProtocolOptions(autoPingInterval=0.1, autoPingTimeout=0.3)
    server = server_factory.buildProtocol(None)
    server.onClose = lambda clean, code, reason: closed.append((clock.seconds(), server.wasNotCleanReason))
    client_factory = WebSocketClientFactory("ws://x.example/ws", reactor=clock)
    client_factory.protocol = WebSocketClientProtocol
    client = client_factory.buildProtocol(None)
    pump = iosim.connect(server, iosim.FakeTransport(server, isServer=True), client,
                         iosim.FakeTransport(client, isServer=False), greet=False)
    pump.flush(advanceClock=False)  # the opening handshake
    assert server.state == server.STATE_OPEN
    clock.advance(0)
    pump.flush(advanceClock=False)
    assert closed and closed[0][0] == 0 and "ping timeout" in closed[0][1], closed


# --- long campaigns, slow tier ------------------------------------------------------------------------


@pytest.mark.slow
@needs_autobahn
@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_correct_target_stays_clean_over_a_long_campaign(spec: str, tmp_path) -> None:
    # Retrying forever, a job that always fails runs until the run's horizon: fewer examples.
    examples = 100 if spec.endswith(":component_retry_forever") else 300
    result = campaign(spec, seed=3, examples=examples, tmp_path=tmp_path, all_faults=True)
    assert [f.record.message for f in result.findings] == []


@pytest.mark.slow
@needs_autobahn
@pytest.mark.parametrize("spec", sorted(EXPECTED_SLOW), ids=spec_id)
def test_twin_is_caught_shrunk_and_replayed_exactly_slow(spec: str, tmp_path) -> None:
    assert_twin_caught(spec, EXPECTED_SLOW[spec], tmp_path)


@pytest.mark.slow
@needs_autobahn
@pytest.mark.parametrize("spec", sorted(FINDINGS), ids=spec_id)
def test_autobahn_bug_is_caught_shrunk_and_replayed_exactly(spec: str, tmp_path) -> None:
    assert_twin_caught(spec, FINDINGS[spec][0], tmp_path)
