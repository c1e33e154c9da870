"""Twelfth outside-user review (docs/reviews/outside-user-12.md): four components written blind (a
sliding-window rate limiter, a bounded Go-style channel, a watchdog restarting silent tasks, a request
coalescer), with targets written from the user documentation alone. Each correct target stays clean
over a bounded campaign; each buggy twin is caught, naming the invariant its bug breaks; what the
harness found in my "correct" code stays fixed; the findings that need a harness change are strict
xfails, which pass once the finding is fixed. The long campaigns are in the review page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import Call, Cancel, ClockPolicy, JobSpec, Jump, Schedule, Submit, check, run_schedule
from harness.pytest import fuzz
from scenarios.review.round12 import limiter, targets, watchdog

from review_campaigns import assert_caught_alone, assert_caught_as, assert_stays_clean, campaign

PACKAGE = "scenarios.review.round12.targets"
ROOT = Path(__file__).resolve().parent.parent

CORRECT = ("limiter_ok", "channel_put_ok", "channel_get_ok", "watchdog_ok")

# twin -> the invariant its bug breaks (first reported, seed 1, mixed strategy; each within 30 examples)
BUGGY = {
    "limiter_off_by_one": "time.early",
    "limiter_leaky_timer": "completion.once",
    "limiter_lifo": "concurrency.fifo",
    "channel_overfull": "concurrency.limit",
    "channel_stale_getter": "completion.once",
    "channel_drop_on_close": "errors.unhandled",
    "watchdog_extra_restart": "time.retries",
    "watchdog_stale_kick": "time.timeout",
    "watchdog_lingering_timer": "leaks.calls",
    "coalescer_oversize": "user.batch_within_max_size",
    "coalescer_cancel_all": "sharing.isolated",
    "coalescer_double_send": "sharing.joined",
}

# One bug, several true symptoms on other seeds.
ACCEPTED: dict[str, set[str]] = {
    "coalescer_cancel_all": {"sharing.isolated", "cancellation.detaches"},
    "coalescer_double_send": {"sharing.joined", "user.no_upstream_call_without_caller"},
}


def _violations(target: Any, *ops: Any, clock: ClockPolicy | None = None) -> list[str]:
    schedule = Schedule(ops=tuple(ops)) if clock is None else Schedule(ops=tuple(ops), clock=clock)
    return [v.invariant for v in check(run_schedule(target, schedule))]


def _job(job: int, kind: str = "succeed", after_ms: int = 0, at_ms: int = 0, **kw: Any) -> Submit:
    return Submit(at_ms=at_ms, job=job, spec=JobSpec(kind=kind, after_ms=after_ms), **kw)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_component_is_clean(name: str, tmp_path: Path) -> None:
    assert_stays_clean(f"{PACKAGE}:{name}", tmp_path, examples=60)


# The twins whose shrinking costs over a second: in the slow tier (CI time is tight).
SLOW_TWINS = ("coalescer_oversize", "coalescer_double_send", "limiter_lifo")


@pytest.mark.parametrize("name, invariant", sorted((n, i) for n, i in BUGGY.items() if n not in SLOW_TWINS))
def test_buggy_twin_is_caught(name: str, invariant: str, tmp_path: Path) -> None:
    assert_caught_alone(f"{PACKAGE}:{name}", invariant, tmp_path, examples=100)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_TWINS)
def test_costly_twin_is_caught(name: str, tmp_path: Path) -> None:
    assert_caught_alone(f"{PACKAGE}:{name}", BUGGY[name], tmp_path, examples=100)


@pytest.mark.slow
@pytest.mark.parametrize("name", ("limiter_off_by_one", "channel_stale_getter", "watchdog_extra_restart",
                                  "watchdog_lingering_timer", "coalescer_cancel_all", "coalescer_double_send"))
def test_buggy_twin_is_caught_on_another_seed(name: str, tmp_path: Path) -> None:
    assert_caught_as(f"{PACKAGE}:{name}", ACCEPTED.get(name, {BUGGY[name]}), tmp_path, seed=2, examples=1000)


# -- what the harness found in my "correct" code ---------------------------------------------------------
class _LimiterReadingSeconds(limiter.SlidingWindowLimiter):
    """As first written: the window kept as clock.seconds() readings, pruned by subtraction."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.starts: list[float] = []

    def _has_slot(self) -> bool:
        now = self.clock.seconds()
        self.starts = [t for t in self.starts if t > now - self.window]
        return len(self.starts) < self.n

    def _start(self, fn: Any, args: tuple[Any, ...]) -> Any:
        self.starts.append(self.clock.seconds())
        return super()._start(fn, args)


def test_limiter_window_survives_a_wall_clock_jump() -> None:
    """time.early caught the first limiter: a forward jump of seconds() emptied its window."""
    ops = (_job(0), Jump(at_ms=0, delta_ms=270), _job(1), _job(2))
    assert _violations(targets._limiter(_LimiterReadingSeconds, "as first written"), *ops) == ["time.early"]
    assert _violations(targets.limiter_ok, *ops) == []


class _WatchWithoutCanceller(watchdog._Watch):
    """As first written: the watch's Deferred had no canceller."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        from twisted.internet import defer
        self.result = defer.Deferred()


class _WatchdogAsFirstWritten(watchdog.Watchdog):
    watch_class = _WatchWithoutCanceller


def test_cancelling_a_watch_cancels_its_task() -> None:
    """cancellation.no_start (and .propagates) caught the first watchdog restarting a task whose watch was cancelled."""
    ops = (_job(0, "hang"), Cancel(at_ms=0, job=0))
    assert _violations(targets._watchdog(_WatchdogAsFirstWritten, "as first written"), *ops) == ["cancellation.no_start", "cancellation.propagates"]
    assert _violations(targets.watchdog_ok, *ops) == []


def test_cancel_of_a_started_waiter_reaches_its_call() -> None:
    """completion.once caught the first limiter: a waiter's cancel after it got its slot left the call running."""
    ops = (_job(0), _job(1), _job(2, after_ms=910), Cancel(at_ms=100, job=2))
    assert _violations(targets.limiter_ok, *ops) == []


# -- the CLI and the plugin ------------------------------------------------------------------------------
@pytest.mark.slow
def test_saved_failure_replays_exactly(tmp_path: Path) -> None:
    """A twin's saved file replays to the same trace from the command line, as the docs say."""
    result = campaign(f"{PACKAGE}:watchdog_stale_kick", seed=1, examples=300, tmp_path=tmp_path)
    [finding] = result.findings
    replay = subprocess.run([sys.executable, "-m", "harness", "replay", str(finding.path)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert replay.returncode == 1, replay.stderr
    assert "reproduced exactly" in replay.stdout
    assert "FAIL time.timeout" in replay.stdout


@fuzz(f"{PACKAGE}:channel_get_ok", max_examples=40)
def test_channel_through_the_plugin() -> None:
    """The plugin's @fuzz on a correct round-12 target."""


# -- findings that need a harness change (strict xfails: they pass once the finding is fixed) -----------
_NEW_BATCH_AFTER_SEND = (_job(0, "hang"), _job(1, at_ms=100), Cancel(at_ms=100, job=0))


def test_finding1_abandoning_a_batch_whose_callers_all_left() -> None:
    """Job 0 is the only caller of the first upstream call; job 1 came after it was sent and is served by
    an execution of its own (job 1 starts at 200ms). Cancelling job 0 may cancel the first call."""
    assert _violations(targets.coalescer_ok, *_NEW_BATCH_AFTER_SEND) == []


def test_finding1_control_cancel_all_is_caught() -> None:
    """The control: cancelling the shared call while another caller of the same batch waits is caught."""
    ops = (_job(0, "hang"), _job(1), Cancel(at_ms=150, job=0))
    assert _violations(targets.coalescer_cancel_all, *ops) == ["cancellation.detaches", "sharing.isolated"]
    assert _violations(targets.coalescer_ok, *ops) == []


@pytest.mark.xfail(strict=True, reason="finding 2: timeout_from='glue' is refused with retries: a kicked watchdog cannot be declared")
def test_finding2_kicked_watchdog_is_declarable() -> None:
    """A task kicked at 200ms runs past 300ms legitimately; silent after that, it is restarted at 500ms."""
    ops = (_job(0, "succeed", after_ms=450), Call(at_ms=200, operation="kick_live"))
    assert _violations(targets.watchdog_kicked(), *ops) == []


_WINDOW_FULL = tuple(_job(j) for j in range(3))  # 2 per 100ms: job 2 waits for the window


def test_finding3_wait_shorter_than_the_window() -> None:
    """The window is full (jobs 0 and 1 started at 0ms) until 100ms; job 2's max wait of 50ms runs out
    first. No limit is declared, yet: "the declared limit of 1 was never full while it waited"."""
    assert _violations(targets.limiter_short_wait, *_WINDOW_FULL) == []


def test_finding3_control_lazy_wake_is_caught() -> None:
    """The control: a limiter whose freed places wake no waiter (the window had room from 100ms to the
    timeout at 300ms) is caught, and must stay caught once finding 3 is fixed."""
    assert _violations(targets.limiter_lazy_wake, *_WINDOW_FULL) == ["time.timeout"]
    assert _violations(targets.limiter_ok, *_WINDOW_FULL) == []
