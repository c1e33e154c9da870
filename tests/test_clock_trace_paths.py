"""The clock's and the trace's quicker paths give what the paths they replaced gave.

``FaultClock._fire`` adds ``DRIFT_PER_CALL`` without calling ``drift_step`` below
``FLAT_DRIFT_BELOW``; ``_FaultDelayedCall`` sets its own fields rather than
running Twisted's ``DelayedCall.__init__``; ``Trace.of_clock`` reads the
clock's ``now_us`` rather than calling a function per event. Each is compared
here with what it replaced, and would be caught if it drifted from it.
"""

from __future__ import annotations

import math
import random

import pytest
from twisted.internet import error
from twisted.internet.base import DelayedCall

from harness import FaultClock, Trace
from harness.model.trace import EventKind
from harness.run import clock as clock_module
from harness.run.clock import DRIFT_PER_CALL, FLAT_DRIFT_BELOW, MICRO, drift_step


def _readings() -> list[float]:
    """Readings on both sides of the bound and of zero, and many in between."""
    rng = random.Random(5)
    edges = [FLAT_DRIFT_BELOW, math.nextafter(FLAT_DRIFT_BELOW, 0), math.nextafter(FLAT_DRIFT_BELOW, math.inf), 0.0]
    spread = [rng.uniform(-FLAT_DRIFT_BELOW, FLAT_DRIFT_BELOW) for _ in range(2000)]
    far = [rng.uniform(FLAT_DRIFT_BELOW, 1e9) for _ in range(200)]
    return edges + [-x for x in edges] + spread + far + [-x for x in far]


def test_the_flat_drift_is_drift_step_exactly_where_it_is_used() -> None:
    for reading in _readings():
        if -FLAT_DRIFT_BELOW < reading < FLAT_DRIFT_BELOW:
            assert drift_step(reading) == DRIFT_PER_CALL, reading
    # The bound is tight: at it, four ulps are already more than the flat step.
    assert drift_step(FLAT_DRIFT_BELOW) > DRIFT_PER_CALL
    assert drift_step(math.nextafter(FLAT_DRIFT_BELOW, 0)) == DRIFT_PER_CALL


def _drift_after_calls(skew_s: float, calls: int) -> tuple[float, float]:
    """The clock's drift after ``calls`` calls run at wall time ``skew_s``, and the sum of ``drift_step``."""
    clock = FaultClock()
    clock.jump(skew_s)
    for _ in range(calls):
        clock.callLater(0, lambda: None)
    clock.run_due()
    expected = 0.0
    for _ in range(calls):
        expected += drift_step((clock.now_us + clock.skew_us) / MICRO)
    return clock.drift, expected


@pytest.mark.parametrize("skew_s", [0.0, 100.0, -100.0, 16_383.999_999, 16_384.0, 20_000.0, -20_000.0, 86_400.0 * 400])
def test_the_clock_drifts_by_drift_step_on_both_sides_of_the_bound(skew_s: float) -> None:
    drift, expected = _drift_after_calls(skew_s, 7)
    assert drift == expected


def test_a_wrong_bound_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above is not vacuous: a bound one binade too high gives another drift."""
    monkeypatch.setattr(clock_module, "FLAT_DRIFT_BELOW", 2.0**15)
    drift, expected = _drift_after_calls(20_000.0, 7)
    assert drift != expected


def test_delayed_calls_keep_twisteds_interface() -> None:
    clock = FaultClock()
    clock.advance(2)
    fired: list[int] = []
    call = clock.callLater(1.5, fired.append, 1)
    assert isinstance(call, DelayedCall)
    assert (call.func, call.args, call.kw) == (fired.append, (1,), {})
    assert call.getTime() == 3.5
    assert call.seconds() == 2.0
    assert call.active() and not call.cancelled and not call.called
    assert "DelayedCall" in repr(call) and "append" in repr(call)
    call.reset(1)
    assert call.getTime() == 3.0
    call.delay(0.25)
    assert call.getTime() == 3.25
    call.cancel()
    assert call.cancelled and not call.active() and clock.calls == []
    with pytest.raises(error.AlreadyCancelled):
        call.cancel()
    other = clock.callLater(0, fired.append, 2)
    clock.run_due()
    assert fired == [2] and other.called and not other.active()
    with pytest.raises(error.AlreadyCalled):
        other.reset(1)


def test_delayed_calls_record_their_creator_in_twisteds_debug_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DelayedCall, "debug", True)
    call = FaultClock().callLater(1, lambda: None)
    assert call.creator and any("test_delayed_calls_record_their_creator" in line for line in call.creator)


def test_a_fresh_call_has_no_state_of_its_own_beyond_what_it_runs() -> None:
    """Twisted's __init__ set eight attributes per call; the state every fresh call shares is the class's."""
    clock = FaultClock()
    call = clock.callLater(1, print, "x", sep="")
    # (its lateness too, 0 without jitter: ``next_wake_us`` reads it from every pending call, and an
    # attribute of the instance is read faster than one found on its class)
    assert set(vars(call)) == {"func", "args", "kw", "clock", "seq", "key", "due_us", "stamp", "late_us"}


class _Clock:
    now_us = 0


def test_a_trace_of_a_clock_stamps_what_the_clock_reads_and_what_a_callable_trace_would() -> None:
    clock = _Clock()
    direct, called = Trace.of_clock(clock), Trace(lambda: clock.now_us)
    for t_us in (0, 5, 5, 1_000_000):
        clock.now_us = t_us
        assert direct.record(EventKind.CALL, 3, "x", 1) == called.record(EventKind.CALL, 3, "x", 1)
    direct.freeze()
    called.freeze()
    clock.now_us = 7_000_000
    direct.record(EventKind.END)
    called.record(EventKind.END)
    assert direct.events == called.events
    assert [e.t_us for e in direct] == [0, 5, 5, 1_000_000, 1_000_000]
    assert direct.digest() == called.digest()


def test_a_closed_trace_records_nothing_and_says_so() -> None:
    clock = _Clock()
    trace = Trace.of_clock(clock)
    assert trace.record(EventKind.START) == 0
    trace.close(at_us=42)
    clock.now_us = 99
    assert trace.record(EventKind.END) == -1
    assert list(trace) == [(0, EventKind.START, -1, 0, "")]
    frozen = Trace.of_clock(clock)
    frozen.freeze(at_us=42)
    clock.now_us = 100
    frozen.record(EventKind.END)
    assert frozen[0].t_us == 42


def test_a_run_trace_holds_no_clock_once_the_run_is_over() -> None:
    """The trace reads the run's clock while it lasts; frozen, it holds only the last time (no cycle, nothing kept)."""
    from harness.model.schedule import JobSpec, Schedule, Submit
    from harness.run.runner import run_schedule
    from scenarios.pools import semaphore_pool

    run = run_schedule(semaphore_pool, Schedule(ops=(Submit(at_ms=0, job=1, spec=JobSpec("succeed", 5)),)))
    assert len(run.trace) > 3
    assert not any(isinstance(value, FaultClock) for value in _referents(run.trace))


def _referents(trace: Trace) -> list[object]:
    import gc

    seen = gc.get_referents(trace)
    return seen + [inner for outer in seen for inner in gc.get_referents(outer)]


def _raised_at_before(exc: BaseException, failure: object = None) -> str:
    """``raised_at`` as it was before it returned early for an exception never raised."""
    import os

    frames: list[tuple[object, ...]] = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((code.co_name, code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    if not frames and failure is not None:
        try:
            frames = [tuple(frame[:3]) for frame in failure.frames]  # type: ignore[attr-defined]
        except Exception:
            frames = []
    if not frames:
        return ""
    outside = [frame for frame in frames if f"{os.sep}twisted{os.sep}" not in str(frame[1])]
    function, path, line = (outside or frames)[-1]
    return f"(no message) raised at {os.path.basename(path)}:{line} in {function}"


def _errors() -> list[tuple[BaseException, object]]:
    from twisted.internet import defer
    from twisted.python.failure import Failure

    def bare() -> None:
        assert False  # noqa: B011

    cases: list[tuple[BaseException, object]] = [(defer.CancelledError(), None), (defer.CancelledError(), Failure(defer.CancelledError()))]
    raised = []
    for _ in range(2):
        try:
            bare()
        except AssertionError as exc:
            raised.append(exc)
    cases += [(raised[0], None), (raised[0], Failure(raised[0]))]
    cleaned = Failure(raised[1])
    cleaned.cleanFailure()  # the traceback becomes the failure's frames
    bare_copy = AssertionError()
    cases += [(bare_copy, cleaned), (bare_copy, None)]
    d: defer.Deferred[None] = defer.Deferred()
    d.cancel()
    caught: list[Failure] = []
    d.addErrback(caught.append)
    cases.append((caught[0].value, caught[0]))

    class Broken:
        @property
        def frames(self) -> list[object]:
            raise RuntimeError("no frames")

    cases.append((AssertionError(), Broken()))
    return cases


def test_raised_at_says_what_it_said_before_for_every_kind_of_error() -> None:
    from harness.run.describe import raised_at

    cases = _errors()
    assert any(_raised_at_before(exc, failure) for exc, failure in cases)  # places found, not only ""
    for exc, failure in cases:
        assert raised_at(exc, failure) == _raised_at_before(exc, failure)  # type: ignore[arg-type]


_CAPTURE = """
from twisted.logger import globalLogBeginner, globalLogPublisher
from harness.guard.private_api import startup_log_observer
from harness.model.trace import Trace
from harness.run.logcapture import LogRecorder, logging_into

observers = lambda: list(globalLogPublisher._observers)
temporary = startup_log_observer()
assert temporary is not None and temporary in observers()
recorder = LogRecorder(Trace(lambda: 0))
with logging_into(recorder):
    assert recorder in observers() and temporary not in observers()
assert recorder not in observers() and temporary in observers()
try:
    with logging_into(recorder):
        raise KeyError("out of the run")
except KeyError:
    pass
assert recorder not in observers() and observers().count(temporary) == 1
with logging_into(recorder):  # the program begins logging during the run: its startup observer is gone for good
    globalLogBeginner.beginLoggingTo([lambda event: None], redirectStandardIO=False)
assert startup_log_observer() is None and temporary not in observers() and recorder not in observers()
print("ok")
"""


def test_log_capture_detaches_twisteds_startup_observer_for_the_run_only() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _CAPTURE], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def _wrapped() -> None:
    pass


def test_a_timer_named_after_an_address_is_named_without_it() -> None:
    """A wrapper whose ``__qualname__`` is the ``repr`` of what it wraps (automat's, in Twisted's
    ``ClientService``) gave a timer label with a memory address: a trace that differed per process."""
    from harness.run.clock import call_name, func_name

    class Wrapper:
        def __call__(self) -> None:
            pass

    wrapper = Wrapper()
    wrapper.__qualname__ = f"<implementation for {_wrapped!r}>"  # type: ignore[attr-defined]
    assert "0x" in wrapper.__qualname__  # type: ignore[attr-defined]
    assert func_name(wrapper) == "<implementation for <function _wrapped at 0x?>>"
    assert call_name(FaultClock().callLater(1, wrapper)) == func_name(wrapper)
    assert func_name(_wrapped) == "_wrapped"  # a plain name is left alone
