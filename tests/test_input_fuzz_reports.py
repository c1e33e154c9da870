"""``harness report``, ``harness merge`` and the example database, fuzzed like failure files are.

Clean means exit 0, 1 or 2 (130 for a merged interrupted summary), never an
internal error (3) or an escaping exception, no traceback, exactly one line
on stderr for 2; a page written from a fuzzed summary holds no markup from
it (no ``<script``) and keeps its script-forbidding Content-Security-Policy.
The default run tries a modest number of inputs; the ``slow`` tier tries
10,000 of each kind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import hypothesis.database

from harness.cli import main as cli  # the module: main() looks build_parser up there
from harness.cli.main import main
from harness.store.database import SafeDirectoryDatabase
from test_input_fuzz import _paths, change_at  # every path into a JSON tree; one mutation there

BUGGY = "scenarios.pools:double_release_pool"
#: How Hypothesis decodes an example read from its database: ``choices_from_bytes`` since 6.127
#: (``ir_from_bytes`` before); older versions (CI's oldest allowed) store raw buffers, where any bytes do.
decode_example = getattr(hypothesis.database, "choices_from_bytes", None) or getattr(
    hypothesis.database, "ir_from_bytes", lambda value: None
)
SCRIPT = "<script>alert(1)</script>"
QUICK, SLOW = 40, 2_000


def _settings(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        # The same inputs on every run: CI judges the code, not the luck of the draw. To hunt for
        # new crashes, run these tests locally with derandomize=False (fresh inputs every run).
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


hostile_scalars = st.sampled_from(
    [SCRIPT, '"><script>x</script>', "</style><script>", "50%;background:url(x)", "\x1b[2J", "\r", "\ud800",
     -1, 0, 1, 10**12, 10**400, -(10**400), 1e308, -0.0, float("nan"), float("inf"), True, None, [], {}, "12"]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | hostile_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Iterator[Path]:
    """Where the inputs and outputs go: in memory (``/dev/shm``) when the machine has it.

    Each input rewrites the same few files and the harness syncs each page and summary it
    writes; on a disk that is several milliseconds per input (ext4 flushes a file rewritten
    in place), most of the slow tier's 10,000-input time, and not what is being tested.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("fuzz-reports")
        return
    folder = Path(tempfile.mkdtemp(prefix="harness-fuzz-reports-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def valid(workdir: Path) -> dict:
    """A real summary with a failure, exercise counts and coverage, to mutate."""
    out = workdir / "valid.json"
    argv = ["fuzz", BUGGY, "--seed", "4", "--no-regressions", "--report-dir", str(workdir / "reports"),
            "--json", str(out), "--coverage"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 1
    summary = json.loads(out.read_text())
    # Two of the package's ~20 file entries: the same shape to mutate at a tenth of the size, so that
    # copying, mutating and loading each input is cheap and mutations do not mostly land in coverage.
    summary["coverage"]["files"] = summary["coverage"]["files"][:2]
    return summary


_PARSER = cli.build_parser()


def _run(argv: list[str]) -> tuple[int, str, str]:
    """``harness.cli.main.main(argv)`` in this process, with the argument parser built once, not per input."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            mock.patch.object(cli, "build_parser", lambda: _PARSER):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _assert_clean(argv: list[str]) -> int:
    code, _, err = _run(argv)
    assert code in (0, 1, 2, 130), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert err.startswith("harness: error: ") and err.endswith("\n") and err.count("\n") == 1, (argv, err)
    return code


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


def _check_report(content: str | bytes, workdir: Path) -> None:
    source = _write(workdir / "input.json", content)
    page = workdir / "page.html"
    page.unlink(missing_ok=True)
    if _assert_clean(["report", str(source), "-o", str(page)]) == 0:
        html = page.read_text(encoding="utf-8")
        assert "<script" not in html.lower() and "http-equiv=\"Content-Security-Policy\"" in html


def _check_merge(contents: list[str | bytes], workdir: Path) -> None:
    names = [str(_write(workdir / f"merge{i}.json", content)) for i, content in enumerate(contents)]
    out = workdir / "merged.json"
    out.unlink(missing_ok=True)
    if _assert_clean(["merge", *names, "--json", str(out), "--junit", str(workdir / "merged.xml")]) != 2:
        json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"merged summary holds {c}"))


def _mutate(data: Any, draw: Any, paths: list[tuple] | None = None) -> Any:
    """Change one place in ``data`` (``paths``: its paths, when the caller already has them)."""
    path = draw(st.sampled_from(paths if paths is not None else _paths(data)))
    if not path:
        return draw(json_values)
    change_at(data, path, draw(st.sampled_from(["drop", "replace", "hostile", "retype"])), draw, json_values, {"hostile": hostile_scalars})
    return data


@st.composite
def summaries(draw: st.DrawFn, valid: dict) -> str | bytes:
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "value", "bytes", "deep", "shard"]))
    if kind == "value":
        return json.dumps(draw(json_values))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        depth = draw(st.integers(1, 100_000))
        return "[" * depth + "]" * depth
    record = json.loads(json.dumps(valid))
    if kind == "shard":
        record["shard"] = {"index": draw(st.integers(-5, 10**13)), "count": draw(st.integers(-5, 10**13)),
                           "max_examples": None}
    for round_ in range(draw(st.integers(1, 3))):
        # The first change is always to an unchanged copy of ``valid``: its paths are worked out once.
        record = _mutate(record, draw, _valid_paths(valid) if round_ == 0 and kind == "mutated" else None)
    text = json.dumps(record)
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


_PATHS: list[tuple[dict, list[tuple]]] = []  # (valid, its paths): the last one asked for


def _valid_paths(valid: dict) -> list[tuple]:
    if not _PATHS or _PATHS[0][0] is not valid:
        _PATHS[:] = [(valid, _paths(valid))]
    return _PATHS[0][1]


def _report_property(count: int):
    @_settings(count)
    @given(data=st.data())
    def check(data: st.DataObject, valid: dict, workdir: Path) -> None:
        _check_report(data.draw(summaries(valid)), workdir)

    return check


def _merge_property(count: int):
    @_settings(count)
    @given(data=st.data())
    def check(data: st.DataObject, valid: dict, workdir: Path) -> None:
        contents = [data.draw(summaries(valid)) for _ in range(data.draw(st.integers(1, 3)))]
        if data.draw(st.booleans()):
            contents.append(json.dumps(valid))
        _check_merge(contents, workdir)

    return check


# -- the example database ---------------------------------------------------------------------

entries = st.one_of(
    st.tuples(st.just("file"), st.binary(max_size=300)),
    st.tuples(st.just("fifo"), st.none()),
    st.tuples(st.just("dir"), st.none()),
    st.tuples(st.just("link"), st.sampled_from(["/dev/zero", "/nonexistent", "/dev/null", "."])),
)


def _fill(folder: Path, contents: list[tuple[str, Any]]) -> None:
    if folder.exists():
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                child.rmdir()
            else:
                child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for index, (kind, value) in enumerate(contents):
        path = folder / f"e{index}"
        if kind == "file":
            path.write_bytes(value)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        else:
            path.symlink_to(value)


def _database_property(count: int):
    @_settings(count)
    @given(contents=st.lists(entries, max_size=6))
    def check(contents: list[tuple[str, Any]], workdir: Path) -> None:
        database = SafeDirectoryDatabase(str(workdir / "db"))
        key = b"fuzzed"
        _fill(database._key_path(key), contents)
        values = list(database.fetch(key))  # never blocks on a FIFO, never reads /dev/zero
        assert len(values) <= sum(1 for kind, _ in contents if kind == "file")
        for value in values:
            decode_example(value)  # what Hypothesis does with each: garbage decodes to None, never raises

    return check


test_fuzzed_summaries_given_to_report = _report_property(QUICK)
test_fuzzed_summaries_given_to_merge = _merge_property(QUICK)
test_fuzzed_example_database_directories = _database_property(QUICK)
test_fuzzed_summaries_given_to_report_2000 = pytest.mark.slow(_report_property(SLOW))
test_fuzzed_summaries_given_to_merge_2000 = pytest.mark.slow(_merge_property(SLOW))
test_fuzzed_example_database_directories_2000 = pytest.mark.slow(_database_property(SLOW))


def test_a_campaign_over_a_hostile_database_directory_finishes(workdir: Path) -> None:
    """The whole path: fuzz with a shared database whose entries are a FIFO, /dev/zero and garbage."""
    location = workdir / "shared-db"
    argv = ["fuzz", BUGGY, "--seed", "4", "--database", str(location), "--no-regressions",
            "--report-dir", str(workdir / "db-reports")]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 1  # creates the key directories
    folders = [folder for folder in location.glob("*/*") if folder.is_dir()]
    assert folders
    for folder in folders:  # beside the saved examples of every Hypothesis key
        os.mkfifo(folder / "hostile-fifo")
        (folder / "hostile-zero").symlink_to("/dev/zero")
        (folder / "hostile-garbage").write_bytes(b"\x00garbage")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 1


@pytest.mark.parametrize("count", [10**400, -(10**400)], ids=["huge", "huge-negative"])
def test_a_400_digit_count_is_drawn_not_an_internal_error(count: int, valid: dict, workdir: Path) -> None:
    """Found by the slow tier: ``math.isfinite`` overflows on such an int, which the schema allows."""
    summary = json.loads(json.dumps(valid))
    summary["exercised"]["examples"] = count
    summary["exercised"]["invariants"]["concurrency.limit"] = abs(count)
    assert _assert_clean(["report", str(_write(workdir / "huge.json", json.dumps(summary))),
                          "-o", str(workdir / "huge.html")]) in (0, 2)


@pytest.mark.parametrize("field", ["search_seconds", "shrink_seconds"])
def test_a_number_too_large_for_a_float_is_refused_in_one_line(valid: dict, workdir: Path, field: str) -> None:
    """Found by the 10,000-input fuzz: a JSON integer past the float range crashed the report's drawing."""
    crafted = json.loads(json.dumps(valid))
    crafted["failures"][0]["detected"][field] = 10**400
    source = _write(workdir / "huge.json", json.dumps(crafted))
    assert _assert_clean(["report", str(source), "-o", str(workdir / "huge.html")]) == 2
    assert _assert_clean(["merge", str(source)]) == 2


@pytest.mark.parametrize(
    ("place", "value"),
    [(("examples",), 10**400), (("coverage", "files", 1, "file"), "\ud800"), (("exercised", "invariants"), {"\ud800": 1})],
)
def test_values_report_and_merge_cannot_write_are_refused_in_one_line(valid: dict, workdir: Path, place: tuple, value: Any) -> None:
    """Found by the 10,000-input fuzz: a 400-digit count crashed merge (float overflow), and a lone
    surrogate crashed writing the page (UTF-8 has none); each is now a one-line error, exit 2."""
    crafted = json.loads(json.dumps(valid))
    parent = crafted
    for step in place[:-1]:
        parent = parent[step]
    parent[place[-1]] = value
    source = _write(workdir / "unwritable.json", json.dumps(crafted))
    assert _assert_clean(["report", str(source), "-o", str(workdir / "unwritable.html")]) == 2
    assert _assert_clean(["merge", str(source)]) == 2
