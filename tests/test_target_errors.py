"""Errors of the target's own construction or stop(): exit 2 in one line, apart from violations, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

import robust_targets
from harness import CampaignConfig, TargetError, run_campaign
from harness.cli.main import main
from scenarios.pools import double_release_pool

BUGGY = "scenarios.pools:double_release_pool"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("robust_targets:bad_stop", "harness: error: the subject's stop() raised OSError: stop failed"),
        ("robust_targets:failing_build", "harness: error: the target's build(clock) raised ValueError: no pool today"),
        ("robust_targets:exiting", "harness: error: the target raised SystemExit(3) in build(clock)"),
    ],
)
def test_construction_and_stop_errors_exit_2_in_one_line(target, message, tmp_path, capsys) -> None:
    assert main(["fuzz", target, "--seed", "1", "--max-examples", "20", "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_a_target_error_leaves_hypothesis_at_once_unwrapped_and_unshrunk(tmp_path) -> None:
    before = next(robust_targets.builds)
    with pytest.raises(TargetError, match=r"^the target's build\(clock\) raised ValueError: no pool today$"):
        run_campaign(robust_targets.failing_build, "robust_targets:failing_build", CampaignConfig(seed=1, report_dir=str(tmp_path)))
    assert next(robust_targets.builds) == before + 2  # one build, no shrinking


def test_replaying_a_file_against_a_target_whose_stop_raises_exits_2(tmp_path, capsys) -> None:
    (finding,) = run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=4, report_dir=str(tmp_path))).findings
    data = json.loads(finding.path.read_text())
    finding.path.write_text(json.dumps({**data, "target": "robust_targets:bad_stop"}))
    assert main(["replay", str(finding.path)]) == 2
    err = capsys.readouterr().err
    assert "stop() raised OSError: stop failed" in err and err.count("\n") == 1


def test_what_was_found_before_a_target_error_is_kept_and_reported(tmp_path, monkeypatch, capsys) -> None:
    # A regression file that still fails, then a schedule with a hanging job makes stop() raise.
    (finding,) = run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=4, report_dir=str(tmp_path))).findings
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    data = json.loads(finding.path.read_text())
    (corpus / "known.json").write_text(json.dumps({**data, "target": "robust_targets:fragile"}))
    monkeypatch.chdir(tmp_path)
    argv = ["fuzz", "robust_targets:fragile", "--seed", "1", "--regressions", "corpus", "--max-failures", "2"]
    assert main([*argv, "--json", "summary.json", "--junit", "junit.xml"]) == 2
    captured = capsys.readouterr()
    assert "FAIL concurrency.limit (regression" in captured.out
    assert captured.err.startswith("harness: error: the subject's stop() raised RuntimeError: cannot stop while a job runs")
    summary = json.loads(Path("summary.json").read_text())
    assert summary["outcome"] == "error" and summary["exit_code"] == 2 and summary["stopped_by"] == "error"
    assert summary["error"].startswith("the subject's stop() raised RuntimeError")
    assert [f["source"] for f in summary["failures"]] == ["regression"]
    suite = ET.parse("junit.xml").getroot().find("testsuite")
    assert suite.get("errors") == "1" and suite.get("failures") == "1"
    assert "stop() raised" in suite.find("testcase[@name='target']/error").get("message")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("import sys\nsys.exit(4)\n", "raised SystemExit at {path}, line 2: 4"),
        ("def __getattr__(name):\n    raise RuntimeError('lazy attribute broke')\n", "raised RuntimeError: lazy attribute broke"),
    ],
)
def test_a_target_module_that_exits_or_breaks_on_access_is_a_target_error(body, message, tmp_path, monkeypatch, capsys) -> None:
    name = f"odd_module_{abs(hash(body)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["fuzz", f"{name}:target", "--max-examples", "5", "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message.format(path=tmp_path / f"{name}.py") in err and err.count("\n") == 1


MODULE_WITH_A_REFUSED_TARGET = """\
from harness import Target


class Pool:
    def __init__(self, clock):
        self.clock = clock

    def submit(self, job):
        return job()


good = Target(build=Pool, limit=1)
bad = Target(
    build=Pool,
    shared=True,
)
"""


def test_a_refused_target_is_named_by_the_place_of_its_call(tmp_path, monkeypatch, capsys) -> None:
    """Review 7, finding 5: a Target(...) refused at import stops every target of its module, so the error
    says where the refused call is (the line its call starts on, relative to the current directory), not
    only the target asked for; the harness's own frames (``__post_init__``) are not the place."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "refused_targets.py").write_text(MODULE_WITH_A_REFUSED_TARGET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["fuzz", "pkg.refused_targets:good", "--max-examples", "5", "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    place = f"raised TargetError at {Path('pkg', 'refused_targets.py')}, line 13: Target key_limit, shared"
    assert place in err and "for target 'pkg.refused_targets:good'" in err and err.count("\n") == 1, err
