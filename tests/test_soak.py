"""The false-alarm soak (``benchmarks/soak.py``): its report, and a short soak of every correct target.

The short soak (slow tier) runs ``SOAK_EXAMPLES`` examples on every scenario
that must pass, every clock fault on, and requires no alarm; a target hit by a
known false alarm being fixed elsewhere is ``xfail`` with its reason (the same
table as ``tests/test_thirdparty.py``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from harness import Menu
from scenarios import CATALOG, Scenario
from scenarios.thirdparty import KNOWN_FALSE_ALARMS as KNOWN_ALARMS
from scenarios.thirdparty import available

ROOT = Path(__file__).resolve().parent.parent

#: Examples per target in the short soak; docs/benchmarks.md says what it costs.
SOAK_EXAMPLES = 1_000


def _load_soak():
    spec = importlib.util.spec_from_file_location("benchmarks_soak", ROOT / "benchmarks" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


soak = _load_soak()
CORRECT = tuple(soak.correct_scenarios())


def test_the_soak_runs_every_correct_scenario_and_no_buggy_one() -> None:
    targets = {s.target for s in CORRECT}
    assert targets == {s.target for s in CATALOG if s.expect == "pass"}
    assert "scenarios.pools:semaphore_pool" in targets and "scenarios.thirdparty.twisted_prims:lock" in targets
    assert "scenarios.pools:double_release_pool" not in targets


def test_every_clock_fault_is_forced_on() -> None:
    narrow = Menu(jumps=False, tie_breaks=("fifo",), steps_ms=(0,), jitters_ms=(0,))
    menu, forced = soak.with_all_faults(narrow)
    assert forced == ["jumps", "tie_breaks", "steps_ms", "jitters_ms"]
    assert menu.jumps and set(menu.tie_breaks) == set(Menu().tie_breaks)
    assert set(menu.steps_ms) == set(Menu().steps_ms) and set(menu.jitters_ms) == set(Menu().jitters_ms)
    assert soak.with_all_faults(Menu()) == (Menu(), [])


def test_a_clean_soak_reports_examples_and_no_alarm(tmp_path, capsys) -> None:
    out = tmp_path / "soak.json"
    code = soak.main(
        ["--examples-per-target", "30", "--only", "twisted_prims:lo", "--out", str(out), "--report-dir", str(tmp_path)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert [t["target"] for t in report["targets"]] == [
        "scenarios.thirdparty.twisted_prims:lock",
        "scenarios.thirdparty.twisted_prims:looping_call",
        "scenarios.thirdparty.twisted_prims:looping_call_now",
    ]
    assert report["total_examples"] == 90 and report["total_alarms"] == 0
    assert all(t["examples"] == 30 and t["alarms"] == [] for t in report["targets"])
    table = capsys.readouterr().out
    assert "total" in table and "90" in table and "3 targets run" in table


def test_an_alarm_is_counted_with_its_invariant_and_file(tmp_path) -> None:
    buggy = Scenario("scenarios.pools:double_release_pool", "concurrency.limit", "a buggy pool, as a stand-in")
    row = soak.soak_one(buggy, examples=300, seed=1, workers=1, report_dir=str(tmp_path), timeout_s=10.0)
    assert row.alarms and row.alarms[0]["invariant"] == "concurrency.limit"
    assert Path(row.alarms[0]["file"]).is_file()
    assert "concurrency.limit" in soak.table([row])


def test_a_target_whose_extra_is_missing_is_skipped_not_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(soak, "available", lambda scenario: False)
    row = soak.soak_one(CORRECT[0], examples=10, seed=1, workers=1, report_dir=str(tmp_path), timeout_s=10.0)
    assert row.examples == 0 and "pip install -e '.[thirdparty]'" in row.skipped


def _params():
    for scenario in CORRECT:
        marks = []
        if scenario.target in KNOWN_ALARMS:
            marks.append(pytest.mark.xfail(strict=False, reason=KNOWN_ALARMS[scenario.target]))
        if not available(scenario):
            marks.append(pytest.mark.skip(reason="needs the thirdparty extra: pip install -e '.[thirdparty]'"))
        yield pytest.param(scenario, id=scenario.target.removeprefix("scenarios."), marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(_params()))
def test_short_soak_raises_no_alarm(scenario: Scenario, tmp_path) -> None:
    row = soak.soak_one(scenario, examples=SOAK_EXAMPLES, seed=7, workers=1, report_dir=str(tmp_path), timeout_s=10.0)
    assert row.alarms == []
    assert row.examples == SOAK_EXAMPLES
