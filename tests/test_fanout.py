"""Quorum calls (``fanout``, ``quorum``), both ways (review 5, finding 2).

The zoo (``scenarios.quorum``) is campaigned by ``tests/test_scenarios_time.py``
and the round-5 quorum by ``tests/test_review_round5.py``; here: the
declaration's validation, what each quorum invariant judges on hand-made
schedules, and that each rule the declaration lifts is lifted for the
quorum's own behaviour only (a bug it could hide is still caught, by name).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from harness import (
    CampaignConfig,
    Cancel,
    ClockPolicy,
    JobSpec,
    Schedule,
    Stop,
    Submit,
    Target,
    check,
    load_target,
    run_campaign,
    run_schedule,
)
from harness.invariants import invariants_for
from scenarios.quorum import QuorumRead
from test_hedging import S, fail, names, ok  # the hedging tests' schedule helpers
from zoo_checks import Zoo, assert_refused

QUORUM = "scenarios.quorum"
ROUND5 = "scenarios.review.round5.targets"
FANOUT_NAMES = {"time.fanout_count", "time.fanout_together", "time.quorum_early", "time.quorum_late", "time.fanout_losers"}
ROOT = Path(__file__).resolve().parents[1]


def messages(target: str | Target, schedule: Schedule) -> list[str]:
    target = load_target(target) if isinstance(target, str) else target
    return [f"{v.invariant}: {v.message}" for v in check(run_schedule(target, schedule))]


# -- the declaration -------------------------------------------------------------------------------------


def _build(clock: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"fanout": 0, "quorum": 1}, "Target fanout must be a positive integer or None, got 0"),
        ({"fanout": "3", "quorum": 1}, "Target fanout must be a positive integer or None, got '3'"),
        ({"fanout": 3, "quorum": True}, "Target quorum must be a positive integer or None, got True"),
        ({"fanout": 3}, "Target fanout (3) needs quorum=K"),
        ({"quorum": 2}, "Target quorum (2) is how many copies of a job must succeed in a quorum call: declare fanout=N"),
        ({"fanout": 2, "quorum": 3}, "Target quorum (3) must be at most fanout (2)"),
        ({"fanout": 3, "quorum": 2, "hedge_ms": 100}, "Target fanout starts every copy of a job at once, and hedge_ms"),
        ({"fanout": 3, "quorum": 2, "retries": 1}, "Target fanout starts every copy of a job at once, and retries"),
        ({"fanout": 3, "quorum": 2, "retries_after_answer": True}, "declare one of them"),
        ({"fanout": 3, "quorum": 2, "limit": 2}, "Target limit (2) is below fanout (3)"),
        ({"kind": "periodic", "interval_ms": 100, "fanout": 3, "quorum": 2},
         "Target fanout is a promise about the copies of submitted jobs"),
    ],
)
def test_a_wrong_declaration_is_a_one_line_error_naming_the_field(fields: dict[str, Any], fragment: str) -> None:
    assert_refused(fields, fragment)


def test_the_declaration_switches_on_its_invariants_only() -> None:
    plain = Target(build=_build)
    assert (plain.fanout, plain.quorum) == (None, None)
    assert not FANOUT_NAMES & {inv.name for inv in invariants_for(plain)}
    for spec in ("scenarios.hedge:hedged_call", "scenarios.retry:backoff_retry"):
        assert not FANOUT_NAMES & {inv.name for inv in invariants_for(load_target(spec))}
    assert FANOUT_NAMES <= {inv.name for inv in invariants_for(load_target(f"{QUORUM}:quorum_read"))}
    # The copies may behave otherwise than the first call: the menu draws later-attempt behaviours.
    assert Target(build=_build, fanout=3, quorum=2).default_menu().max_then == 3
    assert Target(build=_build, fanout=3, quorum=2, limit=3).limit == 3


# -- the correct quorums keep the promise on the twins' schedules -----------------------------------------

SCHEDULES = [
    S(Submit(0, 0, JobSpec("immediate"))),
    S(Submit(0, 0, ok(50), then=(ok(10), JobSpec("hang"), ok(30)))),
    S(Submit(0, 0, fail(10), then=(ok(20), fail(30), ok(40)))),
    S(Submit(0, 0, fail(10), then=(fail(20), ok(5), ok(5)))),
    S(Submit(0, 0, JobSpec("raise"), then=(JobSpec("raise"), JobSpec("immediate"), JobSpec("immediate")))),
    S(Submit(0, 0, JobSpec("hang"))),
    S(Submit(0, 0, ok(600), then=(ok(100), ok(450), JobSpec("hang")))),
    S(Submit(0, 0, ok(250)), Cancel(100, 0)),
    S(Submit(0, 0, ok(250)), Stop(100)),
    S(Submit(0, 0, ok(50), then=(ok(10), JobSpec("hang"), ok(30))), clock=ClockPolicy(step_ms=1000)),
    S(Submit(0, 0, ok(50), then=(ok(10), JobSpec("hang"), ok(30))), clock=ClockPolicy(jitter_ms=7, seed=3)),
]


@pytest.mark.parametrize("target", [f"{QUORUM}:quorum_read", f"{ROUND5}:quorum_fanout"])
def test_the_correct_quorums_keep_the_promise(target: str) -> None:
    for schedule in SCHEDULES:
        assert messages(target, schedule) == [], schedule


@pytest.mark.parametrize(
    ("twin", "schedule", "expected"),
    [
        ("quorum_read_waits_for_all", S(Submit(0, 0, ok(10), then=(ok(10), ok(10), ok(200)))), "time.quorum_late"),
        ("quorum_read_waits_for_all", S(Submit(0, 0, ok(10), then=(ok(10), ok(10), JobSpec("hang")))), "time.quorum_late"),
        ("quorum_read_off_by_one", S(Submit(0, 0, ok(10), then=(ok(20), JobSpec("hang")))), "time.quorum_early"),
        ("quorum_read_keeps_losers", S(Submit(0, 0, JobSpec("hang"), then=(JobSpec("immediate"),))), "time.fanout_losers"),
        ("quorum_read_one_too_many", S(Submit(0, 0, JobSpec("hang"))), "time.fanout_count"),
        ("quorum_read_lazy_spares", S(Submit(0, 0, JobSpec("hang"))), "time.fanout_together"),
        ("quorum_read_lazy_spares", S(Submit(0, 0, fail(10), then=(ok(50),))), "time.fanout_together"),
    ],
)
def test_each_twin_is_caught_by_its_invariant(twin: str, schedule: Schedule, expected: str) -> None:
    assert names(f"{QUORUM}:{twin}", schedule)[:1] == [expected]


def test_the_review_quorum_twin_q2_is_caught_by_the_built_in() -> None:
    # Round 5's EagerFailQuorum gives up after n - k failures: a built-in now says so, by name.
    found = messages(f"{ROUND5}:quorum_eager_fail", S(Submit(0, 0, fail(10), then=(ok(20), ok(30)))))
    assert found[0].startswith("time.quorum_early: job 0's caller failed with InjectedError"), found
    assert "1 of its 3 copies had failed, so 2 could still succeed; fanout=3, quorum=2" in found[0]


# -- what the declaration lifts, and only that -------------------------------------------------------------


def test_a_copy_beside_a_success_is_no_retry_but_one_after_the_fan_out_is_caught() -> None:
    immediate = S(Submit(0, 0, JobSpec("immediate")))
    quorum = load_target(f"{ROUND5}:quorum_fanout")
    assert names(quorum, immediate) == []
    undeclared = replace(quorum, fanout=None, quorum=None)
    assert names(undeclared, immediate)[:1] == ["time.retries"]  # without the declaration: finding 2's false alarm

    class CallsAgainLater(QuorumRead):
        """Calls one replica again 50 ms after the fan-out (a "read repair" that re-reads), in a later
        instant: 3 copies at once, the fourth later (the declared fan-out is 4)."""

        fanout = 3

        def _launch(self, job: Any, copies: list, settle: Any, caller: defer.Deferred) -> None:
            super()._launch(job, copies, settle, caller)
            self.clock.callLater(0.05, lambda: defer.maybeDeferred(job).addErrback(lambda _: None))

    again = Target(build=CallsAgainLater, fanout=4, quorum=3)
    assert names(again, S(Submit(0, 0, ok(100))))[:1] == ["time.fanout_together"]
    # After the answer, the same re-read is still time.retries' (nobody waits for that run).
    assert names(again, S(Submit(0, 0, ok(10))))[:1] == ["time.retries"]


def test_a_loser_cancelled_with_the_answer_is_no_early_timeout_but_an_early_cancel_is() -> None:
    schedule = S(Submit(0, 0, ok(10), then=(ok(10), ok(10), JobSpec("hang"))))
    assert names(f"{QUORUM}:quorum_read", schedule) == []

    class SavesWork(QuorumRead):
        """Cancels the copies still running once the first copy succeeded, "to save work", then waits on."""

        def submit(self, job: Any) -> defer.Deferred:
            copies: list[defer.Deferred] = []
            caller = super().submit(lambda: _tracked(job, copies))
            return caller

    def _tracked(job: Any, copies: list[defer.Deferred]) -> Any:
        d = defer.maybeDeferred(job)
        copies.append(d)

        def first(value: Any) -> Any:
            for other in [c for c in copies if c is not d and not c.called][-spare[0]:]:
                other.cancel()
            return value

        return d.addCallback(first)

    spare = [1]  # cancels the last copy still running: the quorum is still reached, later
    saves = Target(build=SavesWork, fanout=4, quorum=3, timeout_ms=400, timeout_from="submit")
    schedule = S(Submit(0, 0, ok(10), then=(ok(50), ok(60), ok(70))))
    found = messages(saves, schedule)
    assert found[:1] == ["time.timeout: job 0 was cancelled at 10ms, only 10ms after it was submitted; the timeout is "
                         "400ms (cancelled in the call settling job 0's work at 10ms)"], found
    spare[0] = 3  # cancels every other copy: the quorum then fails in the cancels' instant, with CancelledError
    assert names(saves, schedule)[:1] == ["time.quorum_early"]  # its own cancels are no replica failures


def test_a_failure_carries_any_copys_error_but_not_another() -> None:
    # The round-5 quorum fails with QuorumFailed carrying the last failure (wraps): the first would do too.
    two_failures = S(Submit(0, 0, fail(10), then=(JobSpec("hang"), fail(20))))
    assert names(f"{ROUND5}:quorum_ok", two_failures) == []
    assert names(f"{QUORUM}:quorum_read", S(Submit(0, 0, fail(10), then=(fail(20), JobSpec("hang"), ok(5))))) == []
    unwrapped = replace(load_target(f"{ROUND5}:quorum_ok"), wraps={})
    found = messages(unwrapped, two_failures)
    assert any(m.startswith("errors.propagate: job 0's Deferred failed with QuorumFailed") and "its copies failed with "
               "InjectedError" in m for m in found), found


def test_the_timeout_error_only_at_the_timeout() -> None:
    one_success = S(Submit(0, 0, ok(500)), clock=ClockPolicy(tie_break="shuffle", seed=59580))
    assert names(f"{ROUND5}:quorum_ok", one_success) == []  # finding 2 (more): one success, then the timeout
    assert names(f"{QUORUM}:quorum_read", S(Submit(0, 0, ok(10), then=(JobSpec("hang"),)))) == []

    class TimesOutEarly(QuorumRead):
        timeout = 0.1  # 100 ms, the target says 400

    early = Target(build=TimesOutEarly, fanout=4, quorum=3, timeout_ms=400, timeout_from="submit")
    assert names(early, S(Submit(0, 0, ok(10), then=(JobSpec("hang"),))))[:1] == ["time.timeout"]


# -- a short campaign of each correct quorum ---------------------------------------------------------------


QUORUMS = Zoo((f"{QUORUM}:quorum_read", f"{ROUND5}:quorum_ok", f"{ROUND5}:quorum_fanout"), ())
test_a_correct_quorum_survives_a_campaign = QUORUMS.clean(seed=5, examples=300, strategies=["mixed", "swarm"])
test_a_correct_quorum_survives_a_long_campaign = QUORUMS.clean(
    seed=11, examples=2000, strategies=["mixed", "random", "swarm", "guided", "pct"], slow=True, counted=False)


def test_the_docs_quorum_keeps_its_promise(tmp_path: Path) -> None:
    import re

    text = (ROOT / "docs" / "reference" / "target.md").read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("## Quorum calls"):], re.S).group(1)  # type: ignore[union-attr]
    namespace: dict[str, Any] = {"Target": Target}
    exec(compile(code, "target.md", "exec"), namespace)
    quorum = namespace["quorum"]
    assert (quorum.fanout, quorum.quorum, quorum.timeout_ms) == (3, 2, 500)
    config = CampaignConfig(seed=3, max_examples=200, report_dir=str(tmp_path), database=None, regressions=None)
    assert run_campaign(quorum, "doc:quorum", config).findings == []
