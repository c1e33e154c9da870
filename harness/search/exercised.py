"""What a campaign exercised: per fault and per invariant, how many examples reached it.

A clean campaign proves only what its schedules actually made happen. This
module counts, over the search examples of a campaign, the examples that
contained each fault and the examples in which each applicable invariant had
something to judge ("was exercised"). Both are defined by small tables below:

- a *fault* is counted from the schedule (what was thrown at the subject:
  job behaviours, injected error types, clock policies, jumps) and from the
  trace where only the run can tell (a cancel that landed while the job
  waited, ran, or after its result; a stop the subject could take);
- an *invariant* is exercised by an example when the trace holds its subject
  matter: a cancel for the cancellation invariants, a failed job for the
  error ones, more outstanding jobs than the limit for ``concurrency.limit``.
  Invariants not in the table (``errors.escaped``, ``errors.unhandled``,
  user invariants, any added later) are exercised by every example.

Counting is one pass over each run's trace and schedule, a few integer
updates per event, so it is cheap enough to stay on in every campaign.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.model.schedule import Cancel, JobSpec, Jump, Schedule, Start, Submit
from harness.model.trace import Event, EventKind

if TYPE_CHECKING:
    from harness.run.runner import Run
    from harness.model.menu import Menu
    from harness.model.target import Target

FIRES = frozenset({EventKind.RESULT, EventKind.FAILURE})
ENDS = frozenset({EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL})
# The kinds ``expose`` branches on, bound once: it runs over every event of every search example.
_SUBMIT, _START, _JOB_START, _JOB_FAIL = EventKind.SUBMIT, EventKind.START, EventKind.JOB_START, EventKind.JOB_FAIL
_CANCEL, _CALL, _STOP = EventKind.CANCEL, EventKind.CALL, EventKind.STOP


@dataclass
class Exposure:
    """What one run's trace shows happened, reduced to the few facts the tables ask about."""

    submits: int = 0
    fired: int = 0
    starts: int = 0
    fails: int = 0
    retried: bool = False
    peak_outstanding: int = 0
    peak_waiting: int = 0
    longest_attempt_us: int = 0
    cancels: int = 0
    cancel_waiting: bool = False
    cancel_running: bool = False
    cancel_late: bool = False
    cancel_twice: bool = False
    cancel_with_queue: bool = False
    stops: int = 0
    stop_scheduled: bool = False
    stop_busy: bool = False
    submit_after_stop: bool = False
    submit_after_fail: bool = False
    calls: int = 0


#: What ``expose`` does with each event kind, by a small number (a kind not listed: ``_role``).
_TIMER, _OTHER, _R_SUBMIT, _R_START, _R_JOB_START, _R_END, _R_FAIL, _R_FIRE, _R_CANCEL, _R_CALL, _R_STOP = range(11)
_ROLES: dict[str, int] = {
    **{kind: _TIMER if kind.startswith("timer.") else _OTHER for kind in EventKind},
    _SUBMIT: _R_SUBMIT,
    _START: _R_START,
    _JOB_START: _R_JOB_START,
    EventKind.JOB_FINISH: _R_END,
    EventKind.JOB_CANCEL: _R_END,
    _JOB_FAIL: _R_FAIL,
    EventKind.RESULT: _R_FIRE,
    EventKind.FAILURE: _R_FIRE,
    _CANCEL: _R_CANCEL,
    _CALL: _R_CALL,
    _STOP: _R_STOP,
}


def _role(kind: str) -> int:
    """The role of a kind ``_ROLES`` does not list (a trace read from elsewhere may hold any text)."""
    return _TIMER if kind.startswith("timer.") else _OTHER


def expose(events: Iterable[Event]) -> Exposure:
    """One pass over a trace: the facts the exercise tables read.

    Hot: the CLI's campaigns call it on every search example (``Tally``).
    Each event's kind is looked up once (``_ROLES``), the counts are kept in
    locals, and the commonest kinds take the shortest paths: a submit (about
    four events in ten of a pool's trace) and a job start (where the wait for
    a slot is measured) come first, each with only the updates it needs.
    ``tests/test_exercised_fast.py`` holds it to the plain pass it replaced
    over many runs of many subjects.
    """
    waiting: set[int] = set()
    started: set[int] = set()
    fired: set[int] = set()
    cancelled: set[int] = set()
    outstanding: set[int] = set()
    running: dict[tuple[int, int], int] = {}
    failed_last: set[int] = set()  # jobs whose last attempt failed
    stopped = failed = False
    submits = fires = starts = fails = cancels = stops = calls = 0
    peak_outstanding = peak_waiting = longest = 0
    retried = cancel_waiting = cancel_running = cancel_late = cancel_twice = cancel_with_queue = False
    stop_scheduled = stop_busy = submit_after_stop = submit_after_fail = False
    last_us = 0
    just_submitted = None
    roles = _ROLES
    for t_us, kind, job, attempt, detail in events:
        role = roles.get(kind)
        if role is None:
            role = _role(kind)
        # Before every event but a timer's (skipped) and the start of the job submitted just before it (it
        # did not wait: a job is recorded as submitted just before the subject gets it), the jobs waiting.
        if role == _R_SUBMIT or role == _R_START:  # a job handed to the subject (periodic work never waits)
            last_us = t_us
            if len(waiting) > peak_waiting:
                peak_waiting = len(waiting)
            submits += 1
            outstanding.add(job)
            if role == _R_SUBMIT:
                just_submitted = job
                waiting.add(job)
            else:
                just_submitted = None
            if stopped:
                submit_after_stop = True
            if failed:
                submit_after_fail = True
            if len(outstanding) > peak_outstanding:
                peak_outstanding = len(outstanding)
            continue
        if role == _TIMER:
            continue  # the subject's own timers: not what the tables ask about, and no wait for a slot
        last_us = t_us
        if role == _R_JOB_START:
            if job != just_submitted and len(waiting) > peak_waiting:
                peak_waiting = len(waiting)
            just_submitted = None
            starts += 1
            if attempt > 0 and job in failed_last:  # a periodic call after a success is no retry
                retried = True
            started.add(job)
            waiting.discard(job)
            running[(job, attempt)] = t_us
            continue
        if len(waiting) > peak_waiting:
            peak_waiting = len(waiting)
        just_submitted = None
        if role == _R_FIRE:
            if job >= 0:
                fires += 1
                fired.add(job)
                waiting.discard(job)
                outstanding.discard(job)
        elif role == _R_END or role == _R_FAIL:
            began = running.pop((job, attempt), None)
            if began is not None and t_us - began > longest:
                longest = t_us - began
            if role == _R_FAIL:
                fails += 1
                failed = True
                failed_last.add(job)
            else:
                failed_last.discard(job)
        elif role == _R_CANCEL:
            cancels += 1
            if job in cancelled:
                cancel_twice = True
            elif job in fired:
                cancel_late = True
            else:
                for key in running:  # (a loop, not ``any`` over a generator: no frame made per cancel)
                    if key[0] == job:
                        cancel_running = True
                        break
                else:
                    if job not in started:
                        cancel_waiting = True
            if len(waiting) > (job in waiting):  # another job waits
                cancel_with_queue = True
            cancelled.add(job)
        elif role == _R_CALL:
            calls += 1
        elif role == _R_STOP:
            stops += 1
            stop_scheduled |= detail == "scheduled"
            stop_busy |= bool(outstanding)
            stopped = True
    peak_waiting = max(peak_waiting, len(waiting))
    for began in running.values():
        longest = max(longest, last_us - began)
    return Exposure(
        submits=submits, fired=fires, starts=starts, fails=fails, retried=retried, peak_outstanding=peak_outstanding,
        peak_waiting=peak_waiting, longest_attempt_us=longest, cancels=cancels, cancel_waiting=cancel_waiting,
        cancel_running=cancel_running, cancel_late=cancel_late, cancel_twice=cancel_twice,
        cancel_with_queue=cancel_with_queue, stops=stops, stop_scheduled=stop_scheduled, stop_busy=stop_busy,
        submit_after_stop=submit_after_stop, submit_after_fail=submit_after_fail, calls=calls,
    )


Rule = Callable[[Exposure, "Target"], bool]


@dataclass(frozen=True)
class Exercise:
    """When an invariant counts as exercised: a one-line description and the rule."""

    when: str
    rule: Rule


#: Invariant name -> when an example exercises it. Missing names: every example.
INVARIANT_EXERCISE: dict[str, Exercise] = {
    "completion.once": Exercise("a submitted Deferred fired", lambda x, t: x.fired > 0),
    "concurrency.limit": Exercise(
        "more jobs outstanding at once than the limit", lambda x, t: x.peak_outstanding > (t.limit or 0)
    ),
    "concurrency.key_limit": Exercise(
        "more jobs outstanding at once (over all keys) than the key limit",
        lambda x, t: x.peak_outstanding > (t.keyed_limit or 0),
    ),
    "concurrency.fifo": Exercise("two or more jobs waited for a slot at once", lambda x, t: x.peak_waiting >= 2),
    "concurrency.priority": Exercise("two or more jobs waited for a slot at once", lambda x, t: x.peak_waiting >= 2),
    "cancellation.fires": Exercise("a submitted Deferred was cancelled", lambda x, t: x.cancels > 0),
    "cancellation.no_start": Exercise("a job was cancelled before it started", lambda x, t: x.cancel_waiting),
    "cancellation.propagates": Exercise("a job was cancelled while it ran", lambda x, t: x.cancel_running),
    "cancellation.detaches": Exercise(
        'a job was cancelled while it ran (with "detach_queued": or while it waited)',
        lambda x, t: x.cancel_running or (x.cancel_waiting and "detach_queued" in t.cancel_modes),
    ),
    "sharing.isolated": Exercise("a submitted Deferred was cancelled", lambda x, t: x.cancels > 0),
    "sharing.joined": Exercise("two or more jobs were outstanding at once", lambda x, t: x.peak_outstanding >= 2),
    "errors.own_result": Exercise("two or more submitted Deferreds fired", lambda x, t: x.fired >= 2),
    "errors.operation": Exercise("an operation was called", lambda x, t: x.calls > 0),
    "cancellation.harmless": Exercise(
        "a Deferred was cancelled twice, or after its result", lambda x, t: x.cancel_twice or x.cancel_late
    ),
    "cancellation.releases": Exercise("a job was cancelled while others waited", lambda x, t: x.cancel_with_queue),
    "time.timeout": Exercise(
        "a job ran for at least the timeout", lambda x, t: x.longest_attempt_us >= (t.timeout_ms or 0) * 1000
    ),
    "time.retries": Exercise("a job attempt failed", lambda x, t: x.fails > 0),
    "time.backoff": Exercise("a job was retried, or a periodic call followed a failed one", lambda x, t: x.retried),
    **dict.fromkeys(
        ("time.hedge_count", "time.hedge_early", "time.hedge_late", "time.hedge_losers"),
        Exercise(
            "a job ran at least hedge_ms, or jobs were called more times than submitted",
            lambda x, t: x.starts > x.submits or x.longest_attempt_us >= (t.hedge_ms or 0) * 1000,
        ),
    ),
    **dict.fromkeys(
        ("time.fanout_count", "time.fanout_together", "time.quorum_early", "time.quorum_late", "time.fanout_losers"),
        Exercise("jobs were called more times than submitted", lambda x, t: x.starts > x.submits),
    ),
    "time.early": Exercise("two or more calls started", lambda x, t: x.starts >= 2),
    "time.overlap": Exercise("two or more calls started", lambda x, t: x.starts >= 2),
    "time.after_stop": Exercise("stop() was called", lambda x, t: x.stops > 0),
    "time.after_end": Exercise("two or more calls started", lambda x, t: x.starts >= 2),
    "time.loop_died": Exercise("the periodic work was started", lambda x, t: x.submits > 0),
    "time.on_demand": Exercise("an operation was called", lambda x, t: x.calls > 0),
    "errors.propagate": Exercise("a job failed", lambda x, t: x.fails > 0),
    "errors.rejects": Exercise("a job was submitted", lambda x, t: x.submits > 0),
    "errors.poison": Exercise("a job was submitted after one failed", lambda x, t: x.submit_after_fail),
    "completion.deadline": Exercise("a job was submitted", lambda x, t: x.submits > 0),
    "completion.stop": Exercise("stop() was called", lambda x, t: x.stops > 0),
    "completion.operation": Exercise("an operation was called", lambda x, t: x.calls > 0),
    "leaks.work": Exercise("stop() was called with work outstanding", lambda x, t: x.stop_busy),
    "leaks.calls": Exercise("stop() was called with work outstanding", lambda x, t: x.stop_busy),
    "leaks.loops": Exercise("stop() was called with work outstanding", lambda x, t: x.stop_busy),
}

ALWAYS = Exercise("every example", lambda x, t: True)


#: What exercises one of the target's own invariants (a ``user.<name>`` row).
JUDGED = Exercise("it judged the run (did not return NOT_JUDGED)", lambda x, t: True)


def exercise_of(invariant: str) -> Exercise:
    if invariant.startswith("user."):
        return JUDGED
    return INVARIANT_EXERCISE.get(invariant, ALWAYS)


def user_invariant_names(target: Target) -> list[str]:
    """The names the target's own invariants are reported under (``user.<name>``), as the runner names them."""
    return [getattr(fn, "__name__", type(fn).__name__) for fn in target.invariants]


#: Fault key -> what it means, in report order. Counted per example that contains it.
FAULTS: dict[str, str] = {
    "submit": "a job submitted",
    "periodic": "periodic work started",
    "job.succeed": "a job succeeds after a delay",
    "job.immediate": "a job returns an already-fired Deferred",
    "job.value": "a job returns a plain value",
    "job.fail": "a job fails after a delay",
    "job.raise": "a job raises when called",
    "job.hang": "a job hangs until cancelled",
    "job.then": "a job behaves differently on later attempts",
    "canceller_raises": "a job's own canceller raises",
    "cancel": "a cancel, wherever it landed",
    "cancel.waiting": "a cancel before the job started",
    "cancel.running": "a cancel while the job ran",
    "cancel.after_result": "a cancel after the result",
    "cancel.twice": "a second cancel of the same job",
    "stop": "stop() called by the schedule (a subject without stop() never is)",
    "stop.busy": "stop() with work outstanding (scheduled or at teardown)",
    "submit.after_stop": "a submit after stop()",
    "jump.forward": "the wall clock jumps forward",
    "jump.backward": "the wall clock jumps back",
    "ties.lifo": "calls due at the same instant run in reverse order",
    "ties.shuffle": "calls due at the same instant run in shuffled order",
    "ties.pct": "calls due at the same instant run in PCT order (random priorities, change points)",
    "stride": "time advances in strides (calls fire late)",
    "jitter": "the reactor wakes late by a seeded amount (due order kept)",
}
ERROR_PREFIX = "error."


#: The fault key of each job kind and of each injected error name (``schedule_faults``; error names
#: are a few per target, the table stops growing past ``_MAX_KEYS``).
_JOB_KEYS: dict[str, str] = {}
_ERROR_KEYS: dict[str, str] = {}
_MAX_KEYS = 10_000


def _spec_faults(spec: JobSpec, found: set[str]) -> None:
    """Add the fault keys of one job behaviour to ``found``."""
    kind = spec.kind
    key = _JOB_KEYS.get(kind)
    if key is None:
        key = "job." + kind
        if len(_JOB_KEYS) < _MAX_KEYS:
            _JOB_KEYS[kind] = key
    found.add(key)
    if kind == "fail" or kind == "raise":  # ``spec.fails``
        error = spec.error
        key = _ERROR_KEYS.get(error)
        if key is None:
            key = ERROR_PREFIX + error
            if len(_ERROR_KEYS) < _MAX_KEYS:
                _ERROR_KEYS[error] = key
        found.add(key)
    if spec.canceller_raises:
        found.add("canceller_raises")


def schedule_faults(schedule: Schedule) -> set[str]:
    """The fault keys a schedule contains (what it throws at the subject).

    Hot: the CLI's campaigns call it on every search example (``Tally``).
    Each distinct job behaviour of the schedule is read once (a schedule of
    fifty submissions holds a few: the codec shares them), and the common
    operation types are told apart by their exact type.
    """
    found: set[str] = set()
    behaviours: dict[int, JobSpec] = {}  # by identity: seen once each (the specs live as long as the schedule)
    submits = cancels = False
    for op in schedule.ops:
        kind = type(op)
        if kind is Submit:  # the common types by their exact type, then the rest as before
            submits = True
            spec = op.spec  # type: ignore[union-attr]
            behaviours[id(spec)] = spec
            if op.then:  # type: ignore[union-attr]
                found.add("job.then")
                for spec in op.then:  # type: ignore[union-attr]
                    behaviours[id(spec)] = spec
        elif kind is Cancel:
            cancels = True
        elif isinstance(op, (Submit, Start)):
            found.add("submit" if isinstance(op, Submit) else "periodic")
            for spec in op.specs:
                behaviours[id(spec)] = spec
            if op.then:
                found.add("job.then")
        elif isinstance(op, Cancel):
            cancels = True
        elif isinstance(op, Jump):
            found.add("jump.forward" if op.delta_ms >= 0 else "jump.backward")
    if submits:
        found.add("submit")
    if cancels:
        found.add("cancel")
    for spec in behaviours.values():
        _spec_faults(spec, found)
    policy = schedule.clock
    if policy.tie_break != "fifo":
        found.add("ties." + policy.tie_break)
    if policy.step_ms:
        found.add("stride")
    if policy.jitter_ms:
        found.add("jitter")
    return found


def trace_faults(exposure: Exposure) -> set[str]:
    """The fault keys only the run can tell: where cancels and stops landed."""
    flags = (
        ("stop", exposure.stop_scheduled),
        ("cancel.waiting", exposure.cancel_waiting),
        ("cancel.running", exposure.cancel_running),
        ("cancel.after_result", exposure.cancel_late),
        ("cancel.twice", exposure.cancel_twice),
        ("stop.busy", exposure.stop_busy),
        ("submit.after_stop", exposure.submit_after_stop),
    )
    return {key for key, present in flags if present}


def menu_faults(menu: Menu) -> list[str]:
    """The fault keys a menu can produce, so that a fault never reached shows as 0."""
    keys: list[str] = []
    for key in FAULTS:
        family, _, rest = key.partition(".")
        possible = {
            "submit": not menu.periodic,
            "periodic": menu.periodic,
            "job": rest in menu.job_kinds if rest != "then" else menu.max_then > 0,
            "canceller_raises": menu.canceller_raises,
            "cancel": menu.cancels and not menu.periodic,
            "stop": menu.stops,
            "stop.busy": True,  # the harness stops the subject at teardown too
            "submit.after_stop": menu.stops and not menu.periodic,
            "jump": menu.jumps,
            "ties": rest in menu.tie_breaks,
            "stride": any(menu.steps_ms),
            "jitter": any(menu.jitters_ms),
        }
        if possible.get(key, possible.get(family, True)):
            keys.append(key)
    if any(kind in ("fail", "raise") for kind in menu.job_kinds):
        keys.extend(ERROR_PREFIX + name for name in menu.errors)
    return keys


def describe_fault(key: str) -> str:
    if key.startswith(ERROR_PREFIX):
        return f"a job fails with {key[len(ERROR_PREFIX):]}"
    return FAULTS.get(key, key)


@dataclass
class Tally:
    """Counts, over a campaign's search examples, of the faults and invariants each exercised.

    Call it with every search example's schedule and run (it is the
    campaign's ``on_run`` hook). ``invariants`` and ``faults`` start at 0
    for every applicable invariant and every fault the menu can produce.
    The target's own invariants have a row each, ``user.<function name>``,
    counting the examples it judged: those where it did not return ``NOT_JUDGED``
    (``Run.unjudged``: the run gave it nothing to judge).
    """

    target: Target
    examples: int = 0
    invariants: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    #: The rows of the target's own invariants (``user.<function name>``), counted from ``Run.unjudged``.
    users: tuple[str, ...] = ()

    @classmethod
    def for_target(cls, target: Target, menu: Menu | None = None) -> Tally:
        from harness.invariants import invariants_for

        tally = cls(target)
        tally.users = tuple(dict.fromkeys(f"user.{name}" for name in user_invariant_names(target)))
        for inv in invariants_for(target):
            for name in tally.users if inv.name == "user" else (inv.name,):
                tally.invariants[name] = 0
        tally.faults = {key: 0 for key in menu_faults(menu or target.default_menu())}
        return tally

    def __call__(self, schedule: Schedule, run: Run) -> None:
        self.add(schedule, run.trace.events, run.unjudged)

    def add(self, schedule: Schedule, events: Iterable[Event], unjudged: tuple[str, ...] = ()) -> None:
        exposure = expose(events)
        self.examples += 1
        for key in schedule_faults(schedule) | trace_faults(exposure):
            self.faults[key] = self.faults.get(key, 0) + 1
        target, users = self.target, self.users
        for name in self.invariants:
            if name in users:
                if name[5:] not in unjudged:
                    self.invariants[name] += 1
            elif exercise_of(name).rule(exposure, target):
                self.invariants[name] += 1

    def to_json(self) -> dict[str, Any]:
        return {"examples": self.examples, "invariants": dict(self.invariants), "faults": dict(self.faults)}

    def absorb(self, data: dict[str, Any]) -> None:
        """Add the counts of another tally's ``to_json()`` (a worker's) to this one."""
        self.examples += data["examples"]
        for mine, theirs in ((self.invariants, data["invariants"]), (self.faults, data["faults"])):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count
