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

from harness.model.schedule import Cancel, Jump, Schedule, Start, Submit
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


def expose(events: Iterable[Event]) -> Exposure:
    """One pass over a trace: the facts the exercise tables read."""
    out = Exposure()
    waiting: set[int] = set()
    started: set[int] = set()
    fired: set[int] = set()
    cancelled: set[int] = set()
    outstanding: set[int] = set()
    running: dict[tuple[int, int], int] = {}
    stopped = failed = False
    failed_last: set[int] = set()  # jobs whose last attempt failed
    last_us = 0
    just_submitted = None
    for event in events:
        kind, job = event.kind, event.job
        if kind.startswith("timer."):
            continue  # the subject's own timers: not what the tables ask about, and no wait for a slot
        last_us = event.t_us
        # A job is recorded as submitted just before the subject gets it: it waited only if
        # something else happened before it started.
        if not (kind == _JOB_START and job == just_submitted):
            out.peak_waiting = max(out.peak_waiting, len(waiting))
        just_submitted = job if kind == _SUBMIT else None
        if kind == _SUBMIT or kind == _START:
            out.submits += 1
            outstanding.add(job)
            if kind == _SUBMIT:
                waiting.add(job)
            out.submit_after_stop |= stopped
            out.submit_after_fail |= failed
            out.peak_outstanding = max(out.peak_outstanding, len(outstanding))
        elif kind == _JOB_START:
            out.starts += 1
            out.retried |= event.attempt > 0 and job in failed_last  # a periodic call after a success is no retry
            started.add(job)
            waiting.discard(job)
            running[(job, event.attempt)] = event.t_us
        elif kind in ENDS:
            began = running.pop((job, event.attempt), None)
            if began is not None:
                out.longest_attempt_us = max(out.longest_attempt_us, event.t_us - began)
            if kind == _JOB_FAIL:
                out.fails += 1
                failed = True
                failed_last.add(job)
            else:
                failed_last.discard(job)
        elif kind in FIRES:
            if job >= 0:
                out.fired += 1
                fired.add(job)
                waiting.discard(job)
                outstanding.discard(job)
        elif kind == _CANCEL:
            out.cancels += 1
            if job in cancelled:
                out.cancel_twice = True
            elif job in fired:
                out.cancel_late = True
            elif any(key[0] == job for key in running):
                out.cancel_running = True
            elif job not in started:
                out.cancel_waiting = True
            out.cancel_with_queue |= bool(waiting - {job})
            cancelled.add(job)
        elif kind == _CALL:
            out.calls += 1
        elif kind == _STOP:
            out.stops += 1
            out.stop_scheduled |= event.detail == "scheduled"
            out.stop_busy |= bool(outstanding)
            stopped = True
    out.peak_waiting = max(out.peak_waiting, len(waiting))
    for began in running.values():
        out.longest_attempt_us = max(out.longest_attempt_us, last_us - began)
    return out


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
    "cancellation.detaches": Exercise("a job was cancelled while it ran", lambda x, t: x.cancel_running),
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
    "time.early": Exercise("two or more calls started", lambda x, t: x.starts >= 2),
    "time.overlap": Exercise("two or more calls started", lambda x, t: x.starts >= 2),
    "time.after_stop": Exercise("stop() was called", lambda x, t: x.stops > 0),
    "time.loop_died": Exercise("a call failed", lambda x, t: x.fails > 0),
    "errors.propagate": Exercise("a job failed", lambda x, t: x.fails > 0),
    "errors.poison": Exercise("a job was submitted after one failed", lambda x, t: x.submit_after_fail),
    "completion.deadline": Exercise("a job was submitted", lambda x, t: x.submits > 0),
    "leaks.calls": Exercise("stop() was called with work outstanding", lambda x, t: x.stop_busy),
    "leaks.loops": Exercise("stop() was called with work outstanding", lambda x, t: x.stop_busy),
}

ALWAYS = Exercise("every example", lambda x, t: True)


def exercise_of(invariant: str) -> Exercise:
    return INVARIANT_EXERCISE.get(invariant, ALWAYS)


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


def schedule_faults(schedule: Schedule) -> set[str]:
    """The fault keys a schedule contains (what it throws at the subject)."""
    found: set[str] = set()
    for op in schedule.ops:
        if isinstance(op, (Submit, Start)):
            found.add("submit" if isinstance(op, Submit) else "periodic")
            if op.then:
                found.add("job.then")
            for spec in op.specs:
                found.add("job." + spec.kind)
                if spec.fails:
                    found.add(ERROR_PREFIX + spec.error)
                if spec.canceller_raises:
                    found.add("canceller_raises")
        elif isinstance(op, Cancel):
            found.add("cancel")
        elif isinstance(op, Jump):
            found.add("jump.forward" if op.delta_ms >= 0 else "jump.backward")
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
    """

    target: Target
    examples: int = 0
    invariants: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_target(cls, target: Target, menu: Menu | None = None) -> Tally:
        from harness.invariants import invariants_for

        tally = cls(target)
        tally.invariants = {inv.name: 0 for inv in invariants_for(target)}
        tally.faults = {key: 0 for key in menu_faults(menu or target.default_menu())}
        return tally

    def __call__(self, schedule: Schedule, run: Run) -> None:
        self.add(schedule, run.trace.events)

    def add(self, schedule: Schedule, events: Iterable[Event]) -> None:
        exposure = expose(events)
        self.examples += 1
        for key in schedule_faults(schedule) | trace_faults(exposure):
            self.faults[key] = self.faults.get(key, 0) + 1
        target = self.target
        for name in self.invariants:
            if exercise_of(name).rule(exposure, target):
                self.invariants[name] += 1

    def to_json(self) -> dict[str, Any]:
        return {"examples": self.examples, "invariants": dict(self.invariants), "faults": dict(self.faults)}

    def absorb(self, data: dict[str, Any]) -> None:
        """Add the counts of another tally's ``to_json()`` (a worker's) to this one."""
        self.examples += data["examples"]
        for mine, theirs in ((self.invariants, data["invariants"]), (self.faults, data["faults"])):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count
