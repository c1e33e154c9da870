"""Targets that attack the harness the ways issue 15 lists: they exit, fork, move the cwd, raise odd exceptions.

Importable as ``hostile_targets:NAME`` (the tests directory is on ``sys.path``),
also from a subprocess run with this directory on ``PYTHONPATH``. Most are the
correct semaphore pool with one hostile act at the third submission, so the
campaign runs a few clean examples first.
"""

from __future__ import annotations

import os
import signal
import sys
from signal import setitimer  # an alias taken at import: the guard must still see it
from time import sleep  # an alias taken at import: the guard must still see it
from typing import Any

from twisted.internet import defer

from harness import Target
from scenarios.pools import DoubleReleasePool, SemaphorePool


class _Hostile(SemaphorePool):
    """The correct pool; ``act()`` runs at the ``AT``-th submission of a run."""

    AT = 3

    def __init__(self, clock: Any, limit: int = 2) -> None:
        super().__init__(clock, limit)
        self.submitted = 0

    def submit(self, job: Any) -> defer.Deferred[Any]:
        self.submitted += 1
        if self.submitted == self.AT:
            self.act()
        return super().submit(job)

    def act(self) -> None:
        raise NotImplementedError


def _target(cls: type[_Hostile]) -> Target:
    return Target(build=lambda clock: cls(clock, limit=2), limit=2)


class _Exit0(_Hostile):
    def act(self) -> None:
        os._exit(0)


class _AliasedSleep(_Hostile):
    def act(self) -> None:
        sleep(0.2)


class Mine(BaseException):
    """A target's own BaseException subclass."""


class _RaisesBase(_Hostile):
    def act(self) -> None:
        raise Mine("mine")


class _RaisesGeneratorExit(_Hostile):
    def act(self) -> None:
        raise GeneratorExit()


class _RaisesKeyboardInterrupt(_Hostile):
    def act(self) -> None:
        raise KeyboardInterrupt


class _Chdir(_Hostile):
    def act(self) -> None:
        os.chdir("/")


class _Umask(_Hostile):
    def act(self) -> None:
        os.umask(0o777)


class _LowersRecursionLimit(_Hostile):
    def act(self) -> None:
        sys.setrecursionlimit(200)


class _IgnoresSigint(_Hostile):
    def act(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class _SetsAlarm(_Hostile):
    def act(self) -> None:
        signal.alarm(1)


class _SetsTimer(_Hostile):
    def act(self) -> None:
        setitimer(signal.ITIMER_REAL, 0.5)


class _IgnoresSigalrm(_Hostile):
    def act(self) -> None:
        signal.signal(signal.SIGALRM, signal.SIG_IGN)


class _Forks(_Hostile):
    def act(self) -> None:
        os.fork()


class _ClearsCalls(_Hostile):
    def act(self) -> None:
        self.clock.calls = None


class _ReplacesNextDue(_Hostile):
    def act(self) -> None:
        def broken() -> float:
            raise RuntimeError("next_due replaced")

        self.clock.next_due = broken


class _BadDeferred(defer.Deferred):  # type: ignore[type-arg]
    def addCallbacks(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("addCallbacks refuses")


class _ReturnsBadDeferred(SemaphorePool):
    def submit(self, job: Any) -> defer.Deferred[Any]:
        return _BadDeferred()


class _ClosesStdout(_Hostile):
    def act(self) -> None:
        sys.stdout.close()


def _surrogate() -> None:
    raise ValueError("from a function whose name is not valid Unicode")


_surrogate.__qualname__ = "bad\udc80name"


class _SurrogateName(_Hostile):
    def act(self) -> None:
        self.clock.callLater(0.001, _surrogate)


class _HugeResult(SemaphorePool):
    def submit(self, job: Any) -> defer.Deferred[Any]:
        return super().submit(job).addCallback(lambda _: "x" * 50_000_000)


class _DoubleReleaseIgnoringSigint(DoubleReleasePool):
    def submit(self, job: Any) -> defer.Deferred[Any]:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return super().submit(job)


exit0 = _target(_Exit0)
aliased_sleep = _target(_AliasedSleep)
raises_base = _target(_RaisesBase)
raises_generator_exit = _target(_RaisesGeneratorExit)
raises_keyboard_interrupt = _target(_RaisesKeyboardInterrupt)
chdir = _target(_Chdir)
ignores_sigint = _target(_IgnoresSigint)
umask = _target(_Umask)
lowers_recursion_limit = _target(_LowersRecursionLimit)
forks = _target(_Forks)
sets_alarm = _target(_SetsAlarm)
sets_timer = _target(_SetsTimer)
ignores_sigalrm = _target(_IgnoresSigalrm)
clears_calls = _target(_ClearsCalls)
replaces_next_due = _target(_ReplacesNextDue)
bad_deferred = Target(build=lambda clock: _ReturnsBadDeferred(clock, limit=2), limit=2)
closes_stdout = _target(_ClosesStdout)
surrogate_name = _target(_SurrogateName)
huge_result = Target(build=lambda clock: _HugeResult(clock, limit=2), limit=2)


class _CExit0(_Hostile):
    """Exits through the C library: no Python-level guard can see it."""

    def act(self) -> None:
        import ctypes

        ctypes.CDLL(None)._exit(0)


class _CFork(_Hostile):
    """Forks through the C library, which no Python-level guard sees; the child notes its pid in ``forked.pids``."""

    def act(self) -> None:
        import ctypes

        if ctypes.CDLL(None).fork() == 0:
            with open("forked.pids", "a") as pids:
                pids.write(f"{os.getpid()}\n")


class _ExitFromThread(_Hostile):
    def act(self) -> None:
        import threading

        thread = threading.Thread(target=os._exit, args=(0,))
        thread.start()
        thread.join()


c_exit0 = _target(_CExit0)
c_fork = _target(_CFork)
exit_from_thread = _target(_ExitFromThread)


class _SlowDoubleRelease(DoubleReleasePool):
    """The double-release bug, each submission costing 60 ms of CPU (issue 15, item 7)."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        import time

        until = time.process_time() + 0.06
        while time.process_time() < until:
            pass
        return super().submit(job)


slow_buggy = Target(build=lambda clock: _SlowDoubleRelease(clock, limit=2), limit=2)


# -- taking the harness's signals over, then hanging (the watchdog or a stop signal must still end it) --------


def _spin() -> None:
    while True:
        pass


class _IgnoresSigalrmAndSpins(_Hostile):
    def act(self) -> None:
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        _spin()


class _BlocksSigalrmAndSpins(_Hostile):
    def act(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, iter([signal.SIGALRM]))
        _spin()


class _WaitsForSigalrm(_Hostile):
    def act(self) -> None:
        while True:
            signal.sigwait({signal.SIGALRM})


class _IgnoresSigtermAndSpins(_Hostile):
    def act(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _spin()


class _UsesSigusr1(_Hostile):
    """Takes over a signal the harness does not use: allowed, and put back when the run ends."""

    def act(self) -> None:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)


ignores_sigalrm_and_spins = _target(_IgnoresSigalrmAndSpins)
blocks_sigalrm_and_spins = _target(_BlocksSigalrmAndSpins)
waits_for_sigalrm = _target(_WaitsForSigalrm)
ignores_sigterm_and_spins = _target(_IgnoresSigtermAndSpins)
uses_sigusr1 = _target(_UsesSigusr1)


class _HangsOnceFailed(DoubleReleasePool):
    """The double-release bug; once a failure file is in ``$HANG_ONCE_FAILED`` (the campaign found it), every
    submission spins: a campaign that has something to save, stuck where only a stop can end it."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        folder = os.environ.get("HANG_ONCE_FAILED")
        if folder and os.path.isdir(folder) and any(name.endswith(".json") for name in os.listdir(folder)):
            _spin()
        return super().submit(job)


hangs_once_failed = Target(build=lambda clock: _HangsOnceFailed(clock, limit=2), limit=2)
