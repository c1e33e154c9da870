"""The guard's process state, read as tuples and put back only where it differs, is put back exactly.

``EscapeGuard.arm`` keeps the working directory, umask, recursion limit, the ``time`` module's clocks
and the signal handlers a run may change; ``disarm`` compares each with what it kept (by identity)
and sets again only what differs. Over many random mixes of changes made during a run (clocks
replaced or deleted, handlers changed, cwd, umask, recursion limit), what ``disarm`` leaves is
compared with the state before the run, the full restore's result; a change made between runs
stays. Each comparison is shown to catch a wrong shortcut (a mutant of the restore).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from random import Random
from typing import Any

import pytest

from harness.guard import escapes
from harness.guard.escapes import EscapeGuard

#: Signals a test may set handlers of without harm (never SIGALRM's, SIGINT's: pytest's own).
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGUSR1", "SIGUSR2", "SIGHUP", "SIGPIPE", "SIGCHLD") if hasattr(signal, name))


def _state() -> tuple[Any, ...]:
    mask = os.umask(0o022)
    os.umask(mask)
    clocks = tuple(vars(time).get(name, "<missing>") for name in escapes.RESTORED_CLOCKS)
    return (os.getcwd(), mask, sys.getrecursionlimit(), clocks, tuple(signal.getsignal(s) for s in escapes.RESTORED_SIGNALS))


def _handler(*_: Any) -> None:
    pass


def _change(rng: Random, tmp: str) -> None:
    """What a run might do: a random mix of every change the guard puts back."""
    for name in escapes.RESTORED_CLOCKS:
        roll = rng.random()
        if roll < 0.2:
            setattr(time, name, lambda: 0)
        elif roll < 0.25 and hasattr(time, name):
            delattr(time, name)
    for signum in _SIGNALS:
        if rng.random() < 0.3:
            signal.signal(signum, rng.choice([signal.SIG_IGN, signal.SIG_DFL, _handler]))
    if rng.random() < 0.3:
        os.chdir(tmp)
    if rng.random() < 0.3:
        os.umask(0o077)
    if rng.random() < 0.3:
        sys.setrecursionlimit(sys.getrecursionlimit() + 7)


@contextmanager
def _kept_anyway() -> Iterator[None]:
    """Whatever a wrong restore leaves, the rest of the test session gets its process state back."""
    clocks = {name: vars(time)[name] for name in escapes.RESTORED_CLOCKS if name in vars(time)}
    handlers = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    cwd, limit = os.getcwd(), sys.getrecursionlimit()
    mask = os.umask(0o022)
    os.umask(mask)
    try:
        yield
    finally:
        for name, clock in clocks.items():
            setattr(time, name, clock)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        os.chdir(cwd)
        os.umask(mask)
        sys.setrecursionlimit(limit)


def _mismatches(tmp: str, runs: int = 200) -> int:
    guard = EscapeGuard()
    rng = Random(7)
    wrong = 0
    guard.install()  # (arming alone would patch names bound since, which only uninstall undoes)
    try:
        with _kept_anyway():
            for _ in range(runs):
                if rng.random() < 0.2:  # the campaign's own change between runs: it stays
                    signal.signal(_SIGNALS[0], rng.choice([signal.SIG_IGN, signal.SIG_DFL]))
                before = _state()
                guard.arm()
                try:
                    _change(rng, tmp)
                finally:
                    guard.disarm()
                wrong += _state() != before
    finally:
        guard.uninstall()
    return wrong


def test_what_a_run_changed_is_put_back_exactly(tmp_path) -> None:
    assert _mismatches(str(tmp_path)) == 0


#: The restore under test, kept before any mutant replaces it.
_REAL = escapes._put_back_process_state
MUTANTS: dict[str, Callable[[Any], None]] = {}


def _mutant(function: Callable[[Any], None]) -> Callable[[Any], None]:
    MUTANTS[function.__name__.strip("_")] = function
    return function


@_mutant
def _first_differing_clock_only(kept: Any) -> None:
    now = tuple(getattr(time, name, None) for name in escapes._CLOCK_NAMES)
    first = next((i for i, (a, b) in enumerate(zip(now, kept.clocks)) if a is not b), None)
    _REAL(kept._replace(clocks=tuple(k if i == first else n for i, (n, k) in enumerate(zip(now, kept.clocks)))))


@_mutant
def _handlers_never_set(kept: Any) -> None:
    _REAL(kept._replace(handlers=None))


@_mutant
def _deleted_clock_left_deleted(kept: Any) -> None:
    missing = [name for name in escapes._CLOCK_NAMES if not hasattr(time, name)]
    _REAL(kept)
    for name in missing[:1]:
        if hasattr(time, name):
            delattr(time, name)


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_the_comparison_catches_a_wrong_restore(mutant, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(escapes, "_put_back_process_state", MUTANTS[mutant])
    assert _mismatches(str(tmp_path)) > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_guard_armed_in_a_child_forked_through_python_takes_the_child_s_pid() -> None:
    # ``arm`` reads the pid again only when harness.guard.forks counted a fork since (mutant: never): with the
    # parent's pid kept, the child's own run would pass refused calls through and leave at its disarm.
    guard = EscapeGuard()
    guard.install()
    try:
        pid = os.fork()  # (patched, passed through: not armed)
        if pid == 0:  # pragma: no cover - the child
            code = 3
            try:
                guard.arm()
                guard.disarm()  # a stale pid: the child would leave here, with 0
                code = 7 if guard._pid == os.getpid() else 5
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7
    finally:
        guard.uninstall()


def test_a_guard_armed_without_install_patches_nothing() -> None:
    # Only ``uninstall`` undoes patches: a guard armed without being installed used to patch the names bound
    # in modules imported since, and those stray patches passed refused calls through in later guards.
    import sys
    import time
    import types

    module = types.ModuleType("_harness_test_bound_sleep")
    module.sleep = time.sleep  # type: ignore[attr-defined]  # as ``from time import sleep`` binds it
    sys.modules[module.__name__] = module
    try:
        guard = EscapeGuard()
        guard.arm()
        guard.disarm()
        assert module.sleep is time.sleep  # type: ignore[attr-defined]
    finally:
        del sys.modules[module.__name__]
