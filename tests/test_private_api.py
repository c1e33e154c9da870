"""The private parts of Twisted and Hypothesis the harness reads, and the Twisted and Hypothesis behaviour
it counts on, checked against the installed versions.

CI runs these on the oldest and the newest allowed versions (``.ci/run``), so a release that renames one
of them fails here, with a message naming the private name and the installed version, rather than
somewhere deep inside a campaign. ``docs/dependencies.md`` lists them.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.guard.private_api import (
    HYPOTHESIS_FINAL_REPLAY,
    PRIVATE_APIS,
    TWISTED_STARTUP_OBSERVER,
    final_replay,
    installed,
    problems,
)
from harness.store.database import SafeDirectoryDatabase

pytest_plugins = ["pytester"]


def _versions() -> str:
    return ", ".join(f"{name} {installed(name)}" for name in ("twisted", "hypothesis", "pytest"))


def test_every_private_name_the_harness_reads_is_there() -> None:
    found = problems()
    assert not found, "\n".join(found)


def test_a_missing_private_name_is_reported_with_the_name_and_the_installed_version(monkeypatch) -> None:
    from hypothesis.database import DirectoryBasedExampleDatabase

    monkeypatch.delattr(DirectoryBasedExampleDatabase, "_key_path")
    (message,) = problems()
    assert message.startswith(
        f"hypothesis.database.DirectoryBasedExampleDatabase._key_path (hypothesis {installed('hypothesis')}): "
        "the method is gone."
    )
    assert "FIFO" in message and "harness/guard/private_api.py" in message


def test_a_failure_count_that_is_gone_is_reported(monkeypatch) -> None:
    from harness.guard import private_api

    monkeypatch.setattr(private_api, "failures_made", lambda: None)
    (message,) = problems()
    assert message.startswith(f"twisted.python.failure.count (twisted {installed('twisted')}): the module attribute is gone")
    assert "later run's trace" in message


def test_the_list_names_each_private_name_once() -> None:
    assert len({api.name for api in PRIVATE_APIS}) == len(PRIVATE_APIS) == 4
    assert installed("no-such-distribution-9f3e") == "not installed"


# -- Twisted: the startup observer is what prints a run's errors before logging begins -------------

_STARTUP = textwrap.dedent(
    """
    from twisted.logger import Logger, globalLogPublisher
    from harness.guard.private_api import startup_log_observer

    observer = startup_log_observer()
    assert observer is not None, "no startup observer before logging began"
    Logger().critical("printed-while-attached")
    globalLogPublisher.removeObserver(observer)
    Logger().critical("printed-while-detached")
    """
)


def test_the_startup_observer_is_what_prints_critical_events_before_logging_begins() -> None:
    proc = subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True, text=True, timeout=60)
    where = f"{TWISTED_STARTUP_OBSERVER.name} ({_versions()})"
    assert proc.returncode == 0, f"{where}: {proc.stderr}"
    assert "printed-while-attached" in proc.stderr, f"{where} no longer prints critical events: {proc.stderr!r}"
    assert "printed-while-detached" not in proc.stderr, (
        f"{where}: detaching it no longer keeps critical events off stderr "
        f"(another observer prints them): {proc.stderr!r}"
    )


def test_an_unhandled_error_in_a_deferred_is_logged_under_the_defer_namespace() -> None:
    """The runner tells an "unhandled" error (a Deferred collected with its failure) by this namespace."""
    from twisted.internet import defer
    from twisted.logger import globalLogPublisher

    from harness.run.logcapture import _DEFER_NAMESPACE

    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        d: defer.Deferred[None] = defer.Deferred()
        d.errback(ValueError("never handled"))
        del d
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(events.append)
    failures = [event for event in events if event.get("log_failure") is not None]
    assert [event.get("log_namespace") for event in failures] == [_DEFER_NAMESPACE], (
        f"Twisted {installed('twisted')} logs an unhandled error in a Deferred otherwise than the runner "
        f"expects (log_namespace {_DEFER_NAMESPACE!r}): {failures}"
    )


# -- Hypothesis: the database folder and the final replay -------------------------------------------


def test_the_safe_database_reads_what_hypothesis_saved(tmp_path) -> None:
    database = SafeDirectoryDatabase(str(tmp_path))
    database.save(b"key", b"one")
    database.save(b"key", b"two")
    assert sorted(database.fetch(b"key")) == [b"one", b"two"]


def test_without_the_folder_the_safe_database_falls_back_to_hypothesis_s_own_fetch(tmp_path, monkeypatch) -> None:
    from harness.store import database as store

    monkeypatch.setattr(store, "key_folder", lambda database, key: None)
    database = SafeDirectoryDatabase(str(tmp_path))
    database.save(b"key", b"one")
    assert list(database.fetch(b"key")) == [b"one"]


def test_final_replay_is_true_outside_hypothesis_and_only_in_its_last_replay() -> None:
    assert final_replay() is True
    seen: list[tuple[int, bool]] = []

    @settings(database=None, max_examples=200, derandomize=True, deadline=None)
    @given(st.integers(0, 1000))
    def fails_from_ten(n: int) -> None:
        seen.append((n, final_replay()))
        assert n < 10

    with pytest.raises(AssertionError):
        fails_from_ten()
    finals = [n for n, final in seen if final]
    where = f"{HYPOTHESIS_FINAL_REPLAY.name} (hypothesis {installed('hypothesis')})"
    assert finals == [10], f"{where}: the final replay was not the minimal example alone: {finals}"
    assert len(seen) > 2, f"{where}: Hypothesis ran {len(seen)} examples"


def test_final_replay_counts_every_example_as_final_without_the_flag(monkeypatch) -> None:
    from hypothesis import control

    class Bare:
        """A build context without ``is_final``."""

    seen: list[bool] = []

    @settings(database=None, max_examples=5, deadline=None)
    @given(st.integers())
    def records(n: int) -> None:
        seen.append(final_replay())

    monkeypatch.setattr(control, "current_build_context", lambda: Bare())
    records()
    assert seen and all(seen)


def test_the_hypothesis_seed_option_of_hypothesis_s_plugin_is_read_by_its_name(pytester: pytest.Pytester) -> None:
    """``harness_runner``'s rerun line repeats ``--hypothesis-seed``, read as the option ``hypothesis_seed``."""
    pytester.makepyfile(
        test_seed="""
        def test_seed(request):
            assert str(request.config.getoption("hypothesis_seed")) == "4711"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:twisted", "-p", "no:xdist", "--hypothesis-seed=4711")
    assert result.ret == 0, (
        f"Hypothesis {installed('hypothesis')}'s pytest plugin no longer stores --hypothesis-seed as the option "
        f"'hypothesis_seed':\n{result.stdout.str()}"
    )
