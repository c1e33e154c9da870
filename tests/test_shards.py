"""Shards split one campaign deterministically; ``harness merge`` puts their summaries back together."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from harness.cli.main import main
from harness.search.shard import Shard, piece_seed, share
from harness.output.summary import schema

BUGGY = "scenarios.pools:double_release_pool"
CORRECT = "scenarios.pools:semaphore_pool"


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _summary(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def _valid(summary: dict) -> dict:
    jsonschema.validate(summary, schema(), cls=jsonschema.Draft202012Validator)
    return summary


def _shard(target: str, shard: str, *argv: str, name: str | None = None) -> dict:
    out = name or f"shard-{shard.replace('/', '-')}.json"
    code = main(["fuzz", target, "--shard", shard, "--no-database", "--report-dir", out + ".d", "--json", out, *argv])
    summary = _valid(_summary(out))
    assert code == summary["exit_code"]
    return summary


# -- the split ----------------------------------------------------------------------


def test_shares_add_up_to_the_total_and_differ_by_at_most_one() -> None:
    for total, parts in ((1000, 3), (7, 7), (10, 4), (5, 1)):
        shares = [share(total, parts, index) for index in range(parts)]
        assert sum(shares) == total and max(shares) - min(shares) <= 1
    assert share(None, 3, 0) is None


def test_shards_split_the_examples_and_search_with_their_own_seeds(capsys) -> None:
    summaries = [_shard(CORRECT, f"{index}/3", "--seed", "11", "--max-examples", "100") for index in (1, 2, 3)]
    assert [s["shard"] for s in summaries] == [
        {"index": 1, "count": 3, "max_examples": 34},
        {"index": 2, "count": 3, "max_examples": 33},
        {"index": 3, "count": 3, "max_examples": 33},
    ]
    assert [s["examples"] for s in summaries] == [34, 33, 33]
    assert all(s["seed"] == 11 for s in summaries)  # the campaign's seed, the one to pass to --seed
    seeds = [s["workers"][0]["seed"] for s in summaries]
    assert seeds == [piece_seed(11, Shard(index, 3), 0) for index in (1, 2, 3)] and seeds[0] == 11
    assert "shard 2/3" in capsys.readouterr().out


def test_a_shard_is_deterministic_for_a_given_seed(capsys) -> None:
    # Shard 1 of 2 with 2000 examples searches as a one-process campaign of seed 9 and 1000 examples.
    first = _shard(BUGGY, "1/2", "--seed", "9", "--max-examples", "2000", name="a.json")
    again = _shard(BUGGY, "1/2", "--seed", "9", "--max-examples", "2000", name="b.json")
    (one,), (two,) = first["failures"], again["failures"]
    assert Path(one["file"]).name == Path(two["file"]).name
    assert Path(one["file"]).read_bytes() == Path(two["file"]).read_bytes()
    assert first["examples"] == again["examples"]
    # Sharding with workers is just as deterministic in what each worker searches.
    with_workers = [_shard(CORRECT, "2/2", "--seed", "5", "--max-examples", "40", "--workers", "2", name=f"w{i}.json")
                    for i in (1, 2)]
    assert with_workers[0]["workers"] == [dict(w, elapsed_seconds=v["elapsed_seconds"])
                                          for w, v in zip(with_workers[1]["workers"], with_workers[0]["workers"])]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shard", "2/4"], "give every shard the same --seed"),
        (["--shard", "0/4", "--seed", "1"], "I must be between 1 and N"),
        (["--shard", "5/4", "--seed", "1"], "I must be between 1 and N"),
        (["--shard", "2", "--seed", "1"], "--shard expects I/N"),
        (["--shard", "a/b", "--seed", "1"], "--shard expects I/N"),
        (["--shard", "1/4", "--seed", "1", "--max-examples", "3"], "use at most 3 shards"),
    ],
)
def test_bad_shards_are_one_line_and_exit_2(argv, message, capsys) -> None:
    assert main(["fuzz", CORRECT, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and message in err and err.count("\n") == 1


# -- merge ---------------------------------------------------------------------------


def test_merge_adds_up_the_shards_and_keeps_every_failure(capsys) -> None:
    shards = [_shard(BUGGY, f"{index}/2", "--seed", "2", "--max-examples", "2000") for index in (1, 2)]
    assert all(s["outcome"] == "failed" for s in shards)
    capsys.readouterr()
    code = main(["merge", "shard-1-2.json", "shard-2-2.json", "--json", "merged.json", "--junit", "merged.xml"])
    assert code == 1
    merged = _valid(_summary("merged.json"))
    assert merged["outcome"] == "failed" and merged["exit_code"] == 1
    assert merged["examples"] == sum(s["examples"] for s in shards)
    assert merged["shrink_runs"] == sum(s["shrink_runs"] for s in shards)
    assert merged["elapsed_seconds"] == max(s["elapsed_seconds"] for s in shards)
    assert merged["failures"] == shards[0]["failures"] + shards[1]["failures"]  # each shard's own file
    assert merged["stopped_by"] == "max-failures"
    assert merged["limits"] == shards[0]["limits"]  # shards share their campaign's limits
    assert [(m["file"], m["shard"], m["seed"]) for m in merged["merged"]] == [
        ("shard-1-2.json", "1/2", 2),
        ("shard-2-2.json", "2/2", 2),
    ]
    assert [w["index"] for w in merged["workers"]] == [0, 1]
    assert merged["invariants"] == shards[0]["invariants"]
    out = capsys.readouterr().out
    assert "merged 2 summaries of scenarios.pools:double_release_pool (shards 1/2, 2/2; seed 2)" in out
    assert "FAIL concurrency.limit" in out and "replay: harness replay " in out
    suite = ET.parse("merged.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1"
    assert suite.find("testcase[@name='concurrency']/failure").get("type") == "concurrency.limit"
    assert suite.find("testcase[@name='cancellation']/skipped") is None  # it held, across the shards


def test_merge_lists_a_regression_failing_in_every_shard_once(capsys) -> None:
    assert main(["fuzz", BUGGY, "--seed", "2", "--save-regression", "--no-database", "--report-dir", "found"]) == 1
    shards = [_shard(BUGGY, f"{index}/2", "--seed", "8") for index in (1, 2)]
    assert all(s["failures"][0]["source"] == "regression" for s in shards)
    capsys.readouterr()
    assert main(["merge", "shard-1-2.json", "shard-2-2.json", "--json", "m.json"]) == 1
    merged = _valid(_summary("m.json"))
    assert merged["failures"] == shards[0]["failures"] and merged["regressions"]["replayed"] == 1


def test_merge_of_clean_shards_exits_0_and_notes_a_missing_shard(capsys) -> None:
    _shard(CORRECT, "1/3", "--seed", "4", "--max-examples", "30")
    _shard(CORRECT, "3/3", "--seed", "4", "--max-examples", "30")
    capsys.readouterr()
    assert main(["merge", "shard-1-3.json", "shard-3-3.json", "--json", "m.json"]) == 0
    merged = _valid(_summary("m.json"))
    assert merged["outcome"] == "clean" and merged["examples"] == 20
    assert "harness: note: shard 2/3 missing: merged 2 of 3" in capsys.readouterr().err


def test_merge_of_unsharded_campaigns_from_several_hosts_adds_their_budgets(capsys) -> None:
    for seed in ("1", "2"):
        assert main(["fuzz", CORRECT, "--seed", seed, "--max-examples", "10", "--json", f"host{seed}.json"]) == 0
    assert main(["merge", "host1.json", "host2.json", "--json", "m.json"]) == 0
    merged = _valid(_summary("m.json"))
    assert merged["examples"] == 20 and merged["limits"]["max_examples"] == 20
    assert "different seeds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.json": "not json"}, "is not valid JSON"),
        ({"a.json": json.dumps({"format": "something-else"})}, "is not a harness summary"),
        ({"a.json": json.dumps({"format": "harness-summary", "version": 99})}, "upgrade it"),
        ({"a.json": json.dumps({"format": "harness-summary", "version": 1, "target": "x"})}, "lacks seed"),
        ({}, "does not exist"),
    ],
)
def test_merge_refuses_what_is_not_a_summary_with_one_line(files, message, capsys) -> None:
    for name, text in files.items():
        Path(name).write_text(text)
    assert main(["merge", "a.json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and message in err and err.count("\n") == 1


def test_merge_refuses_summaries_that_are_not_one_campaign(capsys) -> None:
    _shard(CORRECT, "1/2", "--seed", "4", "--max-examples", "10")
    _shard(CORRECT, "2/2", "--seed", "5", "--max-examples", "10")
    _shard(CORRECT, "1/2", "--seed", "4", "--max-examples", "10", name="again.json")
    assert main(["fuzz", BUGGY, "--seed", "1", "--max-examples", "5", "--json", "other.json"]) in (0, 1)
    capsys.readouterr()
    for argv, message in (
        (["shard-1-2.json", "other.json"], "different targets"),
        (["shard-1-2.json", "shard-2-2.json"], "are not shards of one campaign"),
        (["shard-1-2.json", "again.json"], "shard 1/2 is given twice"),
    ):
        assert main(["merge", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("harness: error: ") and message in err and err.count("\n") == 1, err
