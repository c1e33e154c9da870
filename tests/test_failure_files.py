"""Failure files from someone else: refused in one line when wrong, and never a way to run other code."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import pytest

import harness.store.failure_file
from harness import CampaignConfig, FailureFileError, run_campaign
from harness.cli.main import main
from harness.store.failure_file import load
from scenarios.pools import double_release_pool

BUGGY = "scenarios.pools:double_release_pool"


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("reports")
    (finding,) = run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=4, report_dir=str(folder))).findings
    return json.loads(finding.path.read_text())


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "failure.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- security -------------------------------------------------------------------


@pytest.fixture
def sneaky(tmp_path, monkeypatch) -> tuple[str, Path]:
    """A module that leaves a mark when imported, and a class that leaves one when instantiated."""
    name = f"sneaky_{uuid.uuid4().hex[:8]}"
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / f"{name}.py").write_text(
        "from pathlib import Path\n"
        f"MARKS = Path({str(marks)!r})\n"
        "(MARKS / 'imported').touch()\n"
        "class Payload:\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        (MARKS / 'instantiated').touch()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marks
    sys.modules.pop(name, None)


def test_loading_and_showing_a_file_imports_nothing(valid, sneaky, tmp_path, capsys) -> None:
    name, marks = sneaky
    path = _write(tmp_path, {**valid, "target": f"{name}:Payload"})
    assert load(path).target == f"{name}:Payload"
    assert main(["show", str(path)]) == 0
    assert name not in sys.modules and not any(marks.iterdir())


def test_a_file_naming_another_class_is_refused_and_nothing_is_instantiated(valid, sneaky, tmp_path, capsys) -> None:
    name, marks = sneaky
    path = _write(tmp_path, {**valid, "target": f"{name}:Payload"})
    assert main(["replay", str(path)]) == 2
    assert "is a type, not a harness.Target" in _one_line_error(capsys)
    assert not (marks / "instantiated").exists()  # imported because the file names it as the target, never called


def test_a_file_naming_a_function_of_another_module_is_refused(valid, tmp_path, capsys) -> None:
    path = _write(tmp_path, {**valid, "target": "os:system"})
    assert main(["replay", str(path)]) == 2
    assert "'os:system' is a builtin_function_or_method, not a harness.Target" in _one_line_error(capsys)


@pytest.mark.parametrize("error", ["os.system", "subprocess:Popen", "__import__('os').system", "", "a b"])
def test_an_exception_given_as_a_path_or_expression_is_refused_at_load(valid, error, tmp_path, capsys) -> None:
    data = json.loads(json.dumps(valid))
    data["schedule"]["ops"][0]["spec"]["error"] = error
    path = _write(tmp_path, data)
    for command in ("show", "replay"):
        assert main([command, str(path)]) == 2
        assert "job error must be an exception name" in _one_line_error(capsys)


@pytest.mark.parametrize("error", ["SystemExit", "KeyboardInterrupt", "Exception", "Popen"])
def test_an_exception_name_the_target_does_not_declare_is_refused_at_replay(valid, error, tmp_path, capsys) -> None:
    data = json.loads(json.dumps(valid))
    data["schedule"]["ops"][0]["spec"]["error"] = error
    path = _write(tmp_path, data)
    assert main(["replay", str(path)]) == 2
    err = _one_line_error(capsys)
    assert f"injects {error!r}, which is neither a built-in error nor one that {BUGGY} declares" in err


@pytest.mark.parametrize("target", ["os.system", "a:b:c", "../x:y", "x:", ":y", "pkg.mod:attr()"])
def test_a_target_that_is_not_a_module_attribute_string_is_refused_at_load(valid, target, tmp_path, capsys) -> None:
    assert main(["show", str(_write(tmp_path, {**valid, "target": target}))]) == 2
    assert "field 'target' must name a target as 'package.module:attribute'" in _one_line_error(capsys)


# -- corrupt, truncated, foreign, newer ----------------------------------------------


def _variants(valid: dict) -> dict[str, tuple[object, str]]:
    text = json.dumps(valid)

    def edited(change) -> dict:
        data = json.loads(text)
        change(data)
        return data

    return {
        "truncated": (text[: len(text) // 2], "is not valid JSON"),
        "empty": ("", "is not valid JSON"),
        "null": ("null", "is not a harness failure file"),
        "foreign": ({"format": "junit", "version": 1}, "is not a harness failure file"),
        "newer": ({**valid, "version": 2}, "written by a newer harness: upgrade"),
        "version true": ({**valid, "version": True}, "has format version True"),
        "schedule newer": (edited(lambda d: d["schedule"].update(version=7)), "schedule version 7 is not supported"),
        "digits": (text.replace('"seed": ', '"seed": ' + "9" * 5000 + ", \"x\": ", 1), "is not valid JSON"),
        "huge delay": (edited(lambda d: d["schedule"]["ops"][0]["spec"].update(after_ms=10**400)), "job after_ms must be"),
        "huge time": (edited(lambda d: d["schedule"]["ops"][0].update(at=10**13)), "operation time must be"),
        "negative job": (edited(lambda d: d["schedule"]["ops"][0].update(job=-1)), "job id must be"),
        "op unhashable": (edited(lambda d: d["schedule"]["ops"][0].update(op=["submit"])), "schedule op ['submit'] is unknown"),
        "nested": ("[" * 100_000 + "]" * 100_000, "is not valid JSON"),
        "surrogate": (text.replace('"message": "', '"message": "\\ud800', 1), "holds an invalid Unicode escape"),
        "bom": ("\ufeff" + text, "is not valid JSON"),
        "nan": (text.replace('"seed": 4', '"seed": NaN', 1), "field 'seed' must be an integer"),
        "altered": (edited(lambda d: d["trace"][0].__setitem__(4, "edited")), "does not match its trace_hash"),
        "long string": ({**valid, "invariant": ["x" * 10_000]}, "field 'invariant' must be a string"),
    }


@pytest.mark.parametrize(
    "variant",
    ["truncated", "empty", "null", "foreign", "newer", "version true", "schedule newer", "digits", "huge delay",
     "huge time", "negative job", "op unhashable", "nested", "surrogate", "bom", "nan", "altered", "long string"],
)
def test_a_bad_file_is_one_line_and_exit_2(valid, variant, tmp_path, capsys) -> None:
    content, message = _variants(valid)[variant]
    path = _write(tmp_path, content)
    for command in ("show", "replay"):
        assert main([command, str(path)]) == 2
        err = _one_line_error(capsys)
        assert message in err, err
        assert len(err) < 600  # bounded, whatever the file holds


def test_what_is_not_a_regular_file_is_refused_without_reading_it(tmp_path, capsys) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # reading it would block forever
    for path in (fifo, tmp_path):
        assert main(["show", str(path)]) == 2
        assert "is not a regular file" in _one_line_error(capsys)


def test_a_file_larger_than_any_failure_file_is_refused(valid, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(harness.store.failure_file, "MAX_BYTES", 1000)
    assert main(["show", str(_write(tmp_path, valid))]) == 2
    assert "more than the 1000 a failure file can be" in _one_line_error(capsys)


def test_unknown_keys_are_ignored(valid, tmp_path, capsys) -> None:
    assert main(["show", str(_write(tmp_path, {**valid, "added_later": {"x": 1}}))]) == 0


def test_show_escapes_control_characters_from_the_file(valid, tmp_path, capsys) -> None:
    data = json.loads(json.dumps(valid))
    data["message"] = "boom\x1b[2J\nsecond line"
    data["trace"][0][4] = "\x1b]0;title\x07"
    from harness.model.trace import digest_lines

    data["trace_hash"] = digest_lines([f"{t} {k} {j}.{a} {d}" for t, k, j, a, d in data["trace"]])
    assert main(["show", str(_write(tmp_path, data))]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "boom\\x1b[2J\\nsecond line" in out


def test_load_error_is_a_failure_file_error(tmp_path) -> None:
    with pytest.raises(FailureFileError, match="does not exist"):
        load(tmp_path / "missing.json")
