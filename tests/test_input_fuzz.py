"""The harness's own inputs, fuzzed: every failure file and every argument list gives a clean result or a clean error.

Clean means exit 0, 1 or 2, never an internal error (3) or an escaping
exception, no traceback, and for 2 exactly one line on stderr. Targets come
from a fixed list: a fuzzed target string must not import arbitrary modules.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import CampaignConfig, run_campaign
from harness.cli.main import main
from harness.model.trace import digest_lines
from scenarios.pools import double_release_pool

BUGGY = "scenarios.pools:double_release_pool"
#: Targets a fuzzed file or argument list may name: correct, buggy, erroring, not a Target, missing.
TARGETS = (
    "scenarios.pools:semaphore_pool",
    BUGGY,
    "robust_targets:bad_stop",
    "scenarios.pools:SemaphorePool",
    "scenarios.pools:nothing_here",
    "no_such_module_9f3e:target",
    "not a target",
)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    # nested_given exists from Hypothesis 6.130 on; the oldest allowed Hypothesis (CI runs it) has no such check.
    suppress_health_check=[check for check in HealthCheck if check.name in {"too_slow", "nested_given", "data_too_large"}],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("reports")
    (finding,) = run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=4, report_dir=str(folder))).findings
    return json.loads(finding.path.read_text())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-inputs")


def _run(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # --help prints and exits 0, as argparse does
                assert exc.code == 0 and ("--help" in argv or "-h" in argv), (argv, exc.code)
                code = 0
    finally:
        os.chdir(before)
    return code, out.getvalue(), err.getvalue()


def _assert_clean(argv: list[str], cwd: Path) -> int:
    code, _, err = _run(argv, cwd)
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert err.startswith("harness: error: ") and err.endswith("\n") and err.count("\n") == 1, (argv, err)
    return code


def _check_file(content: str | bytes, cwd: Path, replay: bool = True) -> None:
    path = cwd / "fuzzed.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    _assert_clean(["show", str(path)], cwd)
    if replay:
        _assert_clean(["replay", str(path), "--example-timeout", "5"], cwd)


# -- failure files ------------------------------------------------------------------


@FUZZ
@given(value=json_values)
def test_any_json_value_as_a_failure_file(value: Any, workdir: Path) -> None:
    _check_file(json.dumps(value), workdir)


@FUZZ
@given(content=st.binary(max_size=200))
def test_any_bytes_as_a_failure_file(content: bytes, workdir: Path) -> None:
    _check_file(content, workdir)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON tree (keys and indices)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, sub in node.items():
            found += _paths(sub, prefix + (key,))
    elif isinstance(node, list):
        for index, sub in enumerate(node[:6]):
            found += _paths(sub, prefix + (index,))
    return found


def change_at(data: Any, path: tuple, action: str, draw: Any, values: Any, others: dict[str, Any]) -> None:
    """Apply one mutation ``action`` at ``path`` in ``data``: ``drop`` it, ``replace`` it with one of
    ``values`` (a strategy of JSON values), ``retype`` it (a value as its JSON text, a string as a list), or set it to a value
    drawn from ``others[action]`` (the caller's own kinds of hostile value)."""
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1]
    if action == "drop":
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    elif action == "replace":
        parent[key] = draw(values)
    elif action == "retype":
        parent[key] = json.dumps(parent[key]) if not isinstance(parent[key], str) else [parent[key]]
    else:
        parent[key] = draw(others[action])


#: Numbers at the edges of the ranges a failure file's fields allow.
EDGE_NUMBERS = st.sampled_from([-1, 0, 1, 2, 2**31, 2**63, 10**12, 10**13, -(10**13), 10**300, True])


def _mutate(data: Any, draw: Any) -> Any:
    paths = _paths(data)
    schedule = [path for path in paths if path[:1] == ("schedule",)]
    path = draw(st.sampled_from(schedule) if schedule and draw(st.booleans()) else st.sampled_from(paths))
    if not path:
        return draw(json_values)
    change_at(data, path, draw(st.sampled_from(["drop", "replace", "retype", "number"])), draw, json_values, {"number": EDGE_NUMBERS})
    return data


def _sign(record: Any) -> None:
    """Recompute the trace hash of a mutated record whose trace is still well formed."""
    try:
        lines = [f"{t} {k} {j}.{a} {d}" for t, k, j, a, d in record["trace"]]
        record["trace_hash"] = digest_lines(lines)
    except (KeyError, TypeError, ValueError):
        pass


@FUZZ
@given(data=st.data())
def test_mutated_failure_files(data: st.DataObject, valid: dict, workdir: Path) -> None:
    record = json.loads(json.dumps(valid))
    for _ in range(data.draw(st.integers(1, 3))):
        record = _mutate(record, data.draw)
    if data.draw(st.booleans()):
        _sign(record)  # a consistent hash lets the mutated schedule reach the runner
    text = json.dumps(record)
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(text)))
        text = text[:cut] + data.draw(st.text(max_size=5))
    safe = not isinstance(record, dict) or record.get("target") in TARGETS
    if isinstance(record, dict) and "target" in record and not safe and data.draw(st.booleans()):
        record["target"] = data.draw(st.sampled_from(TARGETS))  # replayable, but the rest stays mutated
        text, safe = json.dumps(record), True
    # Only a file naming a known target is replayed: a fuzzed name must not import arbitrary modules.
    _check_file(text, workdir, replay=safe and '"target"' in text or not isinstance(record, dict))


# -- command lines ------------------------------------------------------------------

words = st.text(alphabet="abcxyz019_-.:", min_size=0, max_size=8).filter(lambda s: s not in ("..", "."))
numbers = st.sampled_from(["0", "1", "3", "-1", "1e9", "inf", "nan", "0x10", "1s", "0.001", "99999999999999999999", ""])
options = st.one_of(
    st.tuples(st.sampled_from(["--max-examples", "--max-failures", "--seed", "--budget", "--example-timeout"]), numbers | words),
    st.tuples(st.sampled_from(["--report-dir", "--regressions", "--database", "--json", "--junit"]), words),
    st.tuples(st.sampled_from(["--no-regressions", "--save-regression", "--no-database", "--json", "--help", "-x"])),
).map(list)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(["fuzz", "replay", "show", "list", "frobnicate", "--help"]))
    argv = [command]
    if command == "fuzz":
        argv.append(draw(st.sampled_from(TARGETS) | words.map(lambda w: "9" + w)))  # "9...": never importable
    elif command in ("replay", "show"):
        argv.append(draw(st.sampled_from(["valid.json", "missing.json", "garbage.json", "."]) | words))
    elif command == "list" and draw(st.booleans()):
        argv.append("--json")
    for option in draw(st.lists(options, max_size=4)):
        argv += option
    if command == "fuzz":
        argv += ["--max-examples", "3", "--example-timeout", "5"]  # bounded, whatever came before
    return argv


@FUZZ
@given(argv=command_lines())
def test_any_command_line(argv: list[str], valid: dict, workdir: Path) -> None:
    (workdir / "valid.json").write_text(json.dumps(valid))
    (workdir / "garbage.json").write_text("{\"format\": ")
    _assert_clean(argv, workdir)
