"""A seed decides a campaign's schedules by itself, whatever other modules the process has loaded."""

from __future__ import annotations

import importlib

from harness import CampaignConfig, run_campaign
from scenarios.pools import semaphore_pool

CORRECT = "scenarios.pools:semaphore_pool"


def test_a_seed_generates_the_same_schedules_whatever_else_is_loaded(tmp_path, monkeypatch) -> None:
    # Hypothesis mixes literals from loaded local modules into what it generates; a campaign
    # must not: importing a module with a few numbers in it (another scenario, the CLI, the
    # user's own code) used to change what a seed generated, and so what it found.
    played: list[str] = []

    def schedules() -> list[str]:
        played.clear()
        run_campaign(
            semaphore_pool,
            CORRECT,
            CampaignConfig(seed=5, max_examples=200, report_dir=str(tmp_path)),
            on_run=lambda schedule, run: played.append(repr(schedule)),
        )
        return list(played)

    before = schedules()
    (tmp_path / "some_numbers.py").write_text("NUMBERS = (123, 257, 311, 489, 4099, 31337, 65001)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("some_numbers")
    assert schedules() == before
