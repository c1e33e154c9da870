"""Sixth outside-user review (docs/reviews/outside-user-6.md): four components written blind (a
health-checked connection pool with a max lifetime, a deadline-budget RPC client, a per-key
coalescing write-behind flusher, a weighted fair scheduler over tenants), with targets written from
the user documentation alone.  Each correct target stays clean over a bounded campaign; each buggy twin
is caught, naming the invariant its bug breaks; the findings that need a harness change are strict
xfails, which pass once the finding is fixed. The long campaigns are in the review page; a slice is
under slow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import (
    ClockPolicy,
    JobSpec,
    Jump,
    Schedule,
    Stop,
    Submit,
    check,
    load_target,
    run_schedule,
)
from harness.pytest import fuzz

from review_campaigns import assert_caught_alone, assert_caught_as, assert_stays_clean, campaign

PACKAGE = "scenarios.review.round6.targets"
ROOT = Path(__file__).resolve().parent.parent

CORRECT = ("pool_ok", "client_ok", "flush_ok", "fair_ok")

# twin -> the invariant its bug breaks (first reported, seed 1, mixed strategy, <= 3000 examples)
BUGGY = {
    "pool_evicts_lent": "concurrency.limit",
    "pool_double_count": "user.pool_size_bounded",
    "pool_sliding_lifetime": "user.pool_hands_out_fresh",
    "pool_drops_on_cancel": "cancellation.releases",
    "client_late_done": "completion.once",
    "client_leaky_timer": "user.deadline_timer_not_left",
    "client_deaf_to_cancel": "cancellation.propagates",
    "client_per_attempt_deadline": "time.timeout",
    "client_wrong_error": "time.timeout",  # finding 1: missed before fix6a
    "flush_clobbering": "errors.poison",
    "flush_hasty_stop": "concurrency.limit",
    "flush_debouncing": "user.flush_throttled_not_debounced",
    "fair_leak_on_fail": "cancellation.releases",
    "fair_banked_credit": "user.weighted_fair",
    "fair_double_release": "concurrency.limit",
}

# The invariants each twin was reported under over seeds 1 to 5: one bug shows as several true
# symptoms (a lent connection closed is also a pool that opens a third; a leaked slot strands the
# jobs behind it whether a cancel, a failure or a timeout leaked it).
ACCEPTED = {
    "pool_evicts_lent": {"concurrency.limit", "user.pool_size_bounded", "user.pool_never_closes_lent"},
    "pool_double_count": {"user.pool_size_bounded", "concurrency.limit"},
    "pool_drops_on_cancel": {"cancellation.releases", "user.pool_closes_everything"},
    "client_deaf_to_cancel": {"cancellation.propagates", "cancellation.no_start"},
    "flush_hasty_stop": {"concurrency.limit", "concurrency.key_limit", "user.flush_stop_is_durable"},
    "fair_leak_on_fail": {"cancellation.releases", "completion.deadline", "errors.poison"},
}


def _check(name: str, *ops, clock: ClockPolicy = ClockPolicy()):
    return check(run_schedule(load_target(f"{PACKAGE}:{name}"), Schedule(ops=tuple(ops), clock=clock)))


def _violations(name: str, *ops, clock: ClockPolicy = ClockPolicy()) -> list[str]:
    return [v.invariant for v in _check(name, *ops, clock=clock)]


@pytest.mark.parametrize("name", CORRECT)
def test_correct_component_is_clean(name, tmp_path):
    assert_stays_clean(f"{PACKAGE}:{name}", tmp_path, examples=300)


@pytest.mark.parametrize("name, invariant", sorted(BUGGY.items()))
def test_buggy_twin_is_caught(name, invariant, tmp_path):
    assert_caught_alone(f"{PACKAGE}:{name}", invariant, tmp_path)


@pytest.mark.parametrize("name", sorted(BUGGY))
def test_buggy_twin_is_caught_on_another_seed(name, tmp_path):
    assert_caught_as(f"{PACKAGE}:{name}", ACCEPTED.get(name, {BUGGY[name]}), tmp_path, seed=2)


def test_saved_failure_replays_exactly(tmp_path):
    """A twin's saved file replays to the same trace from the command line, as the docs say."""
    result = campaign(f"{PACKAGE}:fair_banked_credit", seed=1, examples=3000, tmp_path=tmp_path)
    [finding] = result.findings
    replay = subprocess.run([sys.executable, "-m", "harness", "replay", str(finding.path)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert replay.returncode == 1, replay.stderr
    assert "reproduced exactly" in replay.stdout
    assert "FAIL user.weighted_fair" in replay.stdout


@fuzz("scenarios.review.round6.targets:fair_ok", max_examples=150)
def test_fair_scheduler_keeps_its_promises_under_pytest():
    """The plugin route: the global limit, FIFO per tenant, the job timeout, cancels, and the
    stride scheduler's fairness bound, whatever the schedule."""


# -- what the harness found in my "correct" components (fixed; each schedule now passes) --

def test_h1_flusher_throttle_survives_a_wall_clock_jump_back():
    """The throttle read `clock.seconds()`; a jump back of 1.5 s held the next flush 1.4 s."""
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=190)),
           Submit(at_ms=50, job=1, spec=JobSpec(kind="succeed", after_ms=0)),
           Jump(at_ms=50, delta_ms=-1500))
    assert _violations("flush_ok", *ops) == []


def test_h2_sink_waits_for_every_write_of_a_batch():
    """My first glue failed a batch at its first failed write while another still ran; the retry
    called that write again beside itself (kept as the specimen flush_gather_sink)."""
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=210)),
           Submit(at_ms=0, job=1, spec=JobSpec(kind="fail", after_ms=0), key=1),
           Stop(at_ms=0))
    assert _violations("flush_ok", *ops) == []
    assert "concurrency.key_limit" in _violations("flush_gather_sink", *ops)


# -- findings that need a harness change: strict xfails, they flip when fixed --

def test_f2_retry_until_success_declarable():
    """Fixed (fix6a): `flush_retry_forever` declares retries=math.inf with its backoff. With an early
    stop() the write passes (stop gives up and fails the caller); without one, the flusher retries
    until the drain horizon, and a caller whose write is still being retried is not stranded."""
    write = Submit(at_ms=0, job=0, spec=JobSpec(kind="raise"))
    assert _violations("flush_retry_forever", write, Stop(at_ms=0)) == []
    assert _violations("flush_retry_forever", write) == []


def test_f3_key_limit_message_names_the_attempt():
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=210)),
           Submit(at_ms=0, job=1, spec=JobSpec(kind="fail", after_ms=0), key=1),
           Stop(at_ms=0))
    [message] = [v.message for v in _check("flush_gather_sink", *ops) if v.invariant == "concurrency.key_limit"]
    assert "while  still" not in message and "attempt" in message


def test_f4_docs_do_not_promise_monotonic_timers_on_a_real_reactor():
    text = (ROOT / "docs" / "reference" / "target.md").read_text()
    assert not re.search(r"monotonic time, under the harness as\s+on a real reactor", text)


def test_f5_junit_counts_what_each_invariant_judged(tmp_path):
    summary, junit = tmp_path / "s.json", tmp_path / "j.xml"
    out = subprocess.run([sys.executable, "-m", "harness", "fuzz", f"{PACKAGE}:flush_ok", "--max-examples", "60",
                          "--seed", "1", "--no-regressions", "--report-dir", str(tmp_path), "--json", str(summary),
                          "--junit", str(junit)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    exercised = json.loads(summary.read_text())["exercised"]
    for total, names in re.findall(r"held over (\d+) examples: ([^<]+)<", junit.read_text()):
        for name in names.split(", "):
            assert exercised["invariants"].get(name) == int(total), (name, exercised["invariants"].get(name), total)
    # The fix gives each invariant its own count: every one the summary counts, with that count.
    counted = dict(re.findall(r"([a-z_]+\.[a-z_]+) (\d+)", junit.read_text()))
    assert {name: int(n) for name, n in counted.items()} == exercised["invariants"]


def test_f1_deadline_with_retries_checks_the_error():
    """Without `retries` the same target is caught by time.timeout (checked below)."""
    assert "time.timeout" in _violations("client_wrong_error", Submit(at_ms=0, job=0, spec=JobSpec(kind="hang")))


def test_f1_retries_zero_keeps_the_timeout_error_check():
    assert _violations("keeps_cancel_retries0", Submit(at_ms=0, job=0, spec=JobSpec(kind="hang"))) == ["time.timeout"]
    assert _violations("renames_timeout_retries0", Submit(at_ms=0, job=0, spec=JobSpec(kind="hang"))) == ["time.timeout"]


def test_f1_without_retries_a_kept_cancel_is_caught():
    assert _violations("keeps_cancel", Submit(at_ms=0, job=0, spec=JobSpec(kind="hang"))) == ["time.timeout"]


def test_f1_without_retries_the_wrong_error_is_caught():
    import dataclasses

    target = dataclasses.replace(load_target(f"{PACKAGE}:client_wrong_error"), retries=None, backoff_ms=None)
    run = run_schedule(target, Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind="hang")),)))
    assert [v.invariant for v in check(run)] == ["time.timeout"]


def test_f6_regression_item_does_not_claim_it_saved(tmp_path):
    result = campaign(f"{PACKAGE}:client_deaf_to_cancel", seed=1, examples=500, tmp_path=tmp_path / "reports")
    [finding] = result.findings
    corpus = tmp_path / "harness-regressions"
    corpus.mkdir()
    (corpus / finding.path.name).write_text(finding.path.read_text())
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "harness-regressions"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "reproduced exactly" in out.stdout
    assert f"saved: harness-regressions/{finding.path.name}" not in out.stdout


# -- the long campaigns (figures in the review page) --

@pytest.mark.slow
@pytest.mark.parametrize("name", CORRECT)
def test_correct_component_is_clean_long(name, tmp_path):
    result = campaign(f"{PACKAGE}:{name}", seed=7, examples=1500, tmp_path=tmp_path, strategy="pct")
    assert result.findings == [], [f.violation.message for f in result.findings]
