"""Facts: one pass over a trace that indexes what every invariant asks about.

Per job: when it was submitted, its attempts (start and end), when and how
its Deferred fired, when it was cancelled. Per run: stops, jumps, the drain
mark, and the trace indices of every event kind. A pure function of the
trace and the schedule: nothing here runs the target (re-running it to find
why a job is stranded is ``harness.run.diagnosis``). Built once per run
(``facts_of`` memoises it on the run) and shared by all checks.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.model.schedule import Schedule, Start, Submit
from harness.model.target import Target
from harness.model.trace import Event, EventKind, RawEvent, Trace, as_event

if TYPE_CHECKING:
    from harness.run.runner import Run

ATTEMPT_ENDS = frozenset({EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL})
#: Job kinds whose attempt returns a Deferred the subject can cancel.
CANCELLABLE_KINDS = frozenset({"succeed", "fail", "hang"})
#: The detail of the ``job.cancel`` event a job whose canceller raised records (``harness.run.jobs``), read here
#: and by ``harness.search.job_causes``.
CANCELLER_RAISED = "canceller raised"


@dataclass(slots=True)
class Attempt:
    """One call of a job: where it started and ended in the trace."""

    job: int
    n: int
    kind: str
    start: int
    end: int | None = None
    end_kind: EventKind | None = None
    canceller_raised: bool = False

    def running_at(self, index: int) -> bool:
        """Started before trace index ``index`` and not ended before it."""
        return self.start < index and (self.end is None or self.end > index)


@dataclass(slots=True)
class JobFacts:
    """Everything the trace says about one job.

    ``first_start`` is the trace index of its first attempt's start (None if it never
    started), kept by ``_build`` as it appends the first attempt: the start-order and
    overlap checks read it for every pair of jobs.
    """

    id: int
    periodic: bool = False
    submit: int | None = None
    priority: int = 0
    key: int = 0
    submit_raised: int | None = None
    #: Tuples (most jobs have no cancel and at most one attempt: no list to make per job, or collect).
    attempts: tuple[Attempt, ...] = ()
    fired: int | None = None
    cancels: tuple[int, ...] = ()
    canceller_raised: bool = False
    first_start: int | None = None
    #: The trace index of the first end of one of its attempts that finished (``job.finish``), or None:
    #: ``errors.propagate`` reads it to pass, without more work, a job whose Deferred delivered after that.
    finished: int | None = None


@dataclass
class Facts:
    #: The trace's events as recorded (``Trace.raw``: tuples ``(t_us, kind, job, attempt, detail)``);
    #: ``event(index)`` gives one as an ``Event``.
    events: Sequence[RawEvent]
    jobs: dict[int, JobFacts]
    stops: list[int]
    jumps: list[int]
    drained: int | None
    late_us: int
    #: For an error event followed by ``error.is``: the declared types its error is an instance of.
    declared: dict[int, frozenset[str]] = field(default_factory=dict)
    #: The trace indices of the events of each kind, in order.
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    #: What the Deferred that fired at each trace index delivered, as ``harness.run.outcomes.received``
    #: first found it: several invariants ask for every job's, and the answer is a pure function of the trace.
    outcomes: dict[int, object] = field(default_factory=dict, repr=False, compare=False)
    #: The most attempts running at once (started, not yet ended), over the whole run and all keys: a
    #: limit at least this high cannot be overfilled, so ``concurrency.limit`` and ``key_limit`` skip
    #: their walk (no group of running attempts is ever larger than all of them).
    peak_running: int = 0
    #: How many events the trace held when these facts were built (``facts_of`` rebuilds when it grew).
    length: int = 0
    #: The jobs that were cancelled (a ``cancel`` event), in job order: the cancellation checks look only at them.
    cancelled: list[JobFacts] = field(default_factory=list, repr=False, compare=False)
    #: The firings whose outcome names another job's attempt than the job that fired, as
    #: ``harness.run.outcomes.foreign_firings`` first found them (None: not asked yet).
    foreign: list[int] | None = field(default=None, repr=False, compare=False)
    #: The attempts running at the run's end (the drain mark, else the end of the trace), in start order,
    #: and those whose canceller raised (``canceller raised`` at their end): what ``stranded_jobs`` counts
    #: as holding a slot for ever, without a walk over every attempt. None when the pass could not tell
    #: (two starts of one attempt, in a hand-made trace): the walk then runs.
    held: list[Attempt] | None = field(default=None, repr=False, compare=False)
    raised: list[Attempt] = field(default_factory=list, repr=False, compare=False)
    #: The jobs' first firings (trace indices, in trace order) that the job's own attempts do not vouch for:
    #: a ``result`` before any attempt of the job finished, a ``failure`` whose error is not the one the
    #: job's last attempt ended before it (in start order) failed with, or with none ended. Every other
    #: firing passes ``errors.propagate`` whatever the target declared, so it judges only these
    #: (``doubtful_firings``; None: not worked out yet, as for facts not made by ``_build``).
    doubtful: list[int] | None = field(default=None, repr=False, compare=False)
    #: The campaign's trace features of the run (``harness.search.generate.features``), counted in the same
    #: pass so that the guided search does not walk the events again, each as its code (``feature_code``;
    #: negative for an event of a kind that is no ``EventKind``). None for facts not made by ``_build``.
    feature_codes: set[int] | None = field(default=None, repr=False, compare=False)

    def of_kind(self, *kinds: EventKind) -> list[int]:
        """The trace indices of the events of the given kinds, in trace order."""
        if len(kinds) == 1:
            return self.by_kind.get(kinds[0], [])
        return sorted(index for kind in kinds for index in self.by_kind.get(kind, ()))

    def job(self, job_id: int) -> JobFacts:
        return self.jobs[job_id]

    def event(self, index: int) -> Event:
        """The event at trace index ``index``, as an ``Event`` (its fields by name: for messages)."""
        return as_event(self.events[index])

    def time(self, index: int) -> int:
        return self.events[index][0]

    def first_stop(self) -> int | None:
        return self.stops[0] if self.stops else None

    def last_stop(self) -> int | None:
        """The run's last ``stop`` event: its first, but for a subject an ``Operation(restarts=True)`` started again."""
        return self.stops[-1] if self.stops else None

    # A subject is stopped from each ``stop`` event until the next ``restart`` (a call of an
    # ``Operation(restarts=True)``), and runs from the start, and from each restart, until the next stop. The two
    # readers below are the invariants' one reading of those windows; a run with no restart has at most one stop,
    # and both then answer exactly as ``first_stop()`` read before restarts were judged.

    def stopped_at(self, index: int) -> int | None:
        """The ``stop`` event the subject was stopped by at trace index ``index`` (the last one before it), or
        None while it ran: before any stop, or after a ``restart`` that came since."""
        stops = self.stops
        if not stops or stops[0] >= index:
            return None
        restarts = self.by_kind.get(_RESTART)
        if not restarts:
            return stops[0]
        last = stops[bisect_left(stops, index) - 1]
        return None if any(last < r < index for r in restarts) else last

    def stop_for(self, origin: int | None) -> int | None:
        """The first ``stop`` event that concerns what began at trace index ``origin`` (a job's submission): the
        one the subject was stopped by then (``stopped_at``), else the first after it; None if none came. From it
        on, the excuses of a stopped subject apply to that job (its caller may be failed or dropped in any way).
        A job submitted after a restart is judged as a running subject's until the next stop; one submitted
        before a stop keeps that stop's excuses after a restart (the stop may have ended it in any way). None
        for ``origin``: the run's first stop."""
        if origin is None:
            return self.first_stop()
        stopped = self.stopped_at(origin)
        if stopped is not None:
            return stopped
        return next((stop for stop in self.stops if stop >= origin), None)

    def idle_drain(self) -> int | None:
        """The trace index of the ``drained`` event when nothing at all was left scheduled on the clock then
        (``pending=0``): no call could run after it (a timeout or a retry due later can never come). None
        otherwise (calls still pending, or the run did not drain)."""
        drained = self.drained
        if drained is None or self.events[drained][4] != "pending=0":
            return None
        return drained

    def fired_before(self, job: JobFacts, index: int) -> bool:
        return job.fired is not None and job.fired < index

    def error_name(self, index: int) -> str:
        """The exception class name of a failure-like event (its detail is ``Name: message``)."""
        return self.events[index][4].split(":", 1)[0]

    def is_error(self, index: int, error: type[BaseException]) -> bool:
        """Whether the error of the failure-like event at ``index`` is an instance of ``error``,
        a type the target declared (``Target.declared_errors``): subclasses count."""
        marked = self.declared.get(index)
        if marked is not None:
            return error.__name__ in marked
        return self.error_name(index) == error.__name__

    def jump_between(self, first: int, second: int) -> bool:
        return any(first < j < second for j in self.jumps)

    def jumps_between(self, first: int, second: int) -> int:
        return sum(1 for j in self.jumps if first < j < second)


def facts_of(run: Run) -> Facts:
    """The facts of ``run``: a pure function of its trace and schedule, memoised on the run."""
    cached: Facts | None = run.__dict__.get("_facts")
    # Rebuilt when the trace grew: a target's own invariant may ask while the run is still releasing.
    if cached is None or cached.length != len(run.trace.raw):
        cached = _build(run.trace, run.schedule)
        # A cache kept on the run, which does not declare it:
        run._facts = cached  # type: ignore[attr-defined]
    return cached


# The kinds ``_build`` branches on, bound once: it runs for every event of every run.
_JOB_START, _SUBMIT, _START, _RESULT, _FAILURE, _CANCEL = (
    EventKind.JOB_START, EventKind.SUBMIT, EventKind.START, EventKind.RESULT, EventKind.FAILURE, EventKind.CANCEL
)
_SUBMIT_RAISED, _STOP, _CLOCK_JUMP, _DRAINED, _ERROR_IS, _JOB_FINISH = (
    EventKind.SUBMIT_RAISED, EventKind.STOP, EventKind.CLOCK_JUMP, EventKind.DRAINED, EventKind.ERROR_IS, EventKind.JOB_FINISH
)
_JOB_FAIL, _JOB_CANCEL, _RESTART = EventKind.JOB_FAIL, EventKind.JOB_CANCEL, EventKind.RESTART
#: Each kind's text to its member: a trace read from a file or made by hand may hold the kinds as plain strings.
_MEMBER_OF: dict[str, EventKind] = {member.value: member for member in EventKind}


class _PlainKind(Exception):
    """Raised by ``_pass`` at a kind held as a plain string (equal to a member): ``_build`` then passes over the
    events again with each such kind replaced by its member."""

#: Running and waiting counts are capped at this in the campaign's trace features (``Facts.feature_codes``;
#: ``harness.search.generate``): 3 jobs waiting and 30 are the same news.
FEATURE_CAP = 6
#: A feature's code: its kind's base (the kind's place in ``EventKind`` times 64) plus 8 times the running
#: count plus the waiting count (each capped at ``FEATURE_CAP``, below 8). An integer per event, made
#: without a tuple, hashed at once; ``FEATURES[code]`` is the feature it stands for.
FEATURE_BASES: dict[str, int] = {kind: 64 * index for index, kind in enumerate(EventKind)}
FEATURES: tuple[tuple[str, int, int], ...] = tuple(
    (kind, (code >> 3) & 7, code & 7) for kind in EventKind for code in range(64)
)
#: The base of an event of a kind that is no ``EventKind`` (a hand-made trace): a negative code.
_ODD_BASE = -(1 << 20)
_SUBMIT_BASE, _JOB_START_BASE = FEATURE_BASES[EventKind.SUBMIT], FEATURE_BASES[EventKind.JOB_START]
_RESULT_BASE, _FAILURE_BASE = FEATURE_BASES[EventKind.RESULT], FEATURE_BASES[EventKind.FAILURE]
_CANCEL_BASE = FEATURE_BASES[EventKind.CANCEL]


def feature_code(kind: str, running: int, waiting: int) -> int:
    """The code of the feature ``(kind, running, waiting)`` (counts already capped; see ``FEATURE_BASES``)."""
    return FEATURE_BASES.get(kind, _ODD_BASE) + 8 * running + waiting


def _build(trace: Trace, schedule: Schedule) -> Facts:
    events = trace.raw
    try:
        return _pass(events, schedule)
    except _PlainKind:
        # Kinds held as plain strings (a trace read from a file or made by hand): the same pass over the events
        # with every kind its member, so that it can tell kinds by identity; the facts keep the trace's events.
        members = _MEMBER_OF
        facts = _pass([(t, members.get(kind, kind), job, n, detail) for t, kind, job, n, detail in events], schedule)
        facts.events = events
        return facts


def _pass(events: Sequence[RawEvent], schedule: Schedule) -> Facts:
    # One pass, the hottest code of the invariants (about 100 events and 40 jobs a run): positional
    # constructors of slotted classes, events unpacked once, the commonest kinds tested first, by identity
    # (a recorded kind is its ``EventKind`` member; the first kind that is a plain string equal to a member
    # raises ``_PlainKind``, and ``_build`` starts again with members: ``tests/test_invariant_shortcuts.py``
    # compares it with a plain pass, over recorded traces and hand-made ones of plain strings).
    jobs: dict[int, JobFacts] = {}
    new = object.__new__
    for op in schedule.ops:  # schedule.submits, without building its tuple
        if type(op) is Submit:
            # JobFacts(op.job, False, None, op.priority, op.key), every slot set here without a call of
            # its __init__ (a quarter of what making the ~40 records of a run cost; the plain pass of
            # tests/test_invariant_shortcuts.py uses the constructor, and compares every field).
            job = new(JobFacts)
            job.id = op.job
            job.periodic = False
            job.submit = None
            job.priority = op.priority
            job.key = op.key
            job.submit_raised = None
            job.attempts = ()
            job.fired = None
            job.cancels = ()
            job.canceller_raised = False
            job.first_start = None
            job.finished = None
            jobs[op.job] = job
        elif isinstance(op, (Submit, Start)):
            jobs[op.job] = JobFacts(
                op.job, not isinstance(op, Submit), None, getattr(op, "priority", 0), getattr(op, "key", 0)
            )
    stops: list[int] = []
    jumps: list[int] = []
    drained: int | None = None
    declared: dict[int, frozenset[str]] = {}
    running: dict[tuple[int, int], Attempt] = {}
    held: list[Attempt] | None = None  # the attempts running at the (last) drain mark
    raised: list[Attempt] = []  # attempts whose canceller raised
    ended_count = 0  # attempts popped from ``running`` at an end
    peak = 0
    by_kind: dict[str, list[int]] = {}
    # The indices of the five commonest kinds (submit, job.start, failure, result, cancel: about 80% of a
    # run's events) go to lists of their own, tested first; every other kind through the dict.
    submits: list[int] = []
    starts: list[int] = []
    failures: list[int] = []
    results: list[int] = []
    cancels: list[int] = []
    doubtful: list[int] = []
    # The trace features (``Facts.feature_codes``): each event's kind with the jobs running (started, not
    # ended) and waiting (submitted, not started) then, capped, as a code: ``shown`` is 8 times the capped
    # running count plus the capped waiting count, changed only when a count changes below its cap.
    f_running = f_waiting = shown = 0
    found: set[int] = set()
    add, bases = found.add, FEATURE_BASES
    member = EventKind
    plain = _MEMBER_OF
    # Each event unpacked at once: the trace records plain tuples, which the interpreter unpacks on its
    # fast path (an ``Event``, a tuple subclass, from a file or a test, takes the slower one).
    for index, (_, kind, job_id, n, detail) in enumerate(events):
        if kind is _SUBMIT:
            submits.append(index)
            jobs[job_id].submit = index
            f_waiting += 1
            if f_waiting <= FEATURE_CAP:
                shown += 1
            add(_SUBMIT_BASE + shown)
        elif kind is _JOB_START:
            if f_waiting > 0:
                f_waiting -= 1
                if f_waiting < FEATURE_CAP:
                    shown -= 1
            f_running += 1
            if f_running <= FEATURE_CAP:
                shown += 8
            add(_JOB_START_BASE + shown)
            starts.append(index)
            attempt = new(Attempt)  # Attempt(job_id, n, detail, index), as the JobFacts above
            attempt.job = job_id
            attempt.n = n
            attempt.kind = detail
            attempt.start = index
            attempt.end = None
            attempt.end_kind = None
            attempt.canceller_raised = False
            job = jobs[job_id]
            if not job.attempts:
                job.first_start = index
            job.attempts += (attempt,)
            running[(job_id, n)] = attempt
            if len(running) > peak:
                peak = len(running)
        elif kind is _FAILURE:
            add(_FAILURE_BASE + shown)
            failures.append(index)
            fired = jobs.get(job_id)
            if fired is not None and fired.fired is None:
                fired.fired = index
                # Doubtful unless the last of its attempts (in start order) that ended by now (before
                # this firing) failed with this error: ``errors.propagate``'s own-attempt verdict.
                attempts = fired.attempts
                for last in reversed(attempts) if len(attempts) > 1 else attempts:
                    end = last.end
                    if end is not None:
                        if last.end_kind is not _JOB_FAIL or events[end][4] != detail.partition(":")[0]:
                            doubtful.append(index)
                        break
                else:
                    doubtful.append(index)
        elif kind is _RESULT:
            add(_RESULT_BASE + shown)
            results.append(index)
            fired = jobs.get(job_id)
            if fired is not None and fired.fired is None:
                fired.fired = index
                if fired.finished is None:  # no attempt of its own finished before it
                    doubtful.append(index)
        elif kind is _CANCEL:
            add(_CANCEL_BASE + shown)
            cancels.append(index)
            jobs[job_id].cancels += (index,)
        else:
            if type(kind) is not member and kind in plain:
                raise _PlainKind  # a kind held as a plain string: ``_build`` passes again, with members
            indices = by_kind.get(kind)
            if indices is None:
                by_kind[kind] = [index]
            else:
                indices.append(index)
            if kind is _JOB_FINISH or kind is _JOB_FAIL or kind is _JOB_CANCEL:  # ATTEMPT_ENDS
                if f_running > 0:
                    f_running -= 1
                    if f_running < FEATURE_CAP:
                        shown -= 8
                add(bases[kind] + shown)
                ended = running.pop((job_id, n), None)
                if ended is not None:
                    ended_count += 1
                    ended.end = index
                    ended.end_kind = kind
                    if kind is _JOB_FINISH:
                        owner = jobs[job_id]
                        if owner.finished is None:
                            owner.finished = index
                if detail == CANCELLER_RAISED:
                    jobs[job_id].canceller_raised = True
                    if ended is not None:
                        ended.canceller_raised = True
                        raised.append(ended)
            elif add(bases.get(kind, _ODD_BASE) + shown):  # (None: every other kind goes on to the tests below)
                pass
            elif kind is _START:
                jobs[job_id].submit = index
            elif kind is _SUBMIT_RAISED:
                jobs[job_id].submit_raised = index
            elif kind is _STOP:
                stops.append(index)
            elif kind is _CLOCK_JUMP:
                jumps.append(index)
            elif kind is _DRAINED:
                drained = index
                held = list(running.values())
            elif kind is _ERROR_IS:
                declared[index - 1] = frozenset(detail.split(",")) - {""}
    for kind, indices in ((_SUBMIT, submits), (_JOB_START, starts), (_FAILURE, failures), (_RESULT, results), (_CANCEL, cancels)):
        if indices:
            by_kind[kind] = indices
    policy = schedule.clock
    late_us = (policy.step_ms + policy.jitter_ms) * 1000
    cancelled = [job for job in jobs.values() if job.cancels] if cancels else []
    facts = Facts(events, jobs, stops, jumps, drained, late_us, declared, by_kind, {}, peak, len(events), cancelled)
    facts.doubtful = doubtful
    facts.feature_codes = found
    # Every attempt started went into ``running`` under its own (job, attempt) unless two starts shared one
    # (a hand-made trace): then the attempts held at the end are not known from it, and are left to the walk.
    if len(starts) - ended_count == len(running):
        facts.held = list(running.values()) if held is None else held
        facts.raised = raised
    return facts


def doubtful_firings(facts: Facts) -> list[int]:
    """``facts.doubtful``: the firings the facts pass found no own attempt to vouch for, worked out
    here (and kept) for facts it did not make."""
    doubtful = facts.doubtful
    if doubtful is None:
        doubtful = facts.doubtful = _doubtful_walk(facts)
    return doubtful


def _doubtful_walk(facts: Facts) -> list[int]:
    """The doubtful firings (``Facts.doubtful``) from the firings and each job's attempts, after the pass."""
    found: list[int] = []
    events, jobs = facts.events, facts.jobs
    for fired in facts.of_kind(_RESULT, _FAILURE):
        event = events[fired]
        job = jobs.get(event[2])
        if job is None or job.fired != fired:
            continue  # not a job's first firing
        if event[1] == _RESULT:
            if job.finished is None or job.finished > fired:
                found.append(fired)
            continue
        name = event[4].partition(":")[0]
        same = False
        for last in reversed(job.attempts):
            end = last.end
            if end is not None and end < fired:
                same = last.end_kind == _JOB_FAIL and events[end][4] == name
                break
        if not same:
            found.append(fired)
    return found


def stranded_jobs(facts: Facts, target: Target) -> list[int]:
    """Jobs that could have finished but whose Deferred had not fired when the run drained.

    A job is excused when its own attempt hangs, when it was cancelled (the
    cancellation invariants judge it), or when attempts that hang for ever
    fill the declared ``capacity`` (default ``limit``; any one of them, with no limit declared). With
    keys declared, "stuck" is judged per key: a job is excused when attempts
    of its own key that hang fill ``key_limit`` (any one, with none declared),
    or when they fill the global ``limit`` if one is declared. With
    ``shared``, a job is also excused by any attempt of its key that never
    ends, whatever ``key_limit`` says: such an execution was running at the
    job's submission or started after it, so the job may have joined it
    (``sharing.joined``) and waits with it for ever. With ``retries=math.inf``
    a job the subject was still retrying at the end (``retrying_jobs``) is
    excused as one whose attempt hangs, and holds a slot as such an attempt
    does (its retries may go on for ever). Why each is stranded is
    ``harness.run.diagnosis``'s to find.
    """
    end = facts.drained if facts.drained is not None else len(facts.events)
    # The attempts that hold a slot for ever, counted in all, per job and per key: worked out for the
    # first job that gets that far.
    stuck: int | None = None
    stuck_of_job: dict[int, int] = {}
    stuck_of_key: dict[int, int] = {}
    out: list[int] = []
    hangs_forever = _hangs_forever(target)
    held = facts.held
    # The jobs with an attempt of kind "hang" running at the end (as _hangs), from the attempts the facts
    # pass found running there; None: look at each job's attempts.
    hanging = None if held is None or not hangs_forever else {attempt.job for attempt in held if attempt.kind == "hang"}
    retrying = retrying_jobs(facts, target, end) if target.retries_unbounded else None
    keyed = target.keys is not None
    shared = target.shared
    by_limit = not keyed or target.limit is not None  # whether the global limit is what stuck attempts must fill
    # blockers >= need fills it: capacity, else limit; with no limit declared, any one blocker fills it.
    need = target.fill
    key_limit = target.keyed_limit
    key_need = key_limit if key_limit is not None else 1
    # Whether the stuck attempts fill the global limit for a job without attempts (which owns none of them):
    # every such job is then passed over, whatever the tests below say (each only passes a job over).
    full: bool | None = None
    for job in facts.jobs.values():
        fired = job.fired
        if fired is not None and fired < end:
            continue  # the commonest reason, tested first (each test here only passes a job over)
        if not job.attempts:  # the next commonest: a job that never started, behind work that never ends
            if full is None:
                if stuck is None:
                    stuck, stuck_of_job, stuck_of_key = _stuck_counts(facts, target, end, retrying)
                full = _passes_unstarted(by_limit, stuck, need)
            if full:
                continue
        if job.periodic or job.submit is None or job.submit_raised is not None or job.cancels or job.canceller_raised:
            continue
        if hangs_forever and job.attempts:
            if hanging is not None:
                if job.id in hanging:
                    continue  # its own attempt hangs (_hangs, for a target without a timeout)
            elif any(attempt.kind == "hang" and attempt.running_at(end) for attempt in job.attempts):
                continue
        if retrying and job.id in retrying:
            continue  # retries=math.inf: still being retried (as an attempt that hangs)
        if stuck is None:
            stuck, stuck_of_job, stuck_of_key = _stuck_counts(facts, target, end, retrying)
        # The stuck attempts of other jobs (of other jobs of its key), counted without listing them.
        own = stuck_of_job.get(job.id, 0) if stuck_of_job else 0
        if by_limit and stuck - own >= need:
            continue
        if keyed or shared:
            same_key = stuck_of_key.get(job.key, 0) - own  # other jobs' stuck attempts of its key
            if keyed and same_key >= key_need:
                continue
            if shared and same_key:
                continue  # shared: it may have joined that execution (sharing.joined)
        out.append(job.id)
    return out


def _passes_unstarted(by_limit: bool, stuck: int, need: int) -> bool:
    """Whether ``stranded_jobs`` passes over every job without attempts, before its other tests: the ``stuck``
    attempts, none of them its own, fill the global limit (``need``), when that is what they must fill."""
    return by_limit and stuck >= need


def _filled(blockers: int, limit: int | None) -> bool:
    """Whether ``blockers`` attempts that never end may keep a waiting job from starting.

    They may when they fill the declared limit; with no limit declared, any
    one may (no declared limit is no promise of parallelism: a job is stuck
    only if it waits while nothing runs).
    """
    return blockers >= (limit if limit is not None else 1)


def abandoned_at(facts: Facts, target: Target, attempt: Attempt) -> int | None:
    """The cancel (trace index) after which nobody waits for ``attempt`` any more, if one came while it ran.

    The callers of an execution are its own job, and with ``shared`` every job
    of its key (judged per key: any caller of the key may have joined it) but,
    when executions of a key may overlap (``key_limit=math.inf``), those waiting
    on another execution (``_waits_elsewhere``: review 12, finding 1; with a
    bound, another execution running beside it is ``concurrency.key_limit``'s
    to judge, not an excuse). At a cancel, the execution is abandoned when each of them has been
    cancelled (by then), has already fired, or was never submitted.
    """
    job = facts.jobs[attempt.job]
    callers = [j for j in facts.jobs.values() if j.key == job.key] if target.shared else [job]
    overlap = target.shared and target.keyed_limit is None  # key_limit=math.inf: executions of a key may overlap
    for index in sorted(c for other in facts.jobs.values() for c in other.cancels):
        if not attempt.running_at(index):
            continue
        if not any(_waiting_at(facts, j, index) and not (overlap and _waits_elsewhere(facts, j, attempt, index)) for j in callers):
            return index
    return None


def _waits_elsewhere(facts: Facts, job: JobFacts, attempt: Attempt, index: int) -> bool:
    """Whether ``job``, another caller of ``attempt``'s key, waits at trace index ``index`` on another execution
    than ``attempt``: one of its own running then (executions of a key may overlap; one whose canceller raised
    runs for ever), or, submitted after
    ``attempt`` started, one of its own it ran later or another that served it (a coalescer's caller who came
    once the batch was sent waits in the next batch). A caller waiting when ``attempt`` started may have been
    in its batch, and one never served may be waiting for it: both stay its callers."""
    from harness.run.outcomes import served_by  # outcomes reads these facts

    if job.id == attempt.job:
        return False
    if any(own.running_at(index) or (own.canceller_raised and own.start < index) for own in job.attempts):
        return True
    if job.submit is None or job.submit < attempt.start:
        return False
    if job.attempts:
        return True
    other = served_by(facts, job)
    return other is not None and (other.job, other.n) != (attempt.job, attempt.n)


def _waiting_at(facts: Facts, job: JobFacts, index: int) -> bool:
    """Submitted by ``index``, not rejected, not fired before it and not cancelled by it: a caller still waiting."""
    if job.submit is None or job.submit > index or job.submit_raised is not None:
        return False
    return not facts.fired_before(job, index) and not any(c <= index for c in job.cancels)


def _hangs(attempt: Attempt, target: Target) -> bool:
    return attempt.kind == "hang" and _hangs_forever(target)


def _hangs_forever(target: Target) -> bool:
    """Whether an attempt of kind "hang" holds its slot for ever: no timeout, or one that does not end the work
    (a wait's, one that leaves the work running, or a deadline the glue moves, which is judged on the callers)."""
    return target.timeout_ms is None or target.timeout_from in ("wait", "glue") or target.timeout_detaches


def _stuck_counts(facts: Facts, target: Target, end: int,
                  retrying: set[int] | None) -> tuple[int, dict[int, int], dict[int, int]]:
    """How many attempts hold a slot for ever (``_stuck_attempts``): in all, per job, and per key; with
    ``retries=math.inf``, ``retrying`` (``retrying_jobs`` at ``end``) each hold one too."""
    of_job: dict[int, int] = {}
    of_key: dict[int, int] = {}
    held = facts.held
    if held is None or end != (facts.drained if facts.drained is not None else len(facts.events)):
        attempts = _stuck_attempts(facts, target, end)
    else:
        # The same attempts (in another order: only counted here), from the attempts the facts pass found
        # running at the end and those whose canceller raised, without a walk over every attempt.
        attempts = [a for a in facts.raised if a.start < end]
        if _hangs_forever(target):
            attempts += [attempt for attempt in held if attempt.kind == "hang" and not attempt.canceller_raised]
    holders = [attempt.job for attempt in attempts]
    if retrying:
        # retries=math.inf: a job still being retried holds a slot for ever, as an attempt that hangs does
        holders += sorted(retrying - set(holders))
    for job in holders:
        of_job[job] = of_job.get(job, 0) + 1
        key = facts.jobs[job].key
        of_key[key] = of_key.get(key, 0) + 1
    return len(holders), of_job, of_key


def retrying_jobs(facts: Facts, target: Target, end: int) -> set[int]:
    """With ``retries=math.inf``: the jobs the subject was still retrying at trace index ``end`` (the drain).

    A job whose last attempt started before ``end`` either still runs then or ended without a success
    (failed, or was cancelled) no more than the next retry's ``backoff_ms`` high bound, plus the clock's
    lateness, before ``end``, unless ``end`` is a drain with nothing left scheduled (``pending=0``: no retry
    can ever come then): a retry may still come. Its caller's state does not matter: an execution
    retried after its caller detached (``cancellable="detach"``) still holds its slot, and with ``shared``
    the callers of its key may wait on it. One whose failed attempt is older than that was given up on
    (``errors.poison`` judges a caller it strands); one never started is not being retried.
    """
    out: set[int] = set()
    at = facts.time(end) if end < len(facts.events) else (facts.time(len(facts.events) - 1) if facts.events else 0)
    idle = end == facts.idle_drain()
    for job in facts.jobs.values():
        if job.periodic or not job.attempts:
            continue
        started = [a for a in job.attempts if a.start < end]
        if not started:
            continue
        last = started[-1]
        if last.end is None or last.end > end:
            out.add(job.id)
            continue
        if last.end_kind == EventKind.JOB_FINISH or idle:
            continue
        bound = target.backoff_range(last.n + 1)
        if bound is not None and at - facts.time(last.end) <= bound[1] * 1000 + facts.late_us:
            out.add(job.id)
    return out


def _stuck_attempts(facts: Facts, target: Target, end: int) -> list[Attempt]:
    """Attempts that hold a slot for ever: hanging ones, and those whose canceller raised
    (their Deferred can then never fire, whatever the subject does)."""
    stuck: list[Attempt] = []
    for job in facts.jobs.values():
        for attempt in job.attempts:
            if attempt.start < end and (attempt.canceller_raised or (attempt.running_at(end) and _hangs(attempt, target))):
                stuck.append(attempt)
    return stuck
