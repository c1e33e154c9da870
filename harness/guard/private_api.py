"""The private parts of Twisted and Hypothesis the harness relies on, each behind one accessor.

The harness uses the public API of Twisted, Hypothesis and pytest wherever
one exists. Four needs have none, listed in ``PRIVATE_APIS`` and in
``docs/dependencies.md``:

- Twisted's startup log observer (``LogBeginner._temporaryObserver``): until a
  program begins logging, Twisted prints every critical event ("Unhandled error
  in Deferred") to stderr. A run's errors are the target's, recorded in its
  trace and judged there; the runner detaches that observer for the run.
- Twisted's count of the Failures made (``twisted.python.failure.count``, each
  Failure's ``count`` its number): a failure logged as unhandled during a run
  but made before it began is an earlier run's leftover (a subject the target
  kept in a class attribute, dropped by the next build), not the run's own.
- Hypothesis's folder of a key in a directory database
  (``DirectoryBasedExampleDatabase._key_path``): the harness reads the saved
  examples itself, skipping FIFOs and huge files someone left in a shared folder.
- Hypothesis's final replay (``current_build_context().is_final``): the pytest
  fixture saves a failure file only for the minimal example Hypothesis reports,
  not for every failing example tried while shrinking.

Each accessor falls back to what the harness can still do when the name is
gone (its docstring says what), so a release that renames one degrades the
harness rather than crashing a run. ``problems()`` checks each by name and by
behaviour; ``tests/test_private_api.py`` runs it, and CI runs those tests on
the oldest and the newest dependency versions allowed, so such a release
fails CI with the private name and the installed version, not a run deep
inside a campaign.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twisted.logger import ILogObserver


@dataclass(frozen=True)
class PrivateAPI:
    """One private name of a dependency the harness uses: what for, and what happens without it."""

    name: str
    package: str
    used_for: str
    without_it: str


TWISTED_STARTUP_OBSERVER = PrivateAPI(
    name="twisted.logger.globalLogBeginner._temporaryObserver",
    package="twisted",
    used_for="keeping a run's logged errors (recorded in its trace) off stderr before the program begins logging",
    without_it="every 'Unhandled error in Deferred' of a run is also printed to stderr",
)
TWISTED_FAILURE_COUNT = PrivateAPI(
    name="twisted.python.failure.count",
    package="twisted",
    used_for="telling a failure made before a run (an earlier run's leftover, dropped during this one) from the run's own",
    without_it="an earlier run's unhandled failure, dropped during a later run, is recorded in the later run's trace",
)
HYPOTHESIS_KEY_PATH = PrivateAPI(
    name="hypothesis.database.DirectoryBasedExampleDatabase._key_path",
    package="hypothesis",
    used_for="reading a database directory's examples while skipping FIFOs and oversized files",
    without_it="Hypothesis's own fetch reads the folder: a FIFO there would block the campaign",
)
HYPOTHESIS_FINAL_REPLAY = PrivateAPI(
    name="hypothesis.control.current_build_context().is_final",
    package="hypothesis",
    used_for="saving a failure file only for the example Hypothesis finally reports",
    without_it="harness_runner.assert_ok saves a failure file for every failing example tried while shrinking",
)

#: Every private name the harness reads, in the order ``docs/dependencies.md`` lists them.
PRIVATE_APIS = (TWISTED_STARTUP_OBSERVER, TWISTED_FAILURE_COUNT, HYPOTHESIS_KEY_PATH, HYPOTHESIS_FINAL_REPLAY)


def installed(package: str) -> str:
    """The installed version of ``package``, or ``"not installed"``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def startup_log_observer() -> ILogObserver | None:
    """Twisted's startup log observer, or None once the program began logging (or if Twisted dropped it).

    Read twice a run (``harness.run.logcapture``): Twisted's ``globalLogBeginner`` is looked up once and
    kept (an import statement each time cost most of the read).
    """
    beginner = _BEGINNER[0]
    if beginner is None:
        from twisted.logger import globalLogBeginner

        beginner = _BEGINNER[0] = globalLogBeginner
    return getattr(beginner, "_temporaryObserver", None)


#: ``twisted.logger.globalLogBeginner``, once ``startup_log_observer`` first looked it up.
_BEGINNER: list[Any] = [None]


def failures_made() -> int | None:
    """How many Failures Twisted has made so far (a Failure's ``count`` is its number), or None if unknown.

    Read once a run (``harness.run.logcapture``; the module looked up once and kept, as ``_BEGINNER`` is).
    Without the name every failure counts as the run's own.
    """
    module = _FAILURE_MODULE[0]
    if module is None:
        from twisted.python import failure

        module = _FAILURE_MODULE[0] = failure
    made = getattr(module, "count", None)
    return made if type(made) is int else None


#: ``twisted.python.failure``, once ``failures_made`` first looked it up.
_FAILURE_MODULE: list[Any] = [None]


def key_folder(database: Any, key: bytes) -> str | None:
    """The folder holding ``key``'s examples in a ``DirectoryBasedExampleDatabase``; None if unknown."""
    key_path: Callable[[bytes], str | os.PathLike[str]] | None = getattr(database, "_key_path", None)
    if key_path is None:
        return None
    return os.fspath(key_path(key))


def final_replay() -> bool:
    """True outside a Hypothesis test and in its final replay of the example it reports.

    Without the private flag every example counts as final (files are saved
    for more examples than needed, never fewer).
    """
    from hypothesis.control import currently_in_test_context

    if not currently_in_test_context():
        return True
    from hypothesis.control import current_build_context

    return bool(getattr(current_build_context(), "is_final", True))


def _problem(api: PrivateAPI, what: str) -> str:
    return (
        f"{api.name} ({api.package} {installed(api.package)}): {what}. The harness uses it for {api.used_for}; "
        f"without it {api.without_it}. Pin {api.package} to a version that has it, or update "
        "harness/guard/private_api.py"
    )


def _check_startup_observer() -> str | None:
    from twisted.logger import globalLogBeginner

    if not hasattr(globalLogBeginner, "_temporaryObserver"):
        return _problem(TWISTED_STARTUP_OBSERVER, "the attribute is gone")
    observer = startup_log_observer()
    if observer is not None and not callable(observer):
        return _problem(TWISTED_STARTUP_OBSERVER, f"it is {type(observer).__name__}, not a log observer")
    return None


def _check_failure_count() -> str | None:
    from twisted.internet import defer

    before = failures_made()
    if before is None:
        return _problem(TWISTED_FAILURE_COUNT, "the module attribute is gone, or not an int")
    failed: defer.Deferred[None] = defer.fail(ValueError("harness-check"))
    made = failed.result
    failed.addErrback(lambda _: None)
    if getattr(made, "count", None) != before + 1 or failures_made() != before + 1:
        return _problem(TWISTED_FAILURE_COUNT, "a new Failure's count is not the module's count plus one")
    return None


def _check_key_path() -> str | None:
    import tempfile

    from hypothesis.database import DirectoryBasedExampleDatabase

    if not callable(getattr(DirectoryBasedExampleDatabase, "_key_path", None)):
        return _problem(HYPOTHESIS_KEY_PATH, "the method is gone")
    with tempfile.TemporaryDirectory() as folder:
        database = DirectoryBasedExampleDatabase(folder)
        database.save(b"harness-check", b"example")
        where = key_folder(database, b"harness-check")
        try:
            found = [Path(where, name).read_bytes() for name in os.listdir(where)] if where else []
        except OSError:
            found = []
        if found != [b"example"]:
            return _problem(HYPOTHESIS_KEY_PATH, f"the folder it names ({where}) does not hold the saved example")
    return None


def _check_final_replay() -> str | None:
    from hypothesis import control

    if not callable(getattr(control, "current_build_context", None)):
        return _problem(HYPOTHESIS_FINAL_REPLAY, "hypothesis.control.current_build_context is gone")
    build_context = getattr(control, "BuildContext", None)
    if build_context is None:
        return _problem(HYPOTHESIS_FINAL_REPLAY, "hypothesis.control.BuildContext is gone")
    import inspect

    if "is_final" not in inspect.signature(build_context.__init__).parameters:
        return _problem(HYPOTHESIS_FINAL_REPLAY, "BuildContext no longer takes is_final")
    return None


def problems() -> list[str]:
    """One line per private name that is gone or changed shape (the behaviour itself is tested in the test suite)."""
    found = [_check_startup_observer(), _check_failure_count(), _check_key_path(), _check_final_replay()]
    return [problem for problem in found if problem is not None]
