"""The pytest plugin as a user's suite meets it: run from the outside with ``pytester``.

Each test writes a small test module into a fresh directory and runs pytest
on it, with the plugin loaded from its installed entry point as in a user's
project: in a subprocess where xdist or pytest-twisted take part, in this
process otherwise (it is quicker). Example counts are small, and the buggy
pool is fuzzed with a seed that finds its bug early.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def run_inline(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in this process, which is quicker than a subprocess.

    Without pytest-twisted: it keeps one reactor greenlet per process, already
    taken by the outer run. Runs that need it, or xdist, use a subprocess.
    """
    return pytester.runpytest("-p", "no:twisted", *args)


# -- options and ini settings ------------------------------------------------------


def test_header_shows_the_seed_and_where_it_came_from(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nharness_seed = 7\nharness_max_examples = 12\n")
    from_ini = run_inline(pytester)
    from_ini.stdout.fnmatch_lines(["harness: seed 7 (from ini); 12 examples per fuzz test; failures to *"])
    from_option = run_inline(pytester, "--harness-seed", "0x10", "--harness-budget", "2s")
    from_option.stdout.fnmatch_lines(["harness: seed 16 (from option); 12 examples or 2s per fuzz test; *"])
    pytester.makeini("[pytest]\n")
    fresh = run_inline(pytester)
    fresh.stdout.fnmatch_lines(["harness: seed * (fresh; reuse with --harness-seed *); 100 examples per fuzz test; *"])


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
    result = run_inline(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_options_are_documented_in_help(pytester: pytest.Pytester) -> None:
    result = run_inline(pytester, "--help")
    text = result.stdout.str()
    for name in ("seed", "max-examples", "budget", "report-dir", "regressions"):
        assert f"--harness-{name}=" in text
        assert f"harness_{name.replace('-', '_')} (string):" in text
