"""The pytest plugin as a user's suite meets it: run from the outside with ``pytester``.

Each test writes a small test module into a fresh directory and runs pytest
on it, with the plugin loaded from its installed entry point as in a user's
project: in a subprocess where xdist or pytest-twisted take part, in this
process otherwise (it is quicker). Example counts are small, and the buggy
pool is fuzzed with a seed that finds its bug early.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

#: pytest 9 shows a string longrepr (the plugin's violation report) in the short summary line.
PYTEST_9 = int(pytest.__version__.split(".")[0]) >= 9

from harness import CampaignConfig, load_target, run_campaign
from harness.store import failure_file

pytest_plugins = ["pytester"]

CORRECT = "scenarios.pools:semaphore_pool"
BUGGY = "scenarios.pools:double_release_pool"
#: A seed under which the buggy pool's campaign finds the bug early (about 130 examples with shrinking);
#: if schedule generation changes, pick another with a small search over seeds.
FINDS = ["--harness-seed", "15", "--harness-max-examples", "200"]

CORRECT_TEST = f"""
from harness.pytest import fuzz

@fuzz("{CORRECT}")
def test_correct_pool():
    "The semaphore pool keeps its limit."
"""
FUZZ_TESTS = CORRECT_TEST + f"""
@fuzz("{BUGGY}")
def test_buggy_pool():
    "The hand-rolled pool runs one job too many after a failure."
"""


def run_inline(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in this process, which is quicker than a subprocess.

    Without pytest-twisted: it keeps one reactor greenlet per process, already
    taken by the outer run. Runs that need it, or xdist, use a subprocess.
    """
    return pytester.runpytest("-p", "no:twisted", *args)


def _examples(output: str, target: str = CORRECT) -> list[int]:
    """Example counts from the harness sections that ``-rP`` prints for passing fuzz tests."""
    return [int(n) for n in re.findall(re.escape(target) + r": (\d+) examples", output)]


def _seeds(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"examples? in [\d.]+s with seed (\d+)", output)]


# -- one-line tests ------------------------------------------------------------


def test_passing_target_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pools=CORRECT_TEST)
    result = run_inline(pytester, "--harness-max-examples", "30", "-rP")
    result.assert_outcomes(passed=1)
    assert _examples(result.stdout.str()) == [30]
    assert not (pytester.path / "reports").exists()


def test_failing_target_names_invariant_saves_file_and_prints_replay_and_rerun(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pools=FUZZ_TESTS)
    result = pytester.runpytest_subprocess(*FINDS)
    result.assert_outcomes(passed=1, failed=1)
    (saved,) = (pytester.path / "reports" / "failures").glob("*.json")
    relative = saved.relative_to(pytester.path)
    result.stdout.fnmatch_lines(
        [
            "plugins:*twisted*",  # pytest-twisted is installed alongside and active
            "FAIL concurrency.limit: 3 jobs running at * but the limit is 2: *",
            "minimal schedule: * operations; *",
            "trace (>> marks the events that break the invariant):",
            f"saved: {relative}",
            f"replay: harness replay {relative}",
            "rerun: pytest 'test_pools.py::test_buggy_pool' --harness-seed 15 --harness-max-examples 200",
            # pytest 9 puts the violation in the short summary; pytest 8 names the test alone.
            "FAILED test_pools.py::test_buggy_pool" + (" - FAIL concurrency.limit: *" if PYTEST_9 else ""),
        ]
    )
    assert "Traceback" not in result.stdout.str()
    record = failure_file.load(saved)
    assert (record.target, record.invariant, record.seed) == (BUGGY, "concurrency.limit", 15)


def test_target_object_is_named_for_the_failure_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from harness.pytest import fuzz
        from scenarios.pools import double_release_pool

        @fuzz(double_release_pool)
        def test_buggy_pool():
            pass
        """
    )
    result = run_inline(pytester, *FINDS)
    result.assert_outcomes(failed=1)
    (saved,) = (pytester.path / "reports" / "failures").glob("*.json")
    assert failure_file.load(saved).target == BUGGY


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ('"no_such_module_xyz:pool"', "harness: @fuzz test test_pool: cannot import module 'no_such_module_xyz'*"),
        ('"scenarios.pools:nothing"', "harness: @fuzz test test_pool: module 'scenarios.pools' has no attribute 'nothing'*"),
        ('"scenarios.pools"', "harness: @fuzz test test_pool: target 'scenarios.pools' must look like 'package.module:attribute'"),
        ("make_target()", "harness: @fuzz test test_pool: the Target object 'made inside a function' is not *"),
    ],
)
def test_bad_target_is_a_collection_error_naming_it(pytester: pytest.Pytester, target: str, message: str) -> None:
    pytester.makepyfile(
        f"""
        from harness import Target
        from harness.pytest import fuzz

        def make_target():
            return Target(build=lambda clock: None, limit=1, description="made inside a function")

        @fuzz({target})
        def test_pool():
            pass

        def test_unrelated():
            pass
        """
    )
    result = run_inline(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting test_bad_target_is_a_collection_error_naming_it.py*", message])


def test_fuzz_test_with_arguments_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        from harness.pytest import fuzz

        @fuzz("{CORRECT}")
        def test_pool(tmp_path):
            pass
        """
    )
    result = run_inline(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*TypeError: @fuzz test test_pool must take no arguments*"])


# -- options, ini settings and the slow marker ---------------------------------------


def test_header_shows_the_seed_and_where_it_came_from(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nharness_seed = 7\nharness_max_examples = 12\n")
    from_ini = run_inline(pytester)
    from_ini.stdout.fnmatch_lines(["harness: seed 7 (from ini); 12 examples per fuzz test; failures to *"])
    from_option = run_inline(pytester, "--harness-seed", "0x10", "--harness-budget", "2s")
    from_option.stdout.fnmatch_lines(["harness: seed 16 (from option); 12 examples or 2s per fuzz test; *"])
    pytester.makeini("[pytest]\n")
    fresh = run_inline(pytester)
    fresh.stdout.fnmatch_lines(["harness: seed * (fresh; reuse with --harness-seed *); 1000 examples per fuzz test; *"])


def test_ini_settings_take_effect_and_options_override_them(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        harness_seed = 7
        harness_max_examples = 12
        harness_report_dir = out
        """
    )
    pytester.makepyfile(test_pools=FUZZ_TESTS)
    from_ini = run_inline(pytester, "-rP", "-k", "correct")
    from_ini.assert_outcomes(passed=1, deselected=1)
    from_ini.stdout.fnmatch_lines(["harness: seed 7 (from ini); 12 examples per fuzz test; failures to out/failures*"])
    assert _examples(from_ini.stdout.str()) == [12] and _seeds(from_ini.stdout.str()) == [7]

    from_options = run_inline(pytester, "-rP", "-k", "correct", "--harness-max-examples", "5", "--harness-seed", "8")
    assert _examples(from_options.stdout.str()) == [5] and _seeds(from_options.stdout.str()) == [8]

    failing = run_inline(pytester, "-k", "buggy", *FINDS)
    failing.assert_outcomes(failed=1, deselected=1)
    assert list((pytester.path / "out" / "failures").glob("*.json"))


def test_budget_stops_the_campaign(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nharness_budget = 0.3s\n")
    pytester.makepyfile(test_pools=FUZZ_TESTS)
    result = run_inline(pytester, "-rP", "-k", "correct")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["harness: seed * (fresh; reuse with --harness-seed *); 0.3s per fuzz test; *"])
    result.stdout.fnmatch_lines([f"{CORRECT}: * examples in 0.*s with seed *; stopped by budget"])


def test_fresh_seed_is_shown_and_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pools=FUZZ_TESTS)
    result = run_inline(pytester, "-rP", "-k", "correct", "--harness-max-examples", "5")
    header = re.search(r"harness: seed (\d+) \(fresh; reuse with --harness-seed \1\)", result.stdout.str())
    assert header is not None
    assert _seeds(result.stdout.str()) == [int(header.group(1))]


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--harness-max-examples", "0"], "", "*the example count must be at least 1, got 0*"),
        (["--harness-budget", "soon"], "", "*expected seconds such as 60 or 60s, got 'soon'*"),
        (["--harness-seed", "-3"], "", "*a seed must be zero or more, got -3*"),
        ([], "harness_max_examples = many", "*ini setting harness_max_examples = 'many': expected a whole number*"),
    ],
)
def test_bad_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], ini: str, message: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_pools=FUZZ_TESTS)
    result = run_inline(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_slow_marker_sets_its_own_size_and_can_be_deselected(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nharness_max_examples = 6\n")
    pytester.makepyfile(
        f"""
        import pytest
        from harness.pytest import fuzz

        @pytest.mark.harness_slow(max_examples=9)
        @fuzz("{CORRECT}")
        def test_long_campaign():
            pass

        @fuzz("{CORRECT}")
        def test_quick_campaign():
            pass
        """
    )
    result = run_inline(pytester, "-rP", "--strict-markers")
    result.assert_outcomes(passed=2)
    assert sorted(_examples(result.stdout.str())) == [6, 9]
    overridden = run_inline(pytester, "-rP", "--harness-max-examples", "4")
    assert _examples(overridden.stdout.str()) == [4, 4]
    deselected = run_inline(pytester, "-m", "not harness_slow", "--harness-max-examples", "4")
    deselected.assert_outcomes(passed=1, deselected=1)


def test_fuzz_gives_one_test_its_own_size_without_marking_it_slow(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nharness_max_examples = 6\n")
    pytester.makepyfile(
        f"""
        import pytest
        from harness.pytest import fuzz

        @fuzz("{CORRECT}", max_examples=7)
        def test_own_size():
            pass

        @pytest.mark.harness_slow(max_examples=9)
        @fuzz("{CORRECT}", max_examples=7)
        def test_marker_wins():
            pass

        @fuzz("{CORRECT}")
        def test_ini_size():
            pass
        """
    )
    result = run_inline(pytester, "-rP", "--strict-markers", "-m", "not harness_slow")
    result.assert_outcomes(passed=2, deselected=1)  # the own-size test is not slow: it stays selected
    assert sorted(_examples(result.stdout.str())) == [6, 7]
    everything = run_inline(pytester, "-rP")
    assert sorted(_examples(everything.stdout.str())) == [6, 7, 9]
    overridden = run_inline(pytester, "-rP", "--harness-max-examples", "4")
    assert _examples(overridden.stdout.str()) == [4, 4, 4]  # the command line still wins


@pytest.mark.parametrize(
    ("size", "message"),
    [("max_examples=0", "max_examples=0): the example count must be at least 1, got 0"),
     ("budget=-1", "budget=-1): the budget must be more than 0 seconds"),
     ("max_examples=True", "max_examples=True): expected a number, got True")],
)
def test_a_bad_own_size_is_a_collection_error_naming_it(pytester: pytest.Pytester, size: str, message: str) -> None:
    pytester.makepyfile(f"from harness.pytest import fuzz\n\n@fuzz('{CORRECT}', {size})\ndef test_pool():\n    pass\n")
    result = run_inline(pytester)
    result.assert_outcomes(errors=1)
    assert f"ValueError: @fuzz('{CORRECT}', {message}" in result.stdout.str()


def test_options_are_documented_in_help(pytester: pytest.Pytester) -> None:
    result = run_inline(pytester, "--help")
    text = result.stdout.str()
    for name in ("seed", "max-examples", "budget", "report-dir", "regressions"):
        assert f"--harness-{name}=" in text
        assert f"harness_{name.replace('-', '_')} (string):" in text


def test_disabled_plugin_makes_fuzz_tests_fail_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pools=FUZZ_TESTS)
    result = run_inline(pytester, "-p", "no:harness", "-k", "correct")
    result.stdout.fnmatch_lines(["*the harness pytest plugin is not active in this session*"])


# -- fixtures, Hypothesis and pytest-twisted ---------------------------------------------


def test_fixtures_compose_with_given_and_pytest_twisted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import pytest_twisted
        from hypothesis import Phase, given, settings
        from twisted.internet import task

        from harness import FaultClock, Menu, Run, schedules
        from scenarios.pools import double_release_pool

        @settings(max_examples=30, database=None)
        @given(schedules())
        def test_correct_pool_property(harness_runner, schedule):
            run = harness_runner.run("{CORRECT}", schedule)
            assert isinstance(run, Run)
            assert harness_runner.check(run) == []
            harness_runner.assert_ok(run)

        @settings(max_examples=500, database=None, derandomize=True, phases=[Phase.generate, Phase.shrink])
        @given(schedules(Menu(max_ops=8)))
        def test_buggy_pool_property(harness_runner, schedule):
            harness_runner.assert_ok(harness_runner.run(double_release_pool, schedule))

        def test_clock_fixture(harness_clock):
            assert isinstance(harness_clock, FaultClock)
            fired = []
            harness_clock.callLater(1, fired.append, "b")
            harness_clock.callLater(1, fired.append, "a")
            harness_clock.advance(1)
            assert fired == ["b", "a"]

        @pytest_twisted.inlineCallbacks
        def test_twisted_test_still_runs_in_the_reactor():
            from twisted.internet import reactor
            value = yield task.deferLater(reactor, 0, lambda: 42)
            assert value == 42
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*plugins:*twisted*",
            "FAIL concurrency.limit: *",
            "schedule: * operations; *",
            "saved: reports/failures/*.json",
            "replay: harness replay reports/failures/*.json",
            "rerun: pytest 'test_fixtures_compose_with_given_and_pytest_twisted.py::test_buggy_pool_property'",
        ]
    )
    # Only the failure Hypothesis finally reports is saved, not every example it tried while shrinking.
    (saved,) = (pytester.path / "reports" / "failures").glob("*.json")
    assert failure_file.load(saved).target == BUGGY


# -- xdist -----------------------------------------------------------------------------


def test_xdist_workers_share_the_session_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_many=f"""
        from harness.pytest import fuzz

        @fuzz("{CORRECT}")
        def test_a():
            pass

        @fuzz("{CORRECT}")
        def test_b():
            pass

        @fuzz("{CORRECT}")
        def test_c():
            pass

        @fuzz("{CORRECT}")
        def test_d():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-v", "-rP", "--harness-max-examples", "10")
    result.assert_outcomes(passed=4)
    output = result.stdout.str()
    assert {"gw0", "gw1"} <= set(re.findall(r"\[(gw\d)\] .*PASSED", output))
    header = re.search(r"harness: seed (\d+) \(fresh", output)
    assert header is not None
    assert _seeds(output) == [int(header.group(1))] * 4


def test_xdist_failure_prints_a_rerun_line_that_reproduces(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pools=FUZZ_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", *FINDS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "FAIL concurrency.limit: *",
            "replay: harness replay reports/failures/*.json",
            "rerun: pytest 'test_pools.py::test_buggy_pool' --harness-seed 15 --harness-max-examples 200",
        ]
    )
    (saved,) = (pytester.path / "reports" / "failures").glob("*.json")
    saved.unlink()
    alone = pytester.runpytest_subprocess("test_pools.py::test_buggy_pool", *FINDS)
    alone.assert_outcomes(failed=1)
    assert [p.name for p in (pytester.path / "reports" / "failures").glob("*.json")] == [saved.name]


# -- regression files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def buggy_record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real minimal failure of the buggy pool, as failure-file JSON, found once for the module."""
    report_dir = tmp_path_factory.mktemp("reports")
    result = run_campaign(load_target(BUGGY), BUGGY, CampaignConfig(max_examples=200, seed=15, report_dir=str(report_dir)))
    (finding,) = result.findings
    return json.loads(finding.path.read_text())


def _write_regressions(directory: Path, record: dict) -> None:
    """Three regression files: a bug still there, the same schedule against the fixed pool, a corrupt file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "a_still_broken.json").write_text(json.dumps(record))
    (directory / "b_fixed.json").write_text(json.dumps(dict(record, target=CORRECT)))
    (directory / "c_corrupt.json").write_text('{"format": "harness-failure", ')


def test_regression_files_are_collected_one_item_each(pytester: pytest.Pytester, buggy_record: dict) -> None:
    _write_regressions(pytester.path / "harness-regressions", buggy_record)
    pytester.makepyfile(test_pools=CORRECT_TEST)
    result = pytester.runpytest_subprocess("-v", "--harness-max-examples", "5")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "test_pools.py::test_correct_pool PASSED*",
            "harness-regressions/a_still_broken.json::concurrency.limit FAILED*",
            "harness-regressions/b_fixed.json::concurrency.limit PASSED*",
            "harness-regressions/c_corrupt.json::load FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "FAIL concurrency.limit: 3 jobs running at *",
            "reproduced exactly: the bug this regression file records is back",
            "schedule: * operations; *",
            "regression file: harness-regressions/a_still_broken.json",
            "replay: harness replay harness-regressions/a_still_broken.json",
            "rerun: pytest 'harness-regressions/a_still_broken.json::concurrency.limit'",
        ]
    )
    result.stdout.fnmatch_lines(["failure file '*c_corrupt.json' is not valid JSON (*); it may be truncated"])

    # The rerun line runs just that file; naming test files runs just them.
    alone = run_inline(pytester, "harness-regressions/a_still_broken.json::concurrency.limit")
    alone.assert_outcomes(failed=1)
    named = run_inline(pytester, "test_pools.py", "--harness-max-examples", "5")
    named.assert_outcomes(passed=1)
    deselected = run_inline(pytester, "-m", "not harness_regression", "--harness-max-examples", "5")
    deselected.assert_outcomes(passed=1, deselected=3)


def test_regressions_outside_testpaths_are_added_under_xdist(pytester: pytest.Pytester, buggy_record: dict) -> None:
    """The usual layout: tests under ``testpaths``, failure files beside them, added to a whole-suite run."""
    _write_regressions(pytester.path / "saved" / "nested", buggy_record)
    pytester.makeini("[pytest]\ntestpaths = tests\nharness_regressions = saved\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*3 regression file(s) in saved*",
            "*PASSED tests/test_nothing.py::test_nothing*",
            "*FAILED saved/nested/a_still_broken.json::concurrency.limit*",
            "*PASSED saved/nested/b_fixed.json::concurrency.limit*",
            "*FAILED saved/nested/c_corrupt.json::load*",
        ]
    )


def test_regression_naming_a_missing_target_fails_with_one_line(pytester: pytest.Pytester, buggy_record: dict) -> None:
    directory = pytester.path / "harness-regressions"
    directory.mkdir()
    (directory / "gone.json").write_text(json.dumps(dict(buggy_record, target="no_such_module_xyz:pool")))
    result = run_inline(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["regression file harness-regressions/gone.json: cannot import module 'no_such_module_xyz' *"]
    )
