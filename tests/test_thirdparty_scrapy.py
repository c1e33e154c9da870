"""Scrapy's Twisted scheduling code (``scenarios.thirdparty.scrapy_utils``), both ways.

Each correct target (Scrapy's ``Downloader`` slots and download delay, ``CallLaterOnce`` and
``parallel``/``parallel_async``, declaring what Scrapy documents) stays clean over a bounded
campaign, a longer one in the slow tier (``benchmarks/soak.py --only scrapy_utils`` runs them with
every clock fault on); each twin is caught with the invariant named in ``EXPECTED``, shrunk and
replayed exactly. The glue that puts Scrapy on the run's clock is shown in plain Twisted
(``task.Clock``, no harness: the global reactor's ``callLater`` and ``seconds`` pointed at it by
hand, what the targets' ``global_reactor="lend"`` does in a run), and so is the
``CallLaterOnce.cancel()`` behaviour one twin trips on. The tests skip without Scrapy (``pip install -e '.[thirdparty]'``).

Also here: the harness fix the downloader needed (``leaks.calls`` judged a graceful ``stop()``
still waiting for a request that hangs, while the downloader rightly kept its slot GC loop).
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer, task

from harness import JobSpec, Schedule, Stop, Submit, Target, check, load_target, run_schedule
from review_campaigns import assert_listed_needing, assert_listed_without, assert_tabled, assert_twin_caught
from review_campaigns import campaign, needs_extra, spec_id
from scenarios.thirdparty import SCENARIOS, SCRAPY

CORRECT = tuple(s.target for s in SCENARIOS if s.target.startswith(SCRAPY + ":"))

#: The twins and the invariant that must catch each.
EXPECTED = {
    f"{SCRAPY}:downloader_slot_per_url": "concurrency.key_limit",
    f"{SCRAPY}:download_delay_burst": "user.spaced_by_download_delay",
    # cancel() leaves the cancelled call in place: schedule() never arms another, nobody is served.
    f"{SCRAPY}:call_later_once_rescheduled": "completion.deadline",
    f"{SCRAPY}:parallel_unchained": "concurrency.limit",
}

needs_scrapy = needs_extra("Scrapy", CORRECT)


# --- the catalogue (no Scrapy needed) ----------------------------------------------------------------


def test_the_correct_targets_are_listed_as_passing_scenarios_needing_scrapy() -> None:
    assert_listed_needing(CORRECT, [
        "downloader_slots", "download_delay", "call_later_once", "parallel", "parallel_async",
    ], "scrapy")


def test_the_scenarios_page_tables_every_target_and_twin() -> None:
    assert_tabled(CORRECT, EXPECTED)


def test_without_scrapy_list_works_and_loading_says_what_to_install() -> None:
    assert_listed_without("scrapy", SCRAPY, f"{SCRAPY}:parallel")


# --- both ways, fast tier ------------------------------------------------------------------------------


@needs_scrapy
@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_correct_target_stays_clean(spec: str, tmp_path) -> None:
    examples = 200 if spec_id(spec) == "download_delay" else 400  # its slot GC loop makes a run dearer
    result = campaign(spec, seed=11, examples=examples, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == examples


@needs_scrapy
@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_twin_is_caught_shrunk_and_replayed_exactly(spec: str, tmp_path) -> None:
    assert_twin_caught(spec, EXPECTED[spec], tmp_path)


# --- the glue in plain Twisted ----------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> task.Clock:
    """A ``task.Clock`` that Scrapy's ``from twisted.internet import reactor`` finds while the test runs (in
    plain Twisted, by hand, what ``global_reactor="lend"`` does in each run of the targets; the running
    reactor object itself, pytest-twisted's, is left alone)."""
    import twisted.internet

    fake = task.Clock()
    monkeypatch.setattr(twisted.internet, "reactor", fake)
    return fake


@needs_scrapy
def test_the_glue_in_plain_twisted(clock: task.Clock) -> None:
    """``on_clock`` on a ``task.Clock``: Scrapy's real ``Downloader`` with ``DOWNLOAD_DELAY = 1`` and
    jitter 0.5 spaces one domain's downloads 0.5 to 1.5 s apart (the burst guard: one per delay even
    with two transfer slots free), and its slot GC loop runs on the clock and stops at ``close()``."""
    from scrapy import Request

    from scenarios.thirdparty.scrapy_utils import Downloader, JobHandler, _crawler, on_clock

    starts: list[float] = []
    on_clock(clock, seed=1)
    downloader = Downloader(_crawler({"CONCURRENT_REQUESTS_PER_DOMAIN": 2, "DOWNLOAD_DELAY": 1.0}))
    downloader.handlers = JobHandler()  # type: ignore[assignment]

    def job() -> defer.Deferred[str]:
        starts.append(clock.seconds())
        return task.deferLater(clock, 0.1, lambda: "page")  # a download handler never gives None (TypeError)

    fetched = [downloader.fetch(Request(f"http://a.example/{n}", meta={"job": job})) for n in range(4)]
    results: list[object] = []
    for d in fetched:
        d.addBoth(results.append)
    clock.pump([0.05] * 200)
    assert results == ["page"] * 4 and len(starts) == 4
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(0.5 <= gap <= 1.5 + 0.05 for gap in gaps), gaps
    assert len(set(round(g, 2) for g in gaps)) > 1  # jittered
    assert [c.func.f.__name__ for c in clock.getDelayedCalls()] == ["_slot_gc"]  # type: ignore[attr-defined]
    downloader.close()
    assert clock.getDelayedCalls() == []


@needs_scrapy
def test_call_later_once_cancel_leaves_it_scheduled_for_ever(clock: task.Clock) -> None:
    """What ``call_later_once_rescheduled`` trips on, in plain Twisted: after ``cancel()``,
    ``schedule()`` does nothing (``cancel()`` keeps the cancelled call, and ``schedule()`` arms
    one only while none is kept). Scrapy's engine cancels only on close, where that is right."""
    from scrapy.utils.reactor import CallLaterOnce

    from scenarios.thirdparty.scrapy_utils import on_clock

    calls: list[float] = []
    on_clock(clock)
    once: CallLaterOnce[None] = CallLaterOnce(lambda: calls.append(clock.seconds()))
    once.schedule(0.1)
    once.schedule(0.1)  # coalesced
    clock.advance(0.1)
    assert calls == [0.1]
    once.schedule(0.1)
    once.cancel()
    once.schedule(0.1)
    clock.pump([0.1] * 10)
    assert calls == [0.1] and clock.getDelayedCalls() == []


# --- the harness fix: a graceful stop still waiting for work in flight ---------------------------------------

#: A request that never ends, then the teardown's stop(): the engine's stop waits for it, and the
#: downloader keeps its slot GC loop meanwhile.
HANGING = Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind="hang")),))


@needs_scrapy
def test_a_stop_waiting_for_a_hanging_request_is_no_leak() -> None:
    """Before the fix, leaks.calls reported the slot GC loop (``LoopingCall due at 60000ms``)."""
    run = run_schedule(load_target(f"{SCRAPY}:downloader_slots"), HANGING)
    assert check(run) == []


class _GracefulStop:
    """A housekeeping loop every second; ``stop()`` waits for the work in flight, then stops the loop
    (or, ``forgetful``, leaves it running)."""

    def __init__(self, clock: Any, forgetful: bool = False) -> None:
        self.loop = task.LoopingCall(lambda: None)
        self.loop.clock = clock
        self.loop.start(1.0, now=False)
        self.forgetful = forgetful
        self.running: list[defer.Deferred[Any]] = []

    def submit(self, job: Any) -> defer.Deferred[Any]:
        d = defer.maybeDeferred(job)
        self.running.append(d)
        return d

    def stop(self) -> defer.Deferred[Any]:
        def done(_: Any) -> None:
            if not self.forgetful:
                self.loop.stop()

        return defer.DeferredList(self.running).addCallback(done)


@pytest.mark.parametrize(("kind", "forgetful", "leak"), [
    ("hang", False, False),     # still stopping, waiting for the work: its loop is no leak (the fix)
    ("succeed", False, False),  # stopped, loop stopped
    ("succeed", True, True),    # stopped, loop left running: a leak, as ever
    ("hang", True, False),      # never completes while the work hangs: completion judges the work, not leaks
])
def test_leaks_are_judged_once_a_graceful_stop_has_nothing_left_to_wait_for(kind: str, forgetful: bool, leak: bool) -> None:
    target = Target(build=lambda clock: _GracefulStop(clock, forgetful), description="graceful stop")
    schedule = Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind=kind, after_ms=50)), Stop(at_ms=100)))
    invariants = [v.invariant for v in check(run_schedule(target, schedule))]
    assert ("leaks.calls" in invariants) is leak, invariants


def test_a_stop_whose_deferred_never_fires_with_nothing_in_flight_is_still_judged() -> None:
    class Stuck(_GracefulStop):
        def stop(self) -> defer.Deferred[Any]:
            return defer.Deferred()  # never fires, though nothing is in flight

    target = Target(build=Stuck, description="stop never completes")
    run = run_schedule(target, Schedule(ops=(Stop(at_ms=10),)))
    assert "leaks.calls" in [v.invariant for v in check(run)]


# --- long campaigns, slow tier ------------------------------------------------------------------------


#: Fewer examples where a run costs more (the downloaders' slot GC loop runs until the drain's horizon):
#: the slow tier's share stays near 30 s. The soak runs them long (docs/scenarios.md).
LONG = {"download_delay": 400, "downloader_slots": 600}


@pytest.mark.slow
@needs_scrapy
@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_correct_target_stays_clean_over_a_long_campaign(spec: str, tmp_path) -> None:
    result = campaign(spec, seed=3, examples=LONG.get(spec_id(spec), 1000), tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
