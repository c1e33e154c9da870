"""txaio's Twisted scheduling (``scenarios.thirdparty.txaio_utils``), both ways.

Each correct target (``make_batched_timer`` with and without chunks, ``sleep``, ``gather``, declaring
what txaio documents) stays clean over a bounded campaign, a longer one in the slow tier
(``benchmarks/soak.py --only txaio_utils`` runs them with every clock fault on); each twin is caught
with the invariant named in ``EXPECTED``, shrunk and replayed exactly. The two bugs found in txaio
26.6.1 are caught the same way (``FINDINGS``), at their exact shrunk schedules, and shown in plain
Twisted (``task.Clock``, no harness). The tests skip without txaio (``pip install -e '.[thirdparty]'``).
"""

from __future__ import annotations

import pytest
from twisted.internet import task

from harness import Cancel, JobSpec, Schedule, Submit, check, load_target, run_schedule
from review_campaigns import assert_listed_needing, assert_listed_without, assert_tabled, assert_twin_caught
from review_campaigns import campaign, needs_extra, spec_id
from scenarios.thirdparty import SCENARIOS, TXAIO

CORRECT = tuple(s.target for s in SCENARIOS if s.target.startswith(TXAIO + ":"))

#: The planted twins and the invariant that must catch each.
EXPECTED = {
    f"{TXAIO}:batched_timer_bucket_kept": "errors.escaped",
    f"{TXAIO}:sleep_swallowing_cancel": "cancellation.fires",
    f"{TXAIO}:gather_unconsumed": "errors.unhandled",
}

#: txaio's own bugs (txaio 26.6.1), caught as the planted twins are: the invariant a campaign
#: reports first, and the exact schedule it shrinks to with every invariant that schedule breaks.
FINDINGS = {
    # A cancelled call waiting for a later chunk runs anyway: the job starts after the cancel, and
    # its result reaches the caller's Deferred, which the cancel already fired.
    f"{TXAIO}:batched_timer_chunked_cancel": ("completion.once", Schedule(ops=(
        *(Submit(at_ms=0, job=n, spec=JobSpec(kind="succeed")) for n in range(3)),
        Cancel(at_ms=1000, job=2),
    )), {"completion.once", "cancellation.no_start"}),
    # Buckets truncated to whole seconds: called at 0 for 1.5 s, it fires at 1 s, not at 1.4 s.
    f"{TXAIO}:batched_timer_subsecond": ("user.fires_in_its_bucket", Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed")),
    )), {"user.fires_in_its_bucket"}),
}

needs_txaio = needs_extra("txaio", CORRECT)


# --- the catalogue (no txaio needed) -----------------------------------------------------------------


def test_the_correct_targets_are_listed_as_passing_scenarios_needing_txaio() -> None:
    assert_listed_needing(CORRECT, ["batched_timer", "batched_timer_chunked", "sleep_then_run", "gather_with_sleep"],
                          "txaio")


def test_the_scenarios_page_tables_every_target_twin_and_finding() -> None:
    assert_tabled(CORRECT, [*EXPECTED, *FINDINGS])


def test_without_txaio_list_works_and_loading_says_what_to_install() -> None:
    assert_listed_without("txaio", TXAIO, f"{TXAIO}:batched_timer")


# --- both ways, fast tier ------------------------------------------------------------------------------


@needs_txaio
@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_correct_target_stays_clean(spec: str, tmp_path) -> None:
    result = campaign(spec, seed=11, examples=200, tmp_path=tmp_path, all_faults=True)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 200


@needs_txaio
@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_twin_is_caught_shrunk_and_replayed_exactly(spec: str, tmp_path) -> None:
    assert_twin_caught(spec, EXPECTED[spec], tmp_path)


@needs_txaio
@pytest.mark.parametrize("spec", sorted(FINDINGS), ids=spec_id)
def test_txaio_bug_at_its_shrunk_schedule(spec: str) -> None:
    _, schedule, broken = FINDINGS[spec]
    assert {v.invariant for v in check(run_schedule(load_target(spec), schedule))} == broken


@needs_txaio
def test_the_chunked_timer_is_clean_without_cancels_at_the_findings_schedule() -> None:
    """The same three calls, uncancelled, on the catalogued chunked target: two at 1 s, the third
    in the second chunk, half a bucket later; nothing broken."""
    schedule = Schedule(ops=tuple(Submit(at_ms=0, job=n, spec=JobSpec(kind="succeed")) for n in range(3)))
    run = run_schedule(load_target(f"{TXAIO}:batched_timer_chunked"), schedule)
    assert check(run) == []
    assert sorted(job.attempts[0].start_us for job in run.view.jobs.values()) == [1_000_000, 1_000_000, 1_500_000]


@needs_txaio
@pytest.mark.parametrize(("delay_s", "message"), [(0.4, "before its 1000ms bucket opened at 1000ms"),
                                                  (3.0, "after its bucket [1000ms, 2000ms)")])
def test_fires_in_its_bucket_catches_a_call_early_or_late(delay_s: float, message: str) -> None:
    """Mutants of ``batched_timer`` calling for 0.4 s or 3 s where 1.5 s is promised: called at 0,
    the job is due in the bucket from 1 s; it starts at 0 (early) or at 3 s (late)."""
    from harness import Target

    from scenarios.thirdparty.txaio_utils import Batched, fires_in_its_bucket

    class Mistimed(Batched):
        pass

    Mistimed.delay_s = delay_s
    target = Target(build=Mistimed, invariants=(fires_in_its_bucket,), description="mistimed")
    [violation] = check(run_schedule(target, Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed")),))))
    assert violation.invariant == "user.fires_in_its_bucket" and message in violation.message, violation.message


# --- the bugs in plain Twisted ------------------------------------------------------------------------------


@pytest.fixture
def clock() -> task.Clock:
    """txaio's loop set to a ``task.Clock`` for the test (``txaio.testutil.replace_loop``)."""
    import txaio
    from txaio.testutil import replace_loop

    txaio.use_twisted()
    with replace_loop(task.Clock()) as fake:
        yield fake


@needs_txaio
def test_a_subsecond_bucket_fires_early_in_plain_twisted(clock: task.Clock) -> None:
    """``make_batched_timer(0.2)`` (autobahn's): ``call_later(0.3)`` made at 0.5 s fires at once, and
    ``call_later(1.5)`` made at 0 fires at 1 s, not in its 200 ms bucket from 1.4 s. With 1 s buckets
    (``batched_timer``) the same calls land in their buckets."""
    import txaio

    fired: list[tuple[str, float]] = []
    timer = txaio.make_batched_timer(0.2)
    timer.call_later(1.5, lambda: fired.append(("1.5 at 0", clock.seconds())))
    clock.advance(0.5)
    timer.call_later(0.3, lambda: fired.append(("0.3 at 0.5", clock.seconds())))
    clock.advance(0)
    assert fired == [("0.3 at 0.5", 0.5)]
    clock.advance(0.5)
    assert fired[1:] == [("1.5 at 0", 1.0)]


@needs_txaio
def test_a_cancelled_call_in_a_later_chunk_runs_anyway_in_plain_twisted(clock: task.Clock) -> None:
    """``make_batched_timer(1, chunk_size=2)``, four calls for 2 s: the first chunk runs at 2 s, and
    the fourth call, cancelled then, still runs with the second chunk half a bucket later."""
    import txaio

    fired: list[int] = []
    timer = txaio.make_batched_timer(1, chunk_size=2)
    calls = [timer.call_later(2, fired.append, n) for n in range(4)]
    clock.advance(2)
    assert fired == [0, 1]
    calls[3].cancel()  # no error, no effect: the bucket is gone, taken for one already done
    clock.advance(0.5)
    assert fired == [0, 1, 2, 3]
    # Cancelled before its bucket fires, the same call is dropped.
    fired.clear()
    calls = [timer.call_later(2, fired.append, n) for n in range(4)]
    calls[3].cancel()
    clock.pump([0.5] * 6)
    assert fired == [0, 1, 2]


# --- long campaigns, slow tier ------------------------------------------------------------------------


@pytest.mark.slow
@needs_txaio
@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_correct_target_stays_clean_over_a_long_campaign(spec: str, tmp_path) -> None:
    result = campaign(spec, seed=3, examples=1000, tmp_path=tmp_path, all_faults=True)
    assert [f.record.message for f in result.findings] == []


@pytest.mark.slow
@needs_txaio
@pytest.mark.parametrize("spec", sorted(FINDINGS), ids=spec_id)
def test_txaio_bug_is_caught_shrunk_and_replayed_exactly(spec: str, tmp_path) -> None:
    """A campaign finds each bug as it finds a planted twin (slow tier: about 300 examples for the
    chunked cancel; the fast tier runs each at its shrunk schedule)."""
    assert_twin_caught(spec, FINDINGS[spec][0], tmp_path)
