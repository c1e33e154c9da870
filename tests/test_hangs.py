"""Hangs: a target that never returns is stopped by the per-run watchdog, reported, saved and replayed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import robust_targets
from harness import CampaignConfig, JobSpec, Schedule, Submit, TargetError, run_campaign, run_schedule
from harness.cli.main import main
from harness.run.runner import TargetHung
from harness.search.verdict import HANG, LIVELOCK
from harness.guard.watchdog import Watchdog

TESTS = Path(__file__).resolve().parent
LIMIT = 0.3
#: Three submits 10ms apart: the second one is where the hanging pools hang.
THREE = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(10, 1, JobSpec("succeed", 10)), Submit(20, 2)))


@pytest.mark.parametrize(
    ("name", "where", "at"),
    [
        ("spinning", "in step 2 (submit job 1)", "10ms"),
        ("blocking", "in step 2 (submit job 1)", "10ms"),  # blocked in C, not spinning in Python
        ("stubborn", "in step 2 (submit job 1)", "10ms"),  # swallows the first shots with except BaseException
        ("callback_spinning", "on the way to step 3 (submit job 2 at 20ms)", "20ms"),  # inside a Deferred callback
    ],
)
def test_a_run_that_hangs_is_stopped_and_says_where(name, where, at) -> None:
    started = time.monotonic()
    with pytest.raises(TargetHung) as caught:
        run_schedule(getattr(robust_targets, name), THREE, timeout_s=LIMIT)
    assert time.monotonic() - started < LIMIT + 5
    hung = caught.value
    assert str(hung) == (
        f"target hung {where} at virtual time {at}: it did not return within the {LIMIT:g}s "
        "wall-clock limit of a run (--example-timeout)"
    )
    assert hung.kind == "hang" and hung.run.trace[hung.event].kind == "target.hang"
    assert hung.run.subject is None  # dropped


def test_the_watchdog_leaves_signals_as_it_found_them() -> None:
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(TargetHung):
        run_schedule(robust_targets.spinning, THREE, timeout_s=LIMIT)
    run_schedule(robust_targets.spinning, Schedule(THREE.ops[:1]), timeout_s=LIMIT)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_watchdog_keeps_out_of_a_timer_someone_else_armed() -> None:
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        with Watchdog(LIMIT) as dog:
            assert not dog.active
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0  # the other timer is still armed
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_off_the_main_thread_there_is_no_watchdog_and_runs_still_work() -> None:
    seen = {}

    def work() -> None:
        with Watchdog(LIMIT) as dog:
            seen["active"] = dog.active
        seen["run"] = run_schedule(robust_targets.spinning, Schedule(THREE.ops[:1]), timeout_s=LIMIT)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert seen["active"] is False and len(seen["run"].trace) > 0


def test_a_build_that_never_returns_is_a_target_error() -> None:
    with pytest.raises(TargetError, match=r"build\(clock\) never returned"):
        run_schedule(robust_targets.spinning_build, THREE, timeout_s=LIMIT)


def test_a_livelock_is_reported_with_its_step_and_time() -> None:
    with pytest.raises(TargetHung, match=r"target livelocked on the way to step 3 .* at virtual time 10ms") as caught:
        run_schedule(robust_targets.livelock, THREE, timeout_s=30.0)  # counted in rounds, not time: no load makes it a hang
    assert caught.value.kind == "livelock"


def test_campaign_reports_the_hang_saves_it_shrunk_and_replay_reproduces_it(tmp_path, capsys) -> None:
    config = CampaignConfig(seed=1, max_examples=200, report_dir=str(tmp_path), example_timeout_s=LIMIT)
    result = run_campaign(robust_targets.spinning, "robust_targets:spinning", config)
    (finding,) = result.findings
    assert finding.violation.invariant == HANG and finding.shrunk and result.shrink_runs > 0
    step = re.match(r"target hung in step (\d+) \(submit job 1\) at virtual time \d+ms", finding.violation.message)
    assert step, finding.violation.message
    assert f"within the {LIMIT:g}s wall-clock limit" in finding.violation.message  # confirmed under the full limit
    saved = json.loads(finding.path.read_text())
    assert saved["invariant"] == HANG
    # The pool spins on its second submit: two submits are the whole story.
    assert [op["op"] for op in saved["schedule"]["ops"]] == ["submit", "submit"] and step[1] == "2"
    assert saved["schedule"]["ops"][-1] == {**saved["schedule"]["ops"][-1], "op": "submit", "job": 1}

    assert main(["replay", str(finding.path), "--example-timeout", str(LIMIT)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL harness.hang: target hung in step {step[1]} (submit job 1)" in out
    assert "reproduced exactly" in out


def _found_hang(tmp_path, seed: int = 1):
    config = CampaignConfig(seed=seed, max_examples=200, report_dir=str(tmp_path), example_timeout_s=LIMIT)
    result = run_campaign(robust_targets.spinning, "robust_targets:spinning", config)
    (finding,) = result.findings
    return result, finding


def _still_hangs(path: Path) -> bool:
    from harness.store.failure_file import load

    record = load(path)
    try:
        run_schedule(robust_targets.spinning, record.schedule, timeout_s=LIMIT)
    except TargetHung:
        return True
    return False


def test_a_shrunk_candidate_that_only_looked_hung_is_refused_by_the_full_limit(tmp_path, monkeypatch) -> None:
    # A loaded machine at its worst: every candidate run under the short limit looks hung in its last step
    # (a submit), so shrinking ends on one submit, which does not hang at all; the confirmation under the
    # full limit must throw it away and keep the schedule as found.
    import harness.search.campaign as campaign
    from harness.invariants.base import Violation

    real = campaign.judge
    short = 0.123

    def slow_machine(target, schedule, timeout_s):
        if timeout_s != short:
            return real(target, schedule, timeout_s)
        run, violations = real(target, schedule, LIMIT)
        if not (violations and violations[0].invariant == HANG):
            run.phase, run.step = "step", len(schedule.ops) - 1
            violations = [Violation(HANG, "looked hung", (0,), (), 0)]
        return run, violations

    monkeypatch.setattr(campaign, "short_limit", lambda typical, limit: short)
    monkeypatch.setattr(campaign, "judge", slow_machine)
    result, finding = _found_hang(tmp_path)
    assert finding.violation.invariant == HANG and not finding.shrunk
    assert finding.violation.message.startswith("target hung in step ") and _still_hangs(finding.path)
    assert result.shrink_runs > 0


def test_shrinking_a_hang_keeps_to_its_time_budget(tmp_path, monkeypatch) -> None:
    import harness.search.campaign as campaign

    monkeypatch.setattr(campaign, "hang_budget", lambda limit: 0.05)
    result, finding = _found_hang(tmp_path)
    assert finding.violation.invariant == HANG and not finding.shrunk
    assert finding.shrink_s is not None and finding.shrink_s < 0.05 + 3 * LIMIT + 1.0  # budget, one tried, confirm, typical
    assert _still_hangs(finding.path)


def test_a_candidate_hanging_elsewhere_is_not_the_same_hang() -> None:
    from harness import Cancel
    from harness.search.shrink_hang import cut_at_hang, hang_kind, short_limit

    with pytest.raises(TargetHung) as in_submit:
        run_schedule(robust_targets.spinning, THREE, timeout_s=LIMIT)
    with pytest.raises(TargetHung) as in_callback:
        run_schedule(robust_targets.callback_spinning, THREE, timeout_s=LIMIT)
    assert hang_kind(THREE, in_submit.value.run) == ("step", "Submit")
    assert hang_kind(THREE, in_callback.value.run) == ("advance", "Submit")  # on the way to a step: not the same
    assert cut_at_hang(THREE, in_submit.value.run).ops == THREE.ops[:2]
    assert short_limit(0.001, 10.0) == 0.1 and short_limit(0.05, 10.0) == 1.0 and short_limit(5.0, 2.0) == 2.0
    assert Cancel  # (imported to show the kinds are operation classes: a Cancel step is another kind)


def test_a_livelock_is_shrunk_like_any_failure(tmp_path) -> None:
    config = CampaignConfig(seed=1, max_examples=200, report_dir=str(tmp_path))
    result = run_campaign(robust_targets.livelock, "robust_targets:livelock", config)
    (finding,) = result.findings
    assert finding.violation.invariant == LIVELOCK and finding.shrunk
    assert [op.name for op in finding.record.schedule.ops] == ["submit", "submit"]


def test_a_saved_hang_in_the_regression_corpus_still_fails(tmp_path, capsys) -> None:
    config = CampaignConfig(seed=1, max_examples=200, report_dir=str(tmp_path), example_timeout_s=LIMIT)
    (finding,) = run_campaign(robust_targets.spinning, "robust_targets:spinning", config).findings
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / finding.path.name).write_text(finding.path.read_text())
    argv = ["fuzz", "robust_targets:spinning", "--seed", "1", "--regressions", str(corpus), "--example-timeout", str(LIMIT)]
    assert main([*argv, "--report-dir", str(tmp_path / "again"), "--no-database"]) == 1
    assert "FAIL harness.hang (regression" in capsys.readouterr().out


def test_harness_fuzz_on_a_hanging_target_ends_with_exit_1_instead_of_hanging_ci(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    argv = ["fuzz", "robust_targets:spinning", "--seed", "3", "--example-timeout", "0.5", "--json", "summary.json"]
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    assert "FAIL harness.hang: target hung in step " in proc.stdout
    assert "minimal schedule: 2 operations" in proc.stdout  # shrunk under a short limit, confirmed under 0.5s
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["outcome"] == "failed" and summary["failures"][0]["invariant"] == HANG
    assert Path(tmp_path / summary["failures"][0]["file"]).exists()


_LATER = """
import sys
import robust_targets
from harness import JobSpec, Schedule, Submit, run_schedule
from harness.run.runner import TargetHung

# Job 1 raises, so the Deferred that the spinning submit holds has failed, unhandled.
hung = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(10, 1, JobSpec("raise", 0, "ValueError"))))
try:
    run_schedule(robust_targets.spinning, hung, timeout_s=0.2)
except TargetHung:
    pass
leaky = run_schedule(robust_targets.leaky, Schedule((Submit(0, 0, JobSpec("raise", 0, "ValueError")),)))
three = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(10, 1, JobSpec("succeed", 10)), Submit(20, 2)))
kinds = [event.kind for _ in range(3) for event in run_schedule(robust_targets.counting, three).trace]
print([event.kind for event in leaky.trace].count("unhandled"), kinds.count("unhandled"))
"""


def test_nothing_a_run_logs_surfaces_in_a_later_run_or_on_stderr() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _LATER], env=env, capture_output=True, text=True, timeout=60)
    # The leaky run records its unhandled error; no later run sees any, and nothing reaches stderr
    # (Twisted prints "Unhandled error in Deferred" there until a program begins logging).
    assert proc.returncode == 0 and proc.stdout == "1 0\n", proc.stderr
    assert proc.stderr == ""


def test_a_slow_import_of_the_global_reactor_is_no_part_of_a_run_s_time_limit(monkeypatch) -> None:
    """The escape guard imports the global reactor (0.4 s with TLS libraries installed): that must not
    count against --example-timeout, or a fast target is reported as hung on a loaded machine."""
    from harness.guard import escapes

    real = escapes._global_reactor

    def slow_reactor():
        time.sleep(0.5)
        return real()

    monkeypatch.setattr(escapes, "_global_reactor", slow_reactor)
    run = run_schedule(robust_targets.counting, THREE, timeout_s=0.3)
    assert run.trace[-1].kind == "end"


def test_a_second_stop_while_a_hang_is_confirmed_keeps_the_hang(tmp_path, monkeypatch) -> None:
    """The shrunk hang is confirmed under the full limit: a run that takes it whole, longer than a stop's grace
    (``harness.guard.signals.STOP_GRACE_S``), whose repeat then raised KeyboardInterrupt out of it, losing the
    hang found. It is saved as found."""
    import harness.search.campaign as campaign
    from harness.search.stop_reasons import StopReason

    real = campaign._Search._judge
    confirming: list[bool] = []

    def judge(self, schedule, notes=True):
        if self.result.shrink_runs > 0 and not self.result.shrinking:
            confirming.append(True)
            raise KeyboardInterrupt  # the repeated stop, in the run that confirms the shrunk hang
        return real(self, schedule, notes)

    monkeypatch.setattr(campaign._Search, "_judge", judge)
    config = CampaignConfig(seed=1, max_examples=200, report_dir=str(tmp_path), example_timeout_s=LIMIT)
    result = run_campaign(robust_targets.spinning, "robust_targets:spinning", config)
    assert confirming and result.stopped_by == StopReason.INTERRUPT
    (finding,) = result.findings
    assert finding.violation.invariant == HANG and not finding.shrunk and _still_hangs(finding.path)
