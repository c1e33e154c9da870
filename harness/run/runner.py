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
handler is undone however the run ends (inside a ``RunSession``, the
patches and the watchdog's handler are disarmed when the run ends and
removed when the session does: ``harness.run.session``).

This module is the lifecycle alone; each idea it uses has its own module:
``checks`` (what a schedule may name), ``steps`` (applying one operation,
recording results, timers and leftovers), ``logcapture`` (what Twisted logs
goes into the trace), ``garbage`` (the garbage-collection policy around
runs) and ``describe`` (deterministic text for values and errors).
"""

from __future__ import annotations

from traceback import clear_frames
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from harness.errors import HarnessError, TargetError
from harness.guard import signals
from harness.guard.escapes import EscapeGuard, Escaped
from harness.guard.forks import FORKS
from harness.guard.watchdog import DEFAULT_TIMEOUT_S, Expired, Watchdog
from harness.model.schedule import Call, Cancel, Jump, Op, Schedule, Start, Submit
from harness.model.target import Target
from harness.model.trace import EventKind, Trace, format_ms, one_line
from harness.model.user_fail import NOT_JUDGED, RETURNED_FALSE, fail_detail
from harness.run.checks import check_schedule
from harness.run.diagnosis import Diagnosis
from harness.run.facts import facts_of, stranded_jobs
from harness.run.clock import MAX_ROUNDS_PER_INSTANT, FaultClock, Livelock, call_name
from harness.run.describe import describe_error, mask_addresses
from harness.run.rewritten import rewritten_assert
from harness.run.garbage import POLICY as GARBAGE
from harness.run.jobs import Job
from harness.run.logcapture import LogRecorder, logging_into
from harness.run.logged import log_judge
from harness.run.session import RunSession, current_session
from harness.run.steps import ABORTS, MAX_TIMER_MOVES, apply, cancel_job, handle_passed_on, nothing, record_leftovers, stop, submitter, timer_recorder, work_for_build

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
#: Periods a periodic subject is watched after the last operation.
PERIODS_OBSERVED = 4


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

    ``trace`` (and ``diagnosis``) is all invariants read. ``subject``, ``clock``, ``jobs``,
    ``handles`` and ``stopping`` are live only while the target's own invariants run; the
    runner then drops them (``let_go``) so garbage collection can reveal unhandled errors.
    """

    target: Target
    schedule: Schedule
    trace: Trace
    clock: FaultClock | None = None
    subject: Any = None
    jobs: dict[int, Job] = field(default_factory=dict)
    handles: dict[int, defer.Deferred[Any]] = field(default_factory=dict)
    stopped: bool = False
    #: What ``stop()`` returned when it was a Deferred (a graceful stop, completing once the work in flight
    #: ended); None otherwise. ``record_leftovers`` does not judge a stop still waiting on work in flight.
    stopping: defer.Deferred[Any] | None = field(default=None, repr=False)
    #: The Deferreds earlier ``stop()`` calls returned, for a subject an ``Operation(restarts=True)`` started
    #: again (``stopping`` is its last stop's): the trace index of each ``stop`` event and its Deferred.
    earlier_stops: list[tuple[int, defer.Deferred[Any]]] = field(default_factory=list, repr=False)
    #: The Deferreds operations returned (but those declaring ``may_pend``): the trace index of the call,
    #: its ``name(args)`` and the Deferred; ``record_leftovers`` records those that never fired.
    answers: list[tuple[int, str, defer.Deferred[Any]]] = field(default_factory=list, repr=False)
    #: Each failure a Deferred of the harness's callers (of ``submit``, ``start``, ``stop()``, an operation)
    #: delivered, with that Deferred: the caller records it and passes it on (``steps.pass_on``: a second caller
    #: handed the same Deferred, and the subject's own callbacks, see it too); the teardown handles the ones
    #: still at the end of their chain, so none is logged as unhandled for the harness.
    passed_on: list[tuple[defer.Deferred[Any], Failure]] = field(default_factory=list, repr=False)
    #: Whether the harness's callers still pass failures on: False once ``let_go`` handled them. A failure
    #: delivered later (a coroutine of the subject's closed as its garbage is collected) is consumed then:
    #: nothing of the run is left to see it, and nothing would handle it.
    watching: bool = field(default=True, repr=False)
    #: Where the run is: ``build``, ``advance`` (to ``step``), ``step``, ``drain``, ``teardown``,
    #: ``invariant`` (``detail`` names it) or ``release``; read when a run must be abandoned.
    phase: str = "build"
    step: int | None = None
    detail: str = ""
    checkpoint: Callable[[], None] = field(default=lambda: None, repr=False)
    #: What the diagnosis step (``harness.run.diagnosis``) established about the finished run; None
    #: until ``harness.check`` (or ``diagnose``) ran. Invariants read it, never re-run the target.
    diagnosis: Diagnosis | None = field(default=None, repr=False)
    #: The target's own invariants that returned False: this run gave them nothing to judge (the
    #: report counts, per user invariant, the examples it judged). Not part of the trace.
    unjudged: tuple[str, ...] = field(default=(), repr=False)
    #: For each caller's failure the target's ``wraps`` unwrapped (trace index of its ``failure`` event):
    #: the type name of the declared wrapper the caller received (``GaveUp``), which the trace records as
    #: the error it carries. ``Outcome.wrapper`` in ``run.view`` reads it. Not part of the trace.
    wrapped: dict[int, str] = field(default_factory=dict, repr=False)
    #: For each ``user.fail`` event of an ``assert`` pytest rewrote (trace index): the error's whole text, with
    #: pytest's explanation (``3 starts\nassert 3 <= 2\n +  where ...``), which the violation's message shows.
    #: Not part of the trace, which records the plain statement's message (``harness.run.rewritten``).
    explained: dict[int, str] = field(default_factory=dict, repr=False)
    #: With the target's ``logs`` declared: for each error logged during the run that is legitimate (trace
    #: index of its ``log.error`` event), why (a job's own error, or a declared type); ``errors.logged``
    #: judges the rest (``harness.run.logged``). Not part of the trace.
    logs_allowed: dict[int, str] = field(default_factory=dict, repr=False)

    def let_go(self) -> None:
        """Drop every reference the record holds to the live run: the subject, the clock, the jobs, the
        Deferreds ``submit`` returned and the one ``stop()`` returned.

        The one place that lists them (``_teardown`` and ``_abandon`` call it): a field holding any of the
        subject's objects kept past it would keep the whole subject alive as long as the record is (a
        graceful ``stop()``'s Deferred reaches every worker waiting on it), and its garbage, with any
        "Unhandled error in Deferred" in it, would be collected after the run, never recorded in its trace.
        First the failures the harness's callers passed on (``passed_on``) and no callback of the subject's
        handled since are handled: the harness's, not the subject's, to leave unhandled.
        """
        handle_passed_on(self.passed_on)
        self.watching = False
        self.subject = None
        self.clock = None
        self.jobs = {}
        self.handles = {}
        self.stopping = None
        self.earlier_stops = []
        self.answers = []
        self.passed_on = []

    @property
    def view(self) -> RunView:
        """The typed, documented records of this run (``harness.run.view``; docs/run-api.md)."""
        from harness.run.view import RunView

        return RunView.of(self)

    @property
    def unfinished_step(self) -> int | None:
        """The index of the operation a run that did not finish stopped in (None: after the last one).

        The one place that says which step hung: ``TargetHung.step`` and the
        campaign's cut of a hanging schedule both read it.
        """
        return self.step if self.phase in ("step", "advance") else None

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



def run_schedule(target: Target, schedule: Schedule, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> Run:
    """Run ``schedule`` against a fresh subject built by ``target``; return the finished run.

    ``timeout_s`` is the wall-clock limit of the run (None: none). Raises
    ``TargetHung`` when the target hangs or livelocks the clock, and
    ``TargetError`` when its ``build`` or ``stop`` raises, it calls the global
    reactor or sleeps for real, or the schedule injects an error the target
    does not know. Inside a ``RunSession`` (``harness.run.session``) the run
    uses the session's guard and watchdog; otherwise it enters a session of its own.
    """
    session = current_session()
    if session is None:
        # The guard first: it may import the global reactor (slow with TLS installed), which is no part of the run's time.
        with RunSession() as session:
            return _run(session, target, schedule, timeout_s)
    return _run(session, target, schedule, timeout_s)


def _run(session: RunSession, target: Target, schedule: Schedule, timeout_s: float | None) -> Run:
    check_schedule(target, schedule)
    automatic = GARBAGE.isolate()
    policy = schedule.clock
    clock = FaultClock.for_policy(policy)
    trace = Trace.of_clock(clock)
    clock.on_escape = lambda call, exc: trace.record(EventKind.REACTOR_ERROR, detail=f"{call_name(call)}: {describe_error(exc)}")
    clock.on_timer = timer_recorder(trace, clock)
    run = Run(target=target, schedule=schedule, trace=trace, clock=clock)
    observer = LogRecorder(trace, log_judge(target), run.logs_allowed)
    aborted: BaseException | None = None
    guard, dog = session.guard, session.dog
    try:
        with logging_into(observer):
            session.busy = True
            try:
                guard.arm(clock if target.lends_reactor else None)
                try:
                    dog.start(timeout_s)
                    forks = FORKS
                    born = forks[0]

                    def checkpoint() -> None:
                        # Called before every wake and after every step (about 75 times a run): the common case,
                        # nothing escaped, not expired, not forked, is three reads (a fork through Python counts
                        # in ``forks``: no getpid system call; ``harness.guard.forks``); the guard and watchdog
                        # act otherwise (a forked child leaves in ``guard.check``).
                        if guard.escaped is not None or dog.expired or forks[0] != born:
                            guard.check()
                            dog.check()

                    run.checkpoint = checkpoint
                    try:
                        try:
                            run.subject = target.build(clock, *work_for_build(run))
                        except ABORTS + (KeyboardInterrupt,):
                            raise
                        except BaseException as exc:
                            raise TargetError(f"the target's build(clock) raised {describe_error(exc)}") from None
                        checkpoint()
                        _play(run, guard, dog, born)
                        _release(run, observer)
                        guard.check_streams()
                    except ABORTS as exc:
                        dog.stop()
                        aborted = exc
                    except HarnessError:
                        raise
                    except KeyboardInterrupt as exc:
                        if signals.interrupt_requested():
                            raise  # the user's Ctrl-C (a second signal), not the target's
                        dog.stop()
                        aborted = exc
                    except BaseException as exc:
                        # The target raised something no Deferred catches, or broke the clock or a
                        # Deferred the runner drives: the target's error, not the harness's.
                        dog.stop()
                        aborted = exc
                finally:
                    dog.stop()
            finally:
                guard.disarm()
                session.busy = False
            if aborted is not None:
                # With neither the watchdog nor the guard armed: the subject's garbage is collected outside the run.
                raise _abandon(run, aborted, guard, dog, observer) from None
    finally:
        run.checkpoint = nothing
        GARBAGE.release(automatic)
    return run


def _abandon(run: Run, exc: BaseException, guard: EscapeGuard, dog: Watchdog, observer: LogRecorder) -> HarnessError:
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
        # (a signal's handler taken from the harness, "signal.signal on SIGALRM", is not an escape from virtual time)
        escaping = ", escaping virtual time" if called.startswith(("reactor.", "time.", "signal.")) and " on " not in called else ""
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
        error = TargetHung(message, run, "hang", run.unfinished_step, t_us, index)
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
        error = TargetHung(message, run, "livelock", run.unfinished_step, t_us, index)
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
    run.let_go()
    GARBAGE.collect(observer.logged_failures)
    return error


def _play(run: Run, guard: EscapeGuard, dog: Watchdog, born: int) -> None:
    """The operations, the drain and the teardown ``stop()``. ``guard``, ``dog`` and ``born`` are what
    ``run.checkpoint`` tests: after each step its test is made here, and the checkpoint called only
    when it holds (a call per step cost more than the test)."""
    clock, trace, schedule, target = run.clock, run.trace, run.schedule, run.target
    assert clock is not None
    policy = schedule.clock
    # Every job may run after all the others, each of its calls may fire a stride plus jitter late,
    # and the subject's own delays (backoffs, re-arms) may each be late too.
    lateness = policy.step_ms + policy.jitter_ms
    horizon = _DrainHorizon(schedule, lateness, target.declared_wait_ms, target.declared_answer_ms, run)
    observe_ms = PERIODS_OBSERVED * target.period_ms()
    errors = target.error_types
    checkpoint = run.checkpoint
    submit = submitter(run, errors)  # a submit's work that is the same for every job, done once
    handles, forks = run.handles, FORKS
    for index, op in enumerate(schedule.ops):
        run.phase, run.step = "advance", index
        at_us = op.at_ms * 1000
        wake = clock.next_wake_us() if clock.calls else None  # (None when nothing is pending: 2 steps in 5)
        if wake is None or wake > at_us:
            # Nothing to run before the step (nor due at its instant, so no rounds to land between): run_until
            # would only check again what the last checkpoint checked (no code ran since) and move the time.
            if at_us > clock.now_us:
                clock.now_us = at_us
        elif op.after_rounds is not None:
            _pause_for(run, op.after_rounds, clock.run_until(at_us, checkpoint, op.after_rounds))
        else:
            clock.run_until(at_us, checkpoint)
        run.phase = "step"
        if type(op) is Submit:
            submit(op)
        elif type(op) is Cancel:
            cancel_job(handles, trace, op.job)  # what apply does for it, without the isinstance chain
        else:
            apply(run, op, errors)
        if guard.escaped is not None or dog.expired or forks[0] != born:  # run.checkpoint's test
            checkpoint()
    run.phase = "drain"
    end_us = schedule.end_ms * 1000
    horizon.drain(clock, end_us, checkpoint)
    clock.run_until(end_us + observe_ms * 1000, checkpoint)
    trace.record(EventKind.DRAINED, detail=f"pending={len(clock.calls)}")
    if not run.stopped and target.can_stop(run.subject):
        run.phase = "teardown"
        stop(run, "teardown")
        horizon.drain(clock, clock.now_us, checkpoint)
    if run.stopped:
        record_leftovers(run)


class _DrainHorizon:
    """How far the drains go: ``_job_costs(schedule, lateness) + LATE_HOPS * lateness + DRAIN_SLACK_MS``
    after their start, the job costs worked out only for a drain that reaches past the rest of it. The slack
    is at least the target's ``declared_wait_ms`` (its timeout plus the cleanup after it): a job started as
    late as the job costs allow is answered by then, as declared (audit 14: a 30 s compensation after a
    timeout was called a deadlock at a drain ending 10 s after the last operation).

    Most runs drain to nothing pending long before ``LATE_HOPS * lateness + DRAIN_SLACK_MS`` (the
    floor: job costs are never negative, as durations and lateness are not), and a drain to the floor
    then did exactly what the drain to the whole horizon does. Only when calls are still pending past
    the floor are the costs (a pass over the schedule) worked out, and the drain goes on to the whole
    horizon: the same wakes in the same order, with one more checkpoint between the two (no code of
    the target runs between them).

    Past the whole horizon, with calls still pending and a job stranded there (``stranded_jobs``: its caller
    waits, and no work that never ends excuses it), the drain *lingers* while a caller waits for work that
    does not hang (``_callers_waiting``), as far as the target's ``declared_answer_ms`` lets a caller wait: its
    ``deadline_ms`` after the drain's start (every job was submitted by then), or the longest declared backoff
    after the last attempt that failed or was cancelled (a retry 30 s after a failure; each retry's failure
    moves that bound on, as each attempt's start does to its end). It stops at the first wake past the bound or with no such caller left, and after
    ``MAX_TIMER_MOVES`` wakes whatever is pending (a heartbeat that never answers: a run never hangs).
    Without ``deadline_ms`` and ``backoff_ms`` it never lingers: the drain ends as it did (audit 14: a
    batcher flushing every 15 s was a deadlock at a drain stopping 10 s after the last operation; it declares
    ``deadline_ms``, and ``completion.deadline`` says so when timers were still pending).
    """

    __slots__ = ("schedule", "lateness", "floor_ms", "drain_ms", "answer_ms", "run")

    def __init__(
        self,
        schedule: Schedule,
        lateness: int,
        declared_wait_ms: int = 0,
        answer_ms: tuple[int, int] = (0, 0),
        run: Run | None = None,
    ) -> None:
        self.schedule = schedule
        self.lateness = lateness
        self.floor_ms = LATE_HOPS * lateness + max(DRAIN_SLACK_MS, declared_wait_ms)
        #: The whole horizon (milliseconds after a drain's start), once worked out.
        self.drain_ms: int | None = None
        #: The target's ``declared_answer_ms``: (deadline_ms, the longest backoff before a retry).
        self.answer_ms = answer_ms
        #: The run whose callers a lingering drain waits for (None: it never lingers).
        self.run = run

    def whole_ms(self) -> int:
        """The whole horizon: the floor plus every job's cost."""
        if self.drain_ms is None:
            self.drain_ms = _job_costs(self.schedule, self.lateness) + self.floor_ms
        return self.drain_ms

    def drain(self, clock: FaultClock, start_us: int, checkpoint: Callable[[], None]) -> None:
        """``clock.drain(start_us + whole_ms() * 1000, checkpoint)``, the costs worked out only if needed; then
        lingers while a caller waits, if the target declares how long it may (see the class)."""
        clock.drain(start_us + (self.floor_ms if self.drain_ms is None else self.drain_ms) * 1000, checkpoint)
        if self.drain_ms is None and clock.calls:  # stopped at the floor with calls pending: on to the whole horizon
            clock.drain(start_us + self.whole_ms() * 1000, checkpoint)
        run = self.run
        if clock.calls and run is not None and (self.answer_ms[0] or self.answer_ms[1]):
            if stranded_jobs(facts_of(run), run.target):  # (a pass over the trace, only for such a target)
                self._linger(clock, run, start_us, checkpoint)

    def _linger(self, clock: FaultClock, run: Run, start_us: int, checkpoint: Callable[[], None]) -> None:
        """Wake after wake while a caller waits, up to the declared bound (at most ``MAX_TIMER_MOVES`` wakes)."""
        deadline, backoff = self.answer_ms
        late_us = LATE_HOPS * self.lateness * 1000
        bound_us = start_us + late_us + deadline * 1000 if deadline else 0
        raw, jobs = run.trace.raw, run.jobs
        seen = 0
        for _ in range(MAX_TIMER_MOVES):
            checkpoint()
            if backoff:  # the last attempt to fail or be cancelled sets when a retry is owed by; a retry, its end
                for event in raw[seen:]:
                    kind = event[1]
                    if kind is _JOB_FAIL or kind is _JOB_CANCEL:
                        bound_us = max(bound_us, event[0] + late_us + backoff * 1000)
                    elif kind is _JOB_START and event[2] in jobs:
                        bound_us = max(bound_us, event[0] + late_us + jobs[event[2]].spec(event[3]).after_ms * 1000)
                seen = len(raw)
            wake = clock.next_wake_us()
            if wake is None or wake > bound_us or not _callers_waiting(run):
                return
            clock.wake(wake)


_JOB_START, _JOB_FAIL, _JOB_CANCEL = EventKind.JOB_START, EventKind.JOB_FAIL, EventKind.JOB_CANCEL


def _callers_waiting(run: Run) -> bool:
    """Whether a job's caller still waits (its Deferred from submit unfired) with no attempt of its job hanging
    (a hanging attempt's caller may wait for ever: no timer of the subject answers it)."""
    jobs = run.jobs
    for job_id, handle in run.handles.items():
        if handle.called:
            continue
        job = jobs.get(job_id)
        if job is None or not any(spec.kind == "hang" for spec in map(job.spec, job.pending)):
            return True
    return False


def _job_costs(schedule: Schedule, lateness: int) -> int:
    """The sum of every job spec's cost (its duration plus ``lateness``), plus the largest (0 without jobs).

    Once a run, in one pass over the operations (no ``schedule.submits`` tuple made, nor ``op.specs`` for a
    plain submit):
    ``sum(costs) + max(costs, default=0)`` for ``costs = [spec.after_ms + lateness for op in
    schedule.submits for spec in op.specs]``.
    """
    total = count = top = 0
    for op in schedule.ops:
        if type(op) is Submit and not op.then:  # most operations: one spec, read once
            after = op.spec.after_ms
            total += after
            count += 1
            if after > top:
                top = after
        elif isinstance(op, (Submit, Start)):  # retries, a start, a subclass: its specs as it says them
            for spec in op.specs:
                after = spec.after_ms
                total += after
                count += 1
                if after > top:
                    top = after
    return total + count * lateness + (top + lateness if count else 0)


def _pause_for(run: Run, rounds: int, left: int) -> None:
    """Record that the operation about to run lands between the rounds of its instant (only when
    calls due then are left for after it: otherwise the order is the usual one, and so is the trace)."""
    if left:
        where = "before the calls due now" if rounds == 0 else f"after round {rounds} of this instant"
        calls = f"{left} call{'' if left == 1 else 's'} still due run{'s' if left == 1 else ''} after it"
        run.trace.record(EventKind.REACTOR_PAUSE, detail=f"step {run.step + 1 if run.step is not None else '?'} lands {where}; {calls}")


def _release(run: Run, observer: LogRecorder) -> None:
    """Run the target's own invariants, then drop the subject and collect garbage."""
    trace = run.trace
    for invariant in run.target.invariants:
        name = getattr(invariant, "__name__", type(invariant).__name__)
        run.phase, run.detail = "invariant", name
        try:
            said = invariant(run)
            if said is NOT_JUDGED:
                run.unjudged += (name,)
            elif said is False:  # a predicate's "no": as an assert's, never a silent pass
                trace.record(EventKind.USER_FAIL, detail=fail_detail(name, AssertionError(), len(trace), RETURNED_FALSE))
        except AssertionError as exc:  # an InvariantFailed names the events it is about (harness.model.user_fail)
            # A rewritten assert's explanation (pytest's "assert 3 <= 2 + where ...") is printed, not recorded:
            # the trace holds what the plain statement says, so it is the same under pytest and `harness replay`.
            plain = rewritten_assert(exc)
            full = one_line(mask_addresses(str(exc)))
            text = full if plain is None else one_line(mask_addresses(plain.message))
            index = trace.record(EventKind.USER_FAIL, detail=fail_detail(name, exc, len(trace), text))
            if plain is not None and index >= 0:
                run.explained[index] = full
        except ABORTS + (KeyboardInterrupt,):
            raise
        except BaseException as exc:
            raise TargetError(f"the target's invariant {name} raised {describe_error(exc)}, not AssertionError") from None
        run.checkpoint()
    run.phase = "release"
    _teardown(run, observer)


def _teardown(run: Run, observer: LogRecorder) -> None:
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
    run.let_go()
    GARBAGE.collect(observer.logged_failures)
    trace.record(EventKind.END)
    trace.close()
    # The jobs to let go, in id order: those holding attempts (one whose ``pending`` the target replaced too,
    # so that letting go fails as it would; an empty one has nothing to let go of).
    # (ids, not the jobs, held in locals: nothing here may keep a job alive through the collection below)
    releasing = [job_id for job_id, job in jobs.items() if job.pending or type(job.pending) is not dict]
    releasing.sort()
    held = any(jobs[job_id].pending for job_id in releasing)
    if clock is not None:
        held = held or bool(clock.calls)
        clock.calls.clear()
    for job_id in releasing:
        jobs[job_id].release()
    del clock, jobs
    if held:  # nothing held, nothing more to collect
        GARBAGE.collect(observer.logged_failures)

