"""What a hostile or careless user found after the package re-layout (docs/reviews/hostile-inputs.md): each a regression test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import CampaignConfig, run_campaign
from harness.cli.main import main
from scenarios.pools import double_release_pool

BUGGY = "scenarios.pools:double_release_pool"

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real failure file of the buggy pool (``concurrency.limit``), found once for the module."""
    folder = tmp_path_factory.mktemp("reports")
    (finding,) = run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=4, report_dir=str(folder))).findings
    return json.loads(finding.path.read_text())


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- a replay never calls "fixed" an invariant it did not check ----------------------------


@pytest.mark.parametrize(
    "invariant",
    [
        "concurrency.limitt",  # misspelt, or renamed by another harness version
        "time.timeout",  # a real invariant, but the pool declares no timeout_ms
        "user.gone",  # a user invariant the target no longer has
        "x",
    ],
)
def test_replay_refuses_an_invariant_the_target_is_not_checked_for(
    record: dict, invariant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "renamed.json"
    path.write_text(json.dumps({**record, "invariant": invariant}))
    # Before: "no longer fails: ... holds on this schedule", exit 0, for a bug that is still there.
    assert main(["replay", str(path)]) == 2
    err = _one_line_error(capsys)
    assert f"records invariant {invariant!r}, which {BUGGY} is not checked for" in err
    assert "concurrency.limit" in err  # what it is checked for


def test_replay_of_the_unedited_file_still_reproduces(record: dict, tmp_path: Path, capsys) -> None:
    path = tmp_path / "same.json"
    path.write_text(json.dumps(record))
    assert main(["replay", str(path)]) == 1
    assert "reproduced exactly" in capsys.readouterr().out


def test_a_regression_item_with_an_unchecked_invariant_fails_in_one_line(
    pytester: pytest.Pytester, record: dict
) -> None:
    directory = pytester.path / "harness-regressions"
    directory.mkdir()
    (directory / "renamed.json").write_text(json.dumps({**record, "invariant": "concurrency.limitt"}))
    result = pytester.runpytest("-p", "no:twisted", "-p", "no:cacheprovider")
    # Before: the item passed, as if the bug were fixed.
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["regression file harness-regressions/renamed.json: the file records invariant 'concurrency.limitt', *"]
    )


# -- numbers the summary could not hold are refused before the campaign ---------------------


@pytest.mark.parametrize(
    "option, value",
    [
        ("--seed", str(2**63)),
        ("--seed", "9" * 40),
        ("--max-examples", str(2**63)),
        ("--max-failures", "9" * 23),
    ],
)
def test_a_seed_or_count_past_64_bits_is_refused_up_front(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "s.json"
    argv = ["fuzz", BUGGY, option, value, "--no-regressions", "--no-database", "--json", str(summary)]
    argv += ["--report-dir", str(tmp_path / "r"), "--max-examples", "3"] if option != "--max-examples" else []
    # Before: the campaign ran and wrote a summary that harness merge and harness report refused.
    assert main(argv) == 2
    assert "must be below 2**63" in _one_line_error(capsys)
    assert not summary.exists()


def test_the_largest_seed_writes_a_summary_merge_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "s.json"
    argv = ["fuzz", BUGGY, "--seed", str(2**63 - 1), "--max-examples", "3", "--no-regressions"]
    assert main([*argv, "--json", str(summary), "--report-dir", str(tmp_path / "r")]) in (0, 1)
    capsys.readouterr()
    assert main(["merge", str(summary)]) in (0, 1)
    assert "harness: error" not in capsys.readouterr().err


# -- a JSON error says what is wrong and what to do, not "it may be truncated" for everything ------


@pytest.mark.parametrize(
    "text, said",
    [
        ("\ufeff{}", "(it starts with a byte order mark); save it as UTF-8 without one"),
        ("[" * 100_000 + "]" * 100_000, "(nested too deeply); it is not a file the harness wrote"),
        ('{"seed": ' + "9" * 5000 + "}", "(an integer of thousands of digits); it is not a file the harness wrote"),
        ('{"format": "harness-fail', "; it may be truncated"),
    ],
)
def test_json_errors_name_the_problem_and_the_fix(text: str, said: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "f.json"
    path.write_text(text, encoding="utf-8")
    for argv in (["show", str(path)], ["merge", str(path)], ["report", str(path), "-o", str(tmp_path / "r.html")]):
        assert main(argv) == 2
        err = _one_line_error(capsys)
        assert "is not valid JSON (" in err and said in err, err
        # Before: "...(Unexpected UTF-8 BOM ...); it may be truncated", "... use sys.set_int_max_str_digits()".
        assert "set_int_max_str_digits" not in err


def test_nan_in_a_summary_is_not_called_a_truncation(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"format": "harness-summary", "version": 1, "seed": NaN}')
    assert main(["merge", str(path)]) == 2
    err = _one_line_error(capsys)
    assert "(NaN is not JSON); it is not a file the harness wrote" in err


@pytest.mark.parametrize(
    "option, example", [("--report-dir", "reports"), ("--regressions", "harness-regressions")]
)
def test_a_file_given_as_a_directory_is_refused_with_that_option_s_example(
    option: str, example: str, tmp_path: Path, capsys
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["fuzz", BUGGY, option, str(afile), "--max-examples", "1"]) == 2
    # Before: "--regressions '...afile' is not a directory; give a directory such as reports".
    assert f"{option} {str(afile)!r} is not a directory; give a directory such as {example}" in _one_line_error(capsys)


# -- the pytest plugin: a report directory that cannot hold the failure ------------------------

FUZZ_BUGGY = f"""
from harness.pytest import fuzz

@fuzz("{BUGGY}")
def test_buggy_pool():
    "The hand-rolled pool keeps its limit."
"""


def test_a_report_dir_that_is_a_file_stops_the_session_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pools=FUZZ_BUGGY)
    (pytester.path / "afile").write_text("")
    result = pytester.runpytest("-p", "no:twisted", "--harness-report-dir", "afile/sub")
    # Before: the campaign ran, found the bug, then failed the test with "cannot write ...", the failure lost.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --harness-report-dir / harness_report_dir '*afile/sub' is not a directory ('*afile' is a file)*"])


def test_a_failure_the_plugin_cannot_save_is_still_the_test_s_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pools=FUZZ_BUGGY)
    (pytester.path / "rep").mkdir()
    (pytester.path / "rep" / "failures").write_text("")  # the directory is fine, its failures/ is a file
    result = pytester.runpytest("-p", "no:twisted", "--harness-report-dir", "rep", "--harness-seed", "15")
    result.assert_outcomes(failed=1)
    # Before: only "harness: cannot write 'rep/failures/<id>.json': Not a directory; ...", no timeline.
    result.stdout.fnmatch_lines(["FAIL concurrency.limit: *", "minimal schedule: *", "not saved: cannot write *"])
    assert "During handling of the above exception" not in result.stdout.str()


# -- an output that is an input, or another output, is refused before anything is written ------


def test_an_output_that_is_an_input_or_another_output_is_refused(record: dict, tmp_path: Path, capsys) -> None:
    failure = tmp_path / "f.json"
    failure.write_text(json.dumps(record))
    link = tmp_path / "link.json"
    link.symlink_to(failure)
    before = failure.read_text()
    for argv, said in [
        # Before: the failure file was replaced by the HTML page.
        (["report", str(failure), "-o", str(failure)], f"-o {str(failure)!r} is the input"),
        (["report", str(failure), "-o", str(link)], f"-o {str(link)!r} is the input"),
        (["merge", str(failure), "--json", str(failure)], f"--json {str(failure)!r} is the input"),
        # Before: the JSON summary was replaced by the JUnit XML.
        (["fuzz", BUGGY, "--json", str(tmp_path / "o"), "--junit", str(tmp_path / "o")], "is also the --json output"),
        (["fuzz", BUGGY, "--json", str(tmp_path / "report.html"), "--html", "--report-dir", str(tmp_path)],
         "is also the --json output"),
    ]:
        assert main(argv) == 2
        assert said in _one_line_error(capsys)
    assert failure.read_text() == before


def test_dev_null_may_take_every_output(tmp_path: Path, capsys) -> None:
    argv = ["fuzz", BUGGY, "--max-examples", "2", "--seed", "1", "--no-regressions", "--report-dir", str(tmp_path)]
    assert main([*argv, "--json", "/dev/null", "--junit", "/dev/null"]) in (0, 1)
    assert "harness: error" not in capsys.readouterr().err
