"""The escape guard's module-global bindings over many sessions of one process (audit 11, docs/reviews/audit-11.md).

A name bound between two runs of a session (``from time import sleep``, ``cl = reactor.callLater`` in a module
imported then) holds the session's patch; the next arm's scan must count that site, or its cached result leaves
the name unguarded in every later session with nothing imported (the real ``time.sleep`` passed).

A ``functools.partial`` of a refused function or reactor method, kept in a module global: ``LATER = partial(reactor.callLater, 0)`` or ``NAP = partial(time.sleep, 1)``
made at import holds the original, which no patch on the reactor or the ``time`` module reaches. A lent
target's timers went to the real reactor (a run saw a deadlock, and the real reactor kept a timer of the
run due in the past); a refusing one's sleep passed. The guard binds such a global to the same partial of its
stand-in while installed, and puts the original back after.
"""

from __future__ import annotations

import os
import sys
import time
import types
from functools import partial
from typing import Any

import pytest
from twisted.internet import reactor

from harness import ClockPolicy, JobSpec, Schedule, Submit, Target, run_schedule
from harness.errors import TargetError
from harness.run.session import RunSession

ONE = Schedule((Submit(0, 0, JobSpec("succeed")),), ClockPolicy())


class _Calls:
    """A subject whose build calls ``call(clock)`` and keeps what it returned."""

    def __init__(self, call: Any, clock: Any) -> None:
        self.got = call(clock)

    def submit(self, job: Any) -> Any:
        return job()


@pytest.fixture
def taken() -> Any:
    """A module imported before the session, holding partials made then."""
    module = types.ModuleType(f"partials_at_import_{os.getpid()}")
    module.later = partial(reactor.callLater, 5)  # type: ignore[attr-defined]
    module.nap = partial(time.sleep, 0.001)  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    sys.modules.pop(module.__name__, None)


def test_a_partial_of_reactor_call_later_taken_at_import_is_lent_and_refused(taken: Any) -> None:
    pending = len(reactor.getDelayedCalls())
    got: list[Any] = []
    target = Target(build=lambda clock: _Calls(lambda c: got.append(taken.later(lambda: None) in c.getDelayedCalls()), clock),
                    global_reactor="lend", submit=lambda s, job, p: job())
    run_schedule(target, ONE)
    assert got == [True] and len(reactor.getDelayedCalls()) == pending  # on the run's clock, not the reactor's
    refuse = Target(build=lambda clock: _Calls(lambda c: taken.later(lambda: None), clock), submit=lambda s, job, p: job())
    with pytest.raises(TargetError, match="the target called reactor.callLater"):
        run_schedule(refuse, ONE)
    assert taken.later.func.__self__ is reactor and taken.later.args == (5,)  # the original, once the session ended


def test_a_partial_of_time_sleep_taken_at_import_is_refused_in_every_session(taken: Any) -> None:
    refuse = Target(build=lambda clock: _Calls(lambda c: taken.nap(), clock), submit=lambda s, job, p: job())
    later = types.ModuleType(taken.__name__ + "_later")
    try:
        with RunSession():
            sys.modules[later.__name__] = later  # imported between runs: the next arm scans with the stand-in bound
            for _ in range(2):
                with pytest.raises(TargetError, match="the target called time.sleep"):
                    run_schedule(refuse, ONE)
        for _ in range(2):  # later sessions, nothing imported since: the cached scan still has the site
            with RunSession(), pytest.raises(TargetError, match="the target called time.sleep"):
                run_schedule(refuse, ONE)
    finally:
        sys.modules.pop(later.__name__, None)
    assert taken.nap.func is time.sleep


def test_a_partial_made_in_a_run_of_a_lazily_imported_module_is_put_back(taken: Any) -> None:
    """A module imported in a run binds the guard's stand-in into its partial; the session's end puts the
    original back there, so that the next session finds and guards it again."""
    name = taken.__name__ + "_lazy"

    def lazy_import(clock: Any) -> None:
        module = types.ModuleType(name)
        module.nap = partial(time.sleep, 0.001)  # type: ignore[attr-defined]  # made while the stand-in is bound
        sys.modules[name] = module

    try:
        with RunSession():
            run_schedule(Target(build=lambda clock: _Calls(lazy_import, clock), submit=lambda s, job, p: job()), ONE)
        assert sys.modules[name].nap.func is time.sleep
        refuse = Target(build=lambda clock: _Calls(lambda c: sys.modules[name].nap(), clock), submit=lambda s, job, p: job())
        with RunSession(), pytest.raises(TargetError, match="the target called time.sleep"):
            run_schedule(refuse, ONE)
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("binding", ["from time import sleep as call", "from twisted.internet import reactor\ncall = reactor.callLater"],
                         ids=["time.sleep", "reactor.callLater"])
def test_a_name_bound_between_two_runs_stays_guarded_in_later_sessions(binding: str) -> None:
    name = f"bound_between_runs_{os.getpid()}"
    label = "time.sleep" if "sleep" in binding else "reactor.callLater"
    refuse = Target(build=lambda clock: _Calls(lambda c: sys.modules[name].call(0.001, *(() if label == "time.sleep" else (print,))), clock),
                    submit=lambda s, job, p: job())
    plain = Target(build=lambda clock: _Calls(lambda c: None, clock), submit=lambda s, job, p: job())
    try:
        with RunSession():
            run_schedule(plain, ONE)
            module = types.ModuleType(name)
            exec(binding, vars(module))  # imported between two runs: binds the session's patch
            sys.modules[name] = module
            with pytest.raises(TargetError, match=f"the target called {label}"):
                run_schedule(refuse, ONE)  # (this arm scans again, the patch bound in the module)
        assert module.call in (time.sleep, reactor.callLater)  # the original, once the session ended
        for _ in range(2):  # later sessions, nothing imported since: the cached scan must have the site
            with RunSession(), pytest.raises(TargetError, match=f"the target called {label}"):
                run_schedule(refuse, ONE)
    finally:
        sys.modules.pop(name, None)
