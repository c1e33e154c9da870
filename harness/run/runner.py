"""The runner: play one schedule against one target and record the trace.

A run has four phases, all recorded in the trace:

1. **ops**: build a fresh subject on a fresh ``FaultClock`` and apply each
   operation at its virtual time, advancing the clock punctually or in
   strides as the schedule's clock policy says;
2. **drain**: keep advancing until nothing is pending or the drain horizon
   passes, then mark ``drained`` (completion is judged here);
3. **teardown**: stop the subject if the schedule did not, drain again, and
   record what is left behind (pending calls, running ``LoopingCall``\\ s);
4. **release**: run the target's own invariants, drop every reference to
   the subject, collect garbage and record any "Unhandled error in
   Deferred" that Twisted logs, so that invariants judge the trace alone.
   Pending operations (scheduled calls, unsettled job attempts) are held,
   as a reactor holds them, until the trace is closed (``_teardown``).

The runner stays in control of the code it runs. A run has a wall-clock
limit (``harness.guard.watchdog``): a target that hangs, or that keeps scheduling
calls for the same instant (a livelock), ends the run with ``TargetHung``,
which names the step and the virtual time and keeps the trace so far. A
target that calls the global reactor or sleeps for real
(``harness.guard.escapes``), raises from ``build`` or ``stop``, or exits the
process, ends it with a one-line ``TargetError``. Every patch and signal
handler is undone however the run ends.
"""

from __future__ import annotations

import gc
import os
import re
from traceback import clear_frames
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task
from twisted.logger import LogLevel, globalLogBeginner, globalLogPublisher
from twisted.python.failure import Failure

from harness.run.diagnosis import Diagnosis
from harness.run.clock import MAX_ROUNDS_PER_INSTANT, FaultClock, Livelock, call_name, func_name
from harness.errors import HarnessError, TargetError
from harness.guard import signals
from harness.guard.escapes import EscapeGuard, Escaped
from harness.model.faults import CancellerError
from harness.run.jobs import Job
from harness.model.keys import submit_detail
from harness.model.schedule import Call, Cancel, Jump, Op, Schedule, Start, Stop, Submit
from harness.model.target import Target
from harness.model.trace import EventKind, Trace, format_ms, one_line, safe_repr
from harness.guard.watchdog import DEFAULT_TIMEOUT_S, Expired, Watchdog

if TYPE_CHECKING:
    from harness.run.view import RunView

#: Virtual time the runner keeps draining after the last operation, beyond
#: the total duration of all jobs, before it calls the run finished.
DRAIN_SLACK_MS = 10_000
#: Late timer hops the drain horizon allows for: under a strided or jittery
#: clock policy every delayed call in a chain (a retry's backoff, the next
#: queued job) may fire up to ``step_ms + jitter_ms`` late, and lateness
#: alone must not leave a job unfinished when the run drains.
LATE_HOPS = 64
#: The subject's timers recorded per run (a livelock sets thousands): each is set, then fired or cancelled.
MAX_TIMER_EVENTS = 1_000
#: Periods a periodic subject is watched after the last operation.
PERIODS_OBSERVED = 4


#: Runs between full collections of the garbage made between runs. A full collection
#: costs 0.1 to 0.8 s as the heap grows; every 2,000 runs that is 0.1 to 0.4 ms a run.
SWEEP_EVERY = 2_000

#: Memory addresses, also the tail of one that a truncated repr cut in two ("0x7f3...a1b2c3>", as
#: pytest's assertion messages shorten long reprs), which would make the trace differ between runs.
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+|(?<=\.\.\.)[0-9a-fA-F]{6,}(?=>)")
_DEFER_NAMESPACE = "twisted.internet.defer"


def describe(value: Any, limit: int = 80) -> str:
    """A deterministic one-line description: memory addresses are masked, control characters escaped.

    Bounded: a 50 MB string or a million-item list costs what its first
    characters cost (``safe_repr``), so rendering a result never hangs a run.
    """
    text = one_line(_ADDRESS.sub("0x?", safe_repr(value, limit)))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(exc: BaseException, failure: Failure | None = None) -> str:
    """``Name: message``; for an exception without text (a bare ``assert``), where it was raised instead.

    The place is the file's base name, line and function of the innermost
    frame outside Twisted (``raised at pool.py:42 in submit``): your code,
    also when Twisted raised the error on its behalf (``AlreadyCalledError``
    from ``callback``); a base name is deterministic across machines, unlike
    a full path. ``failure`` supplies the frames when the exception's own
    traceback was cleaned away. When no frame is known the text stays empty.
    """
    try:
        message = str(exc)
    except Exception:
        message = "<str() of the exception raised>"
    if not message.strip():
        message = raised_at(exc, failure)
    return one_line(f"{type(exc).__name__}: {_ADDRESS.sub('0x?', message)}")


_TWISTED = f"{os.sep}twisted{os.sep}"


def raised_at(exc: BaseException, failure: Failure | None = None) -> str:
    """``(no message) raised at file.py:LINE in function``, from the innermost frame outside Twisted; "" if unknown."""
    frames: list[tuple[str, str, int]] = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((code.co_name, code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    if not frames and failure is not None:
        try:
            frames = [tuple(frame[:3]) for frame in failure.frames]  # type: ignore[misc]
        except Exception:
            frames = []
    if not frames:
        return ""
    outside = [frame for frame in frames if _TWISTED not in str(frame[1])]
    function, path, line = (outside or frames)[-1]
    return f"(no message) raised at {os.path.basename(path)}:{line} in {function}"


class TargetHung(HarnessError):
    """A run that did not finish: the target hung, or livelocked the clock.

    ``kind`` is ``"hang"`` (a step took longer than the wall-clock limit) or
    ``"livelock"`` (calls kept scheduling calls for the same instant).
    ``run`` holds the trace up to that point, ending with the event at index
    ``event`` (kind ``target.hang`` or ``reactor.livelock``); ``step`` is the
    index of the operation the run was at (None after the last one), and
    ``t_us`` the virtual time. The subject is dropped.
    """

    def __init__(self, message: str, run: Run, kind: str, step: int | None, t_us: int, event: int) -> None:
        super().__init__(message)
        self.message = message
        self.run = run
        self.kind = kind
        self.step = step
        self.t_us = t_us
        self.event = event


@dataclass
class Run:
    """What one run produced.

    ``trace`` (and ``diagnosis``) is all invariants read. ``subject``, ``clock``, ``jobs`` and
    ``handles`` are live only while the target's own invariants run; the
    runner then drops them so garbage collection can reveal unhandled errors.
    """

    target: Target
    schedule: Schedule
    trace: Trace
    clock: FaultClock | None = None
    subject: Any = None
    jobs: dict[int, Job] = field(default_factory=dict)
    handles: dict[int, defer.Deferred[Any]] = field(default_factory=dict)
    stopped: bool = False
    #: Where the run is: ``build``, ``advance`` (to ``step``), ``step``, ``drain``, ``teardown``,
    #: ``invariant`` (``detail`` names it) or ``release``; read when a run must be abandoned.
    phase: str = "build"
    step: int | None = None
    detail: str = ""
    checkpoint: Callable[[], None] = field(default=lambda: None, repr=False)
    #: What the diagnosis step (``harness.run.diagnosis``) established about the finished run; None
    #: until ``harness.check`` (or ``diagnose``) ran. Invariants read it, never re-run the target.
    diagnosis: Diagnosis | None = field(default=None, repr=False)

    @property
    def view(self) -> RunView:
        """The typed, documented records of this run (``harness.run.view``; docs/run-api.md)."""
        from harness.run.view import RunView

        return RunView.of(self)

    def where(self) -> str:
        """Where the run is, for a message: ``in step 3 (submit job 2)``."""
        if self.phase in ("step", "advance") and self.step is not None:
            op = self.schedule.ops[self.step]
            if self.phase == "step":
                return f"in step {self.step + 1} ({_op_label(op)})"
            return f"on the way to step {self.step + 1} ({_op_label(op)} at {format_ms(op.at_ms * 1000)})"
        return {
            "build": "in build(clock)",
            "drain": "while draining after the last step",
            "teardown": "in the teardown stop() and drain",
            "invariant": f"in the target's invariant {self.detail}",
            "release": "while collecting the run's garbage",
        }.get(self.phase, self.phase)


def _op_label(op: Op) -> str:
    if isinstance(op, (Submit, Start, Cancel)):
        return f"{op.name} job {op.job}"
    if isinstance(op, Jump):
        return f"jump {op.delta_ms:+d}ms"
    if isinstance(op, Call):
        return f"call {op.operation}"
    return op.name


#: Exceptions that end a run abruptly; the runner turns each into a one-line harness error.
_ABORTS = (Expired, Escaped, Livelock, SystemExit)


def run_schedule(target: Target, schedule: Schedule, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> Run:
    """Run ``schedule`` against a fresh subject built by ``target``; return the finished run.

    ``timeout_s`` is the wall-clock limit of the run (None: none). Raises
    ``TargetHung`` when the target hangs or livelocks the clock, and
    ``TargetError`` when its ``build`` or ``stop`` raises, it calls the global
    reactor or sleeps for real, or the schedule injects an error the target
    does not know.
    """
    _check_error_names(target, schedule)
    _check_operations(target, schedule)
    _isolate_garbage()
    policy = schedule.clock
    clock = FaultClock.for_policy(policy)
    trace = Trace(lambda: clock.now_us)
    clock.on_escape = lambda call, exc: trace.record(EventKind.REACTOR_ERROR, detail=f"{call_name(call)}: {describe_error(exc)}")
    clock.on_timer = _timer_recorder(trace, clock)
    observer = _LogRecorder(trace)
    run = Run(target=target, schedule=schedule, trace=trace, clock=clock)
    aborted: BaseException | None = None
    try:
        with _logging_into(observer):
            # The guard first: it may import the global reactor (slow with TLS installed), which is no part of the run's time.
            with EscapeGuard() as guard, Watchdog(timeout_s) as dog:

                def checkpoint() -> None:
                    guard.check()
                    dog.check()

                run.checkpoint = checkpoint
                try:
                    try:
                        run.subject = target.build(clock, *_work_for_build(run))
                    except _ABORTS + (KeyboardInterrupt,):
                        raise
                    except BaseException as exc:
                        raise TargetError(f"the target's build(clock) raised {describe_error(exc)}") from None
                    checkpoint()
                    _play(run)
                    _release(run, observer)
                    guard.check_streams()
                except _ABORTS as exc:
                    dog.disarm()
                    aborted = exc
                except HarnessError:
                    raise
                except KeyboardInterrupt as exc:
                    if signals.interrupt_requested():
                        raise  # the user's Ctrl-C (a second signal), not the target's
                    dog.disarm()
                    aborted = exc
                except BaseException as exc:
                    # The target raised something no Deferred catches, or broke the clock or a
                    # Deferred the runner drives: the target's error, not the harness's.
                    dog.disarm()
                    aborted = exc
            if aborted is not None:
                # Outside the watchdog and the guard: the subject's garbage is collected with neither armed.
                raise _abandon(run, aborted, guard, dog, observer) from None
    finally:
        run.checkpoint = _nothing
        gc.unfreeze()
    return run


@contextmanager
def _logging_into(observer: _LogRecorder) -> Iterator[None]:
    """Send what Twisted logs during the run to ``observer`` (the run's trace) alone.

    Until a program begins logging, Twisted prints critical events (every
    "Unhandled error in Deferred") to stderr and buffers all events; the
    run's errors are the target's, recorded in its trace and judged there,
    so that observer is detached for the run. Observers of a program that
    began logging still see everything.
    """
    temporary = getattr(globalLogBeginner, "_temporaryObserver", None)
    detached = False
    if temporary is not None:
        try:
            globalLogPublisher.removeObserver(temporary)
            detached = True
        except ValueError:
            pass
    globalLogPublisher.addObserver(observer)
    try:
        yield
    finally:
        globalLogPublisher.removeObserver(observer)
        if detached and getattr(globalLogBeginner, "_temporaryObserver", None) is temporary:
            globalLogPublisher.addObserver(temporary)


def unknown_error(target: Target, schedule: Schedule) -> tuple[int, str] | None:
    """The first (job, exception name) the schedule injects that the target does not know, if any."""
    known = target.error_types
    for op in schedule.submits:
        for spec in op.specs:
            if spec.error not in known:
                return op.job, spec.error
    return None


def _check_error_names(target: Target, schedule: Schedule) -> None:
    """Refuse a schedule that injects an exception the target does not know (names are never imported)."""
    unknown = unknown_error(target, schedule)
    if unknown is not None:
        job, name = unknown
        raise TargetError(
            f"job {job} injects {name!r}, which is neither a built-in error nor one the target "
            f"declares ({', '.join(target.error_types)}); the harness never imports an exception by name: "
            "declare the type in Target(errors=...)"
        )


def _check_operations(target: Target, schedule: Schedule) -> None:
    """Refuse a schedule that calls an operation the target does not declare."""
    for op in schedule.ops:
        if isinstance(op, Call) and op.operation not in target.operations:
            known = ", ".join(target.operations) or "none"
            raise TargetError(
                f"the schedule calls operation {op.operation!r}, which the target does not declare "
                f"(its operations: {known}); declare it in Target(operations=...) or use a schedule made for this target"
            )


def _work_for_build(run: Run) -> tuple[Any, ...]:
    """The periodic work for ``build(clock, work)``: the job of the schedule's first start, made now."""
    if not run.target.takes_work:
        return ()
    assert run.clock is not None
    start = next((op for op in run.schedule.ops if isinstance(op, Start)), None)
    if start is None:
        return (_nothing,)  # a schedule that never starts the subject: its work is never called
    job = Job(start.job, start.specs, run.clock, run.trace, run.target.error_types)
    run.jobs[start.job] = job
    return (job,)


def _abandon(run: Run, exc: BaseException, guard: EscapeGuard, dog: Watchdog, observer: _LogRecorder) -> HarnessError:
    """End a run that cannot go on: record why, drop the subject, and return the error to raise."""
    where = run.where()
    clock = run.clock
    try:
        t_us = clock.now_us if clock is not None else (run.trace[-1].t_us if len(run.trace) else 0)
        t_us = int(t_us)
    except Exception:  # the target broke the clock
        t_us = run.trace[-1].t_us if len(run.trace) else 0
    when = format_ms(t_us)
    error: HarnessError
    if guard.escaped is not None or isinstance(exc, Escaped):
        called = guard.escaped or str(exc)
        escaping = ", escaping virtual time" if called.startswith(("reactor.", "time.")) else ""
        error = TargetError(f"the target called {called} {where} at virtual time {when}{escaping}; {guard.explanation}")
    elif isinstance(exc, SystemExit):
        error = TargetError(
            f"the target raised SystemExit({exc.code!r}) {where} at virtual time {when}; "
            "a subject must never exit the process"
        )
    elif isinstance(exc, Expired):
        message = (
            f"target hung {where} at virtual time {when}: it did not return within the "
            f"{dog.seconds:g}s wall-clock limit of a run (--example-timeout)"
        )
        index = run.trace.record(EventKind.TARGET_HANG, detail=where)
        error = TargetHung(message, run, "hang", run.step if run.phase in ("step", "advance") else None, t_us, index)
    elif not isinstance(exc, Livelock):
        error = TargetError(
            f"the target raised {describe_error(exc)} {where} at virtual time {when}"
            + (
                ", an exception only a program's user or Python itself should raise; raise an Exception "
                "subclass, or return a failed Deferred"
                if not isinstance(exc, Exception)
                else ", out of the clock or a Deferred the harness drives: leave the clock given to build(clock) "
                "and the Deferreds the subject returns working (if the target did nothing unusual, this is a "
                "harness bug: please report it)"
            )
        )
    else:
        message = (
            f"target livelocked {where} at virtual time {when}: scheduled calls kept scheduling more calls for "
            f"the same instant ({MAX_ROUNDS_PER_INSTANT} rounds)"
        )
        index = run.trace.record(EventKind.REACTOR_LIVELOCK, detail=where)
        error = TargetHung(message, run, "livelock", run.step if run.phase in ("step", "advance") else None, t_us, index)
    if run.phase == "build" and isinstance(error, TargetHung):
        error = TargetError(f"the target's build(clock) never returned: {error.message}")
    # Forget the subject; errors its garbage logs belong to no run. The exception's traceback
    # holds the target's frames, and through them its Deferreds: clear them, or the garbage
    # would surface ("Unhandled error in Deferred") in a later run or at exit.
    traceback, exc.__traceback__ = exc.__traceback__, None
    if traceback is not None:
        clear_frames(traceback)
    del traceback
    run.trace.close(t_us)
    observer.trace = Trace(lambda: 0)
    if clock is not None:
        for held in ("calls", "created"):
            try:
                getattr(clock, held).clear()
            except Exception:  # the target replaced it
                pass
    for job in run.jobs.values():
        job.release()
    run.subject = None
    run.clock = None
    run.jobs = {}
    run.handles = {}
    _collect(observer)
    return error


def _play(run: Run) -> None:
    clock, trace, schedule, target = run.clock, run.trace, run.schedule, run.target
    assert clock is not None
    policy = schedule.clock
    # Every job may run after all the others, each of its calls may fire a stride plus jitter late,
    # and the subject's own delays (backoffs, re-arms) may each be late too.
    lateness = policy.step_ms + policy.jitter_ms
    costs = [spec.after_ms + lateness for op in schedule.submits for spec in op.specs]
    drain_ms = sum(costs) + max(costs, default=0) + LATE_HOPS * lateness + DRAIN_SLACK_MS
    observe_ms = PERIODS_OBSERVED * target.period_ms()
    errors = target.error_types
    checkpoint = run.checkpoint
    for index, op in enumerate(schedule.ops):
        run.phase, run.step = "advance", index
        _advance_until(clock, op.at_ms * 1000, checkpoint)
        run.phase = "step"
        _apply(run, op, errors)
        checkpoint()
    run.phase = "drain"
    end_us = schedule.end_ms * 1000
    _drain(clock, end_us + drain_ms * 1000, checkpoint)
    _advance_until(clock, end_us + observe_ms * 1000, checkpoint)
    trace.record(EventKind.DRAINED, detail=f"pending={len(clock.calls)}")
    if not run.stopped and target.can_stop(run.subject):
        run.phase = "teardown"
        _stop(run, "teardown")
        _drain(clock, clock.now_us + drain_ms * 1000, checkpoint)
    if run.stopped:
        _record_leftovers(run)


def _timer_recorder(trace: Trace, clock: FaultClock) -> Callable[[str, Any], None]:
    """Record the subject's own delayed calls as ``timer.set``, ``timer.fire`` and ``timer.cancel`` events.

    Each names the call by its number and function (``#3 Poller._poll``),
    ``timer.set`` with its due time. Jobs' own calls (a job settling after
    its duration) are the harness's, not the subject's, and are left out.
    The label is made once, when the call is set: it is cheap enough to be
    always on. Past ``MAX_TIMER_EVENTS`` timers in a run (a livelock), one
    ``timer.limit`` event says so and recording stops: no more timer events.
    """
    record = trace.record
    budget = [MAX_TIMER_EVENTS]

    def on_timer(what: str, call: Any) -> None:
        if what == "set":
            if isinstance(getattr(call.func, "__self__", None), Job):
                return  # no label: its firing or cancelling is not recorded either
            call.label = label = f"#{call.seq} {call_name(call)}"
            budget[0] -= 1
            record(EventKind.TIMER_SET, detail=f"{label} due {format_ms(call.due_us)}")
            if not budget[0]:
                record(EventKind.TIMER_LIMIT, detail=f"{MAX_TIMER_EVENTS} timers recorded: no more timer events")
                clock.on_timer = None  # recording ends here, and costs nothing from now on
            return
        label = getattr(call, "label", None)  # None: a job's call, past the limit, or set before recording began
        if label is not None:
            record(EventKind.TIMER_FIRE if what == "fire" else EventKind.TIMER_CANCEL, detail=label)

    return on_timer


def _record_leftovers(run: Run) -> None:
    """Record pending DelayedCalls and running LoopingCalls left after stop and drain."""
    clock, trace = run.clock, run.trace
    assert clock is not None
    for call in sorted(clock.calls, key=lambda c: (c.due_us, c.key)):
        if isinstance(getattr(call.func, "__self__", None), Job):
            continue
        trace.record(EventKind.LEAK_CALL, detail=f"{call_name(call)} due at {round(call.due_us / 1000)}ms")
    loops: dict[int, task.LoopingCall] = {}
    for call in clock.created:
        func = getattr(call, "func", None)
        # LoopingCall schedules itself (callLater(delay, self)), not a bound method of itself.
        owner = func if isinstance(func, task.LoopingCall) else getattr(func, "__self__", None)
        if isinstance(owner, task.LoopingCall):
            loops.setdefault(id(owner), owner)
    for loop in loops.values():
        if loop.running:
            trace.record(EventKind.LEAK_LOOP, detail=f"LoopingCall({func_name(loop.f)}) still running")


def _release(run: Run, observer: _LogRecorder) -> None:
    """Run the target's own invariants, then drop the subject and collect garbage."""
    trace = run.trace
    for invariant in run.target.invariants:
        name = getattr(invariant, "__name__", type(invariant).__name__)
        run.phase, run.detail = "invariant", name
        try:
            invariant(run)
        except AssertionError as exc:
            trace.record(EventKind.USER_FAIL, detail=f"{name}: {one_line(_ADDRESS.sub('0x?', str(exc))) or 'assertion failed'}")
        except _ABORTS + (KeyboardInterrupt,):
            raise
        except BaseException as exc:
            raise TargetError(f"the target's invariant {name} raised {describe_error(exc)}, not AssertionError") from None
        run.checkpoint()
    run.phase = "release"
    _teardown(run, observer)


def _teardown(run: Run, observer: _LogRecorder) -> None:
    """End the run in a fixed order, so garbage collection never decides what the trace says.

    First the subject, the Deferreds ``submit`` returned and the calls that
    already ran are dropped, and the garbage collected: "Unhandled error in
    Deferred" logged then is the subject's, and recorded. Pending operations
    (calls still scheduled, attempts of jobs that never settled) are held
    through that collection, as a reactor holds them; the trace then ends
    and is closed, and only then are they let go (job by job, in id order)
    and collected: a coroutine awaiting one of them is closed there, and what
    its ``finally`` blocks do is no part of the run.
    """
    trace, clock, jobs = run.trace, run.clock, run.jobs
    trace.freeze()
    if clock is not None:
        clock.created.clear()
    run.subject = None
    run.clock = None
    run.jobs = {}
    run.handles = {}
    _collect(observer)
    trace.record(EventKind.END)
    trace.close()
    held = any(job.pending for job in jobs.values())
    if clock is not None:
        held = held or bool(clock.calls)
        clock.calls.clear()
    for job_id in sorted(jobs):
        jobs[job_id].release()
    del clock, jobs
    if held:  # nothing held, nothing more to collect
        _collect(observer)


_runs_since_sweep = 0


def _isolate_garbage() -> None:
    """Freeze every object that predates the run, so the collection at its end
    scans only what the run made: exact (deterministic) and cheap. Cyclic
    garbage made between runs (Hypothesis's bookkeeping) would stay frozen,
    so every ``SWEEP_EVERY`` runs one full collection sweeps it.
    """
    global _runs_since_sweep
    _runs_since_sweep += 1
    if _runs_since_sweep >= SWEEP_EVERY:
        _runs_since_sweep = 0
        gc.collect()
    gc.freeze()


class _LogRecorder:
    """A Twisted log observer that records errors logged during a run into its trace.

    It also cleans each logged ``Failure`` (its traceback becomes text): Twisted
    keeps logged events in a buffer until logging begins, and a Failure's
    frames would keep the run's other Deferreds alive, to be collected, and
    logged, during some later run.
    """

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.failures = 0

    def __call__(self, event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        if failure is not None:
            self.failures += 1
            kind = EventKind.UNHANDLED if event.get("log_namespace") == _DEFER_NAMESPACE else EventKind.LOG_ERROR
            self.trace.record(kind, detail=describe_error(failure.value, failure))
            try:
                failure.cleanFailure()
            except Exception:
                pass
        elif event.get("log_level") in (LogLevel.error, LogLevel.critical) and not event.get("isError"):
            self.trace.record(EventKind.LOG_ERROR, detail=_ADDRESS.sub("0x?", str(event.get("log_format", ""))))


#: Collections at the end of a run while each one still logs failures (freeing more garbage).
MAX_COLLECTIONS = 4


def _collect(observer: _LogRecorder) -> None:
    """Collect the run's garbage, again while collecting logs failures whose frames held more of it."""
    for _ in range(MAX_COLLECTIONS):
        before = observer.failures
        gc.collect()
        if observer.failures == before:
            return


def _nothing() -> None:
    pass


def _advance_until(clock: FaultClock, when_us: int, checkpoint: Callable[[], None] = _nothing) -> None:
    """Fire every call that falls due up to ``when_us`` (late as the clock policy says, never
    past ``when_us``), then move the clock to ``when_us``. Integer time: it always ends."""
    clock.run_until(when_us, checkpoint)


def _drain(clock: FaultClock, horizon_us: int, checkpoint: Callable[[], None] = _nothing) -> None:
    """Keep firing calls until none is left or the next one is due past the horizon."""
    clock.drain(horizon_us, checkpoint)


def _stop(run: Run, why: str) -> None:
    run.trace.record(EventKind.STOP, detail=why)
    run.stopped = True
    try:
        result = run.target.stop_subject(run.subject)
    except _ABORTS + (KeyboardInterrupt,):
        raise
    except CancellerError as exc:
        # stop() cancelled a hostile job whose own canceller raised: the job's fault, not the subject's.
        run.trace.record(EventKind.STOP_RAISED, detail=describe_error(exc))
        result = None
    except BaseException as exc:
        raise TargetError(f"the subject's stop() raised {describe_error(exc)}") from None
    run.checkpoint()
    if isinstance(result, defer.Deferred):
        result.addErrback(_on_failure, run.trace, -1, EventKind.STOP_FAILURE)


def _watch(run: Run, job: int, d: Any, what: str) -> None:
    if not isinstance(d, defer.Deferred):
        raise TargetError(
            f"the target's {what} returned {describe(d)} for job {job}, not a Deferred; "
            "return the Deferred of the job's result"
        )
    run.handles[job] = d
    d.addCallbacks(
        _on_result,
        _on_failure,
        callbackArgs=(run.trace, job),
        errbackArgs=(run.trace, job, EventKind.FAILURE, run.target.declared_errors),
    )


def _apply(run: Run, op: Any, errors: dict[str, type[BaseException]]) -> None:
    trace = run.trace
    assert run.clock is not None
    if isinstance(op, Submit):
        job = Job(op.job, op.specs, run.clock, trace, errors, op.key)
        run.jobs[op.job] = job
        trace.record(EventKind.SUBMIT, op.job, submit_detail(op.priority, op.key if run.target.keys is not None else None))
        try:
            d = run.target.submit_job(run.subject, job, op.priority)
        except TargetError:
            raise
        except Exception as exc:
            trace.record(EventKind.SUBMIT_RAISED, op.job, describe_error(exc))
            _note_declared(trace, op.job, exc, run.target.declared_errors)
            return
        _watch(run, op.job, d, "submit")
    elif isinstance(op, Start):
        job = run.jobs.get(op.job) or Job(op.job, op.specs, run.clock, trace, errors)
        run.jobs[op.job] = job
        trace.record(EventKind.START, op.job)
        try:
            d = run.target.start_subject(run.subject, job)
        except _ABORTS + (KeyboardInterrupt,):
            raise
        except BaseException as exc:
            raise TargetError(f"the subject's start() raised {describe_error(exc)}") from None
        if isinstance(d, defer.Deferred):
            _watch(run, op.job, d, "start")
    elif isinstance(op, Cancel):
        handle = run.handles.get(op.job)
        if handle is None:
            trace.record(EventKind.CANCEL_SKIP, op.job, "not submitted")
            return
        trace.record(EventKind.CANCEL, op.job)
        try:
            handle.cancel()
        except Exception as exc:
            trace.record(EventKind.CANCEL_RAISED, op.job, describe_error(exc))
    elif isinstance(op, Stop):
        if run.stopped or not run.target.can_stop(run.subject):
            trace.record(EventKind.STOP_SKIP, detail="already stopped" if run.stopped else "subject has no stop()")
        else:
            _stop(run, "scheduled")
    elif isinstance(op, Jump):
        run.clock.jump_us(op.delta_ms * 1000)
        trace.record(EventKind.CLOCK_JUMP, detail=f"{op.delta_ms:+d}ms")
    elif isinstance(op, Call):
        _call(run, op)


def _call(run: Run, op: Call) -> None:
    """Call a target operation; record it, and whether it raised (or its Deferred failed) as declared."""
    operation = run.target.operations[op.operation]
    run.trace.record(EventKind.CALL, detail=f"{op.operation}({', '.join(describe(a, 40) for a in op.args)})")

    def outcome(exc: BaseException, how: EventKind) -> None:
        expected = isinstance(exc, operation.raises) or isinstance(exc, CancellerError)
        run.trace.record(EventKind.CALL_REFUSED if expected else how, detail=f"{op.operation}: {describe_error(exc)}")

    try:
        result = operation.call(run.subject, *op.args)
    except _ABORTS + (KeyboardInterrupt,):
        raise
    except Exception as exc:
        outcome(exc, EventKind.CALL_RAISED)
        return
    if isinstance(result, defer.Deferred):
        result.addErrback(lambda failure: outcome(failure.value, EventKind.CALL_FAILURE))


def _on_result(value: Any, trace: Trace, job: int) -> None:
    trace.record(EventKind.RESULT, job, describe(value))


def _on_failure(
    failure: Failure, trace: Trace, job: int, kind: EventKind = EventKind.FAILURE, declared: tuple[type[BaseException], ...] = ()
) -> None:
    trace.record(kind, job, describe_error(failure.value, failure))
    _note_declared(trace, job, failure.value, declared)


def _note_declared(trace: Trace, job: int, exc: BaseException, declared: tuple[type[BaseException], ...]) -> None:
    """After an error event, record (as ``error.is``) which declared types the error is an instance of,
    when its class name alone would say otherwise: a subclass of ``CancelledError``, or a same-named
    class that is not the declared one. Most runs never need it, so their traces stay as they were.
    """
    name = type(exc).__name__
    by_type = sorted({t.__name__ for t in declared if isinstance(exc, t)})
    by_name = sorted({t.__name__ for t in declared if t.__name__ == name})
    if by_type != by_name:
        trace.record(EventKind.ERROR_IS, job, ",".join(by_type))

