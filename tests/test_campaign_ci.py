"""Campaign behaviour behind the CI options: budgets across rounds, stop requests, signals, the database."""

from __future__ import annotations

import signal

import pytest

from harness import CampaignConfig, run_campaign
from harness.guard.signals import StopSignals
from scenarios.pools import double_release_pool, semaphore_pool

BUGGY = "scenarios.pools:double_release_pool"
CORRECT = "scenarios.pools:semaphore_pool"


def test_max_examples_bounds_the_whole_campaign_not_each_round(tmp_path) -> None:
    config = CampaignConfig(seed=6, max_examples=300, max_failures=3, report_dir=str(tmp_path))
    result = run_campaign(double_release_pool, BUGGY, config)
    assert len(result.findings) == 1
    assert result.examples == 300 and result.stopped_by == "max-examples"
    assert result.shrink_runs > 0  # counted apart from the examples


def test_stop_request_ends_the_campaign_at_the_next_run(tmp_path) -> None:
    seen = []
    config = CampaignConfig(seed=1, budget_s=60, report_dir=str(tmp_path))
    result = run_campaign(
        semaphore_pool, CORRECT, config, on_example=lambda r: seen.append(r.examples), stop_requested=lambda: len(seen) >= 3
    )
    assert result.stopped_by == "interrupt" and result.examples == 3 and result.findings == []


def test_a_budget_stop_saves_nothing_to_the_example_database(tmp_path) -> None:
    config = CampaignConfig(seed=1, budget_s=0.3, database=str(tmp_path / "db"), report_dir=str(tmp_path))
    result = run_campaign(semaphore_pool, CORRECT, config)
    assert result.stopped_by == "budget"
    assert not [p for p in (tmp_path / "db").rglob("*") if p.is_file()]


def test_bad_config_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="max_failures"):
        run_campaign(semaphore_pool, CORRECT, CampaignConfig(max_failures=0))
    with pytest.raises(ValueError, match="regressions directory"):
        run_campaign(semaphore_pool, CORRECT, CampaignConfig(save_regressions=True))


def test_stop_signals_record_the_first_signal_and_abort_on_the_second() -> None:
    before = signal.getsignal(signal.SIGTERM)
    before_int = signal.getsignal(signal.SIGINT)  # pytest-twisted, when installed, wraps the default
    with StopSignals() as stop:
        assert not stop.requested()
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested() and stop.received == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGINT) is before_int


def test_shrinking_past_the_budget_grace_saves_the_failure_unshrunk(tmp_path, monkeypatch) -> None:
    import time

    import harness.search.campaign

    class JumpingTime:
        """Real monotonic time, plus an hour once shrinking starts: the budget and its grace are long gone."""

        offset = 0.0

        @classmethod
        def monotonic(cls) -> float:
            return time.monotonic() + cls.offset

    def on_example(result) -> None:
        if result.shrinking:
            JumpingTime.offset = 3600.0

    monkeypatch.setattr(harness.search.campaign, "time", JumpingTime)
    config = CampaignConfig(seed=2, budget_s=60, max_failures=2, report_dir=str(tmp_path))
    result = run_campaign(double_release_pool, BUGGY, config, on_example=on_example)
    (finding,) = result.findings
    assert result.stopped_by == "budget"
    assert finding.shrunk is False and finding.path.exists()


def test_the_search_does_not_depend_on_the_literals_of_loaded_modules(tmp_path, monkeypatch) -> None:
    # Hypothesis draws constants from every local module loaded; the same seed must search the same way
    # whatever else the process imported (the CLI, pytest, a user's code base full of numbers).
    config = CampaignConfig(seed=6, max_examples=300, report_dir=str(tmp_path))
    before = run_campaign(double_release_pool, BUGGY, config)
    (tmp_path / "literal_soup.py").write_text("VALUES = [" + ", ".join(str(n) for n in range(3, 5000, 7)) + "]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("literal_soup")
    after = run_campaign(double_release_pool, BUGGY, config)
    assert [f.record.schedule for f in after.findings] == [f.record.schedule for f in before.findings]
    assert after.examples == before.examples and after.shrink_runs == before.shrink_runs
