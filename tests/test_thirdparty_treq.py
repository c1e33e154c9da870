"""treq's request timeout over ``StubTreq`` (``scenarios.thirdparty.treq_utils``), both ways.

The correct target (``timeout=0.3``, declaring what ``treq.request`` documents) stays clean over a
bounded campaign, a longer one in the slow tier (``benchmarks/soak.py --only treq_utils`` runs it
with every clock fault on); its twin (a resource that never watches ``notifyFinish()``) is caught by
``time.timeout``, shrunk and replayed exactly. The timeout itself is shown in plain Twisted
(``task.Clock``, no harness), with the error it really raises. The tests skip without treq
(``pip install -e '.[thirdparty]'``).
"""

from __future__ import annotations

import pytest
from twisted.internet import defer, task

from harness import JobSpec, Schedule, Submit, check, load_target, run_schedule
from review_campaigns import assert_listed_needing, assert_listed_without, assert_tabled, assert_twin_caught
from review_campaigns import campaign, needs_extra, spec_id
from scenarios.thirdparty import SCENARIOS, TREQ

CORRECT = tuple(s.target for s in SCENARIOS if s.target.startswith(TREQ + ":"))

#: The twin and the invariant that must catch it.
EXPECTED = {f"{TREQ}:request_timeout_server_ignores_abort": "time.timeout"}

needs_treq = needs_extra("treq", CORRECT)


def test_the_correct_target_is_listed_as_a_passing_scenario_needing_treq() -> None:
    assert_listed_needing(CORRECT, ["request_timeout"], "treq")


def test_the_scenarios_page_tables_the_target_and_its_twin() -> None:
    assert_tabled(CORRECT, EXPECTED)


def test_without_treq_list_works_and_loading_says_what_to_install() -> None:
    assert_listed_without("treq", TREQ, f"{TREQ}:request_timeout")


@needs_treq
def test_correct_target_stays_clean(tmp_path) -> None:
    result = campaign(CORRECT[0], seed=11, examples=100, tmp_path=tmp_path, all_faults=True)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 100


@needs_treq
@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_twin_is_caught_shrunk_and_replayed_exactly(spec: str, tmp_path) -> None:
    assert_twin_caught(spec, EXPECTED[spec], tmp_path)


@needs_treq
@pytest.mark.parametrize(("kind", "outcome"), [("succeed", "job0.0"), ("hang", "CancelledError"), ("fail", "InjectedError")])
def test_each_outcome_reaches_the_caller_over_http(kind: str, outcome: str) -> None:
    """A job of 100 ms: its value is the body; hanging, the request is aborted at 300 ms with
    ``CancelledError`` (the job cancelled); failing, its own error comes back through the 500."""
    schedule = Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind=kind, after_ms=100)),))
    run = run_schedule(load_target(f"{TREQ}:request_timeout"), schedule)
    assert check(run) == []
    received = run.view.jobs[0].received
    assert received is not None and outcome in f"{received.value} {received.error}"
    assert received.t_us == (300_000 if kind == "hang" else 100_000)


@needs_treq
def test_the_timeout_in_plain_twisted() -> None:
    """``StubTreq(...).get(url, timeout=1, reactor=clock)`` against a resource that never answers:
    at 1 s the caller fails with ``ResponseNeverReceived`` carrying ``CancelledError`` (treq's docs
    say the connection "is aborted with CancelledError"), and, once flushed, the server sees the
    connection lost."""
    from treq.testing import StubTreq
    from twisted.web._newclient import ResponseNeverReceived
    from twisted.web.resource import Resource
    from twisted.web.server import NOT_DONE_YET

    lost: list[object] = []

    class Silent(Resource):
        isLeaf = True

        def render_GET(self, request: object) -> object:
            request.notifyFinish().addErrback(lost.append)  # type: ignore[attr-defined]
            return NOT_DONE_YET

    clock = task.Clock()
    stub = StubTreq(Silent())
    got: list[object] = []
    stub.get("http://x.example/", timeout=1, reactor=clock).addBoth(got.append)
    stub.flush()
    clock.advance(0.999)
    assert got == []
    clock.advance(0.001)
    [failure] = got
    assert failure.check(ResponseNeverReceived)  # type: ignore[attr-defined]
    assert [r.type for r in failure.value.reasons] == [defer.CancelledError]  # type: ignore[attr-defined]
    assert lost == []
    stub.flush()
    assert len(lost) == 1 and clock.getDelayedCalls() == []


@pytest.mark.slow
@needs_treq
def test_correct_target_stays_clean_over_a_long_campaign(tmp_path) -> None:
    result = campaign(CORRECT[0], seed=3, examples=300, tmp_path=tmp_path, all_faults=True)
    assert [f.record.message for f in result.findings] == []
