"""The harness's pytest plugin, registered through the ``pytest11`` entry point.

Installing the package activates it; nothing goes in ``conftest.py``. It adds
the ``--harness-*`` options and ini settings, the ``harness_slow`` marker,
the ``harness_runner`` and ``harness_clock`` fixtures, runs ``@fuzz`` tests,
collects saved failure files as regression tests, and prints harness
failures as a timeline rather than a traceback into the harness. The pieces
live in ``harness.pytest``; this module only wires them into pytest's hooks.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.pytest.fixtures import CURRENT_ITEM, harness_clock, harness_runner
from harness.pytest.fuzz import FUZZ_ATTRIBUTE, FuzzTest
from harness.pytest.regressions import MARKER as REGRESSION_MARKER
from harness.pytest.regressions import RegressionFile, regression_files
from harness.pytest.report import InvariantViolated, display_path
from harness.pytest.settings import SETTINGS_KEY, add_options, resolve, settings_of

__all__ = ["harness_clock", "harness_runner"]

MARKERS = (
    "harness_slow(max_examples=None, budget=None): a long harness campaign; its own example count or budget "
    "(seconds) replace the ini settings, the command line still wins; deselect with -m 'not harness_slow'",
    "harness_fuzz(target): set by @harness.pytest.fuzz on the tests it makes",
    f"{REGRESSION_MARKER}: a saved failure file replayed as a test",
)

#: Regression files that normal collection already turned into tests (so they are not added twice).
_COLLECTED = pytest.StashKey[set[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[SETTINGS_KEY] = settings = resolve(config)
    _refuse_file_as_directory(settings.report_dir, "--harness-report-dir / harness_report_dir", "reports")
    config.stash[_COLLECTED] = set()
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistSeed(), "harness-xdist-seed")


def _refuse_file_as_directory(path: Path, setting: str, example: str) -> None:
    """Stop the session in one line when ``path`` (or a parent) is a file: every failure found would be lost.

    Nothing is created here: a session whose fuzz tests all pass leaves no report directory.
    """
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == path else f" ({str(existing)!r} is a file)"
        raise pytest.UsageError(f"{setting} {str(path)!r} is not a directory{where}; give a directory such as {example}")


class _XdistSeed:
    """Hands the controller's session seed to every xdist worker, so that all of them fuzz alike."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        settings = settings_of(node.config)
        node.workerinput["harness_seed"] = settings.seed
        node.workerinput["harness_seed_source"] = settings.seed_source


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = settings_of(config)
    start = config.invocation_params.dir
    if settings.seed_source == "fresh":
        seed = f"seed {settings.seed} (fresh; reuse with --harness-seed {settings.seed})"
    else:
        seed = f"seed {settings.seed} (from {settings.seed_source})"
    limits = []
    if settings.max_examples is not None or settings.budget_s is None:
        max_examples, _ = settings.limits()
        limits.append(f"{max_examples} examples")
    if settings.budget_s is not None:
        limits.append(f"{settings.budget_s:g}s")
    regressions = len(regression_files(settings.regressions_dir))
    return [
        f"harness: {seed}; {' or '.join(limits)} per fuzz test; failures to "
        f"{display_path(settings.report_dir / 'failures', start)}; "
        f"{regressions} regression file(s) in {display_path(settings.regressions_dir, start)}"
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Load each ``@fuzz`` test's target at collection, so a bad target is a collection error naming it."""
    fuzz_test = getattr(obj, FUZZ_ATTRIBUTE, None)
    if isinstance(fuzz_test, FuzzTest):
        try:
            fuzz_test.resolve()
        except HarnessError as exc:
            raise collector.CollectError(f"harness: @fuzz test {name}: {exc}") from None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> RegressionFile | None:
    """A failure file inside the regressions directory, when pytest's own collection reaches it."""
    settings = settings_of(parent.config)
    if file_path.suffix == ".json" and file_path.is_relative_to(settings.regressions_dir):
        parent.config.stash[_COLLECTED].add(file_path)
        return RegressionFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the regression files as tests to a run of the whole suite.

    Only when pytest was given no paths (it runs ``testpaths`` or the current
    directory): a run of named tests, like the printed rerun line, runs just
    those. Runs before ``-k``/``-m`` deselection, so those apply here too.
    """
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return
    seen = config.stash[_COLLECTED]
    for path in regression_files(settings_of(config).regressions_dir):
        if path not in seen:
            seen.add(path)
            items.extend(RegressionFile.from_parent(session, path=path).collect())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    item.config.stash[CURRENT_ITEM] = item
    try:
        return (yield)
    finally:
        item.config.stash[CURRENT_ITEM] = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Show a violated invariant as its report (timeline, file, replay and rerun lines), not a traceback."""
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, InvariantViolated) and report.failed:
        exc = call.excinfo.value
        report.longrepr = "\n".join([str(exc), *getattr(exc, "__notes__", [])])
    return report
