"""The time-to-detect-per-strategy section of ``benchmarks/bench.py``: its rows, misses and table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_bench():
    spec = importlib.util.spec_from_file_location("benchmarks_bench", ROOT / "benchmarks" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_rows_count_examples_misses_and_the_zoo(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    bench = _load_bench()
    rows = bench.strategies(2, 30.0, ("random", "pct"), max_examples=5, only=("pools:double_release_pool", "shed_throttle"))
    assert set(rows) == {"scenarios.pools:double_release_pool", "scenarios.shed_throttle:head_dropping_throttle"}
    easy, hard = rows["scenarios.pools:double_release_pool"], rows["scenarios.shed_throttle:head_dropping_throttle"]
    assert (easy["zoo"], hard["zoo"]) == ("easy", "hard")
    assert easy["random"]["missed"] == 0 and all(1 <= n <= 5 for n in easy["random"]["examples"])
    assert hard["pct"]["missed"] == 2 and hard["pct"]["examples"] == [5, 5]  # a rare window: not within 5 examples
    table = bench.strategies_table(rows, ("random", "pct"))
    assert "| `shed_throttle:head_dropping_throttle` | hard |" in table and "2 missed" in table
    assert "sum of medians, easy zoo" in table and "sum of medians, hard zoo" in table


def test_an_unknown_strategy_is_refused_in_one_line(capsys) -> None:
    bench = _load_bench()
    with pytest.raises(SystemExit) as stop:
        bench.main(["--sections", "strategies", "--strategies", "random,fastest"])
    assert stop.value.code == 2
    assert "unknown strategy fastest" in capsys.readouterr().err
