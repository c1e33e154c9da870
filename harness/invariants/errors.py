"""Error invariants: a job's exception reaches its caller, nothing is swallowed or escapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.model.target import Target
from harness.model.known import known
from harness.model.trace import EventKind, format_ms
from harness.invariants.base import Invariant, Violation
from harness.invariants.completion import timers_pending_hint
from harness.run.describe import error_names
from harness.run.diagnosis import Cause
from harness.run.facts import Attempt, Facts, JobFacts, doubtful_firings, facts_of
from harness.run.outcomes import received

if TYPE_CHECKING:
    from harness.run.runner import Run

#: Errors that are the job's own doing (a raising canceller) or judged by
#: ``completion.once`` (a Deferred fired twice), not by the error invariants.
ATTRIBUTED_ELSEWHERE = ("CancellerError", "AlreadyCalledError")

_RESULT, _FAILURE, _JOB_FAIL, _SUBMIT_RAISED = EventKind.RESULT, EventKind.FAILURE, EventKind.JOB_FAIL, EventKind.SUBMIT_RAISED


#: How each is named in a detail: by its class name, or, for a subclass of ``AlreadyCalledError`` named otherwise,
#: ``Other: [AlreadyCalledError] message`` (``describe_error``): the class relation, not the name, makes a double fire.
_ATTRIBUTED_MARKS = tuple(mark for name in ATTRIBUTED_ELSEWHERE for mark in error_names(name))


def own_error(detail: str) -> bool:
    """Whether an error in an event's detail (``[call: ]Name: message``) is the subject's to answer for."""
    for mark in _ATTRIBUTED_MARKS:
        if mark in detail:
            return False
    return True


class Propagate(Invariant):
    """A job's failure (after declared retries) reaches the submitted Deferred; success is not turned into failure."""

    name = "errors.propagate"
    summary = "a job's exception reaches the submitted Deferred (after retries); a success is never swallowed"

    def applies(self, target: Target) -> bool:
        return target.kind == "submit"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        target = run.target
        # The names of the error types a failure may carry whatever happened (declared rejections, and
        # the timeout error when a timeout is declared), and the cancel error's, allowed after a cancel.
        always = {t.__name__ for t in target.rejects}
        if target.timeout_ms is not None:
            always.add(target.timeout_error.__name__)
        cancel_name = target.cancel_error.__name__
        unsure = self._unsure(facts, always, cancel_name)
        if not unsure and _SUBMIT_RAISED not in facts.by_kind:
            return None  # every job whose Deferred fired passes, and no submit raised: nothing else is judged
        for job in facts.jobs.values():
            if job.periodic:
                continue
            if job.fired is not None and job.submit_raised is None and job.id not in unsure:
                continue
            if job.submit_raised is not None:
                rejected = any(facts.is_error(job.submit_raised, t) for t in target.rejects)
                if not self._stopped_before(facts, job, job.submit_raised) and not rejected:
                    detail = facts.event(job.submit_raised).detail
                    return self.violation(
                        run,
                        f"submitting job {job.id} raised {detail} instead of returning a Deferred that fails",
                        [job.submit_raised],
                    )
                continue
            if job.fired is None:
                continue
            message = self._judge(facts, job, target)
            if message:
                return self.violation(run, message, [job.fired, *(a.end for a in job.attempts if a.end is not None)])
        return None

    @staticmethod
    def _unsure(facts: Facts, always: set[str], cancel_name: str) -> set[int]:
        """The jobs whose Deferred fired that ``_judge`` must look at: the others pass a shortcut.

        Each shortcut holds exactly when ``_judge`` returns None for the job, whatever else is true: a
        result after one of the job's own attempts finished; a failure with a type allowed whatever
        happened (``always``), or with the cancel error after a cancel of its own; a failure with the
        error its last ended attempt failed with. The facts pass kept the first firings the job's own
        attempts do not vouch for (``Facts.doubtful``): only those are looked at here, for the rest.
        """
        unsure: set[int] = set()
        events, jobs, declared = facts.events, facts.jobs, facts.declared
        for fired in doubtful_firings(facts):
            event = events[fired]
            job = jobs[event[2]]
            if job.periodic:
                continue  # not judged here
            if event[1] != _FAILURE:
                unsure.add(job.id)  # a result before any attempt of its own finished
                continue
            marked = declared.get(fired)
            cancels = job.cancels
            if marked is not None:
                if not always.isdisjoint(marked) or (cancels and cancel_name in marked and cancels[0] < fired):
                    continue
            else:
                name = event[4].partition(":")[0]  # Facts.error_name
                if name in always or (cancels and name == cancel_name and cancels[0] < fired):
                    continue
            unsure.add(job.id)
        return unsure

    @staticmethod
    def _stopped_before(facts: Facts, job: JobFacts, index: int) -> bool:
        """Whether a ``stop()`` that concerns ``job`` (``Facts.stop_for``: a restarted subject runs again) came
        before trace index ``index``: from then on its caller may fail in any way."""
        stop = facts.stop_for(job.submit)
        return stop is not None and stop < index

    def _judge(self, facts: Facts, job: JobFacts, target: Target) -> str | None:
        fired_at = known(job.fired)  # check() judges only the jobs whose Deferred fired
        source = known(received(facts, job)).source
        if source is not None and source[0] != job.id:
            return None  # another job's outcome: errors.own_result (or, shared, sharing.joined) judges it
        fired = facts.event(fired_at)
        ended = [a for a in job.attempts if a.end is not None and a.end < fired_at]
        last = ended[-1] if ended else None
        if fired.kind == EventKind.RESULT:
            if any(a.end_kind == EventKind.JOB_FINISH for a in ended):
                return None
            if last is None:
                if target.shared:
                    return None  # it joined another caller's execution: sharing.joined judges it
                return f"job {job.id} never ran, yet its Deferred delivered a result ({fired.detail})"
            error = facts.event(known(last.end)).detail or "an error"
            return (
                f"job {job.id} failed with {error} at {format_ms(facts.time(known(last.end)))} but its Deferred "
                f"delivered {fired.detail}: the error was swallowed"
            )
        name = facts.error_name(fired_at)
        allowed = list(target.rejects)
        if any(c < fired_at for c in job.cancels):
            allowed.append(target.cancel_error)
        if target.timeout_ms is not None:
            allowed.append(target.timeout_error)  # whether the timeout was legitimate is time.timeout's to judge
        # Facts.is_error for each allowed type, its lookups made once: the declared types of the
        # error if an error.is event named them, else its class name.
        marked = facts.declared.get(fired_at)
        if marked is not None:
            if any(t.__name__ in marked for t in allowed):
                return None
        elif any(t.__name__ == name for t in allowed):
            return None
        if self._stopped_before(facts, job, fired_at) or not own_error(fired.detail):
            return None
        if last is None:
            if target.shared:
                return None  # it joined another caller's execution: sharing.joined judges it
            return f"job {job.id} never ran, yet its Deferred failed with {fired.detail}"
        if target.fanout is not None:
            return _quorum_error(facts, job, ended, name, fired.detail)
        if last.end_kind == EventKind.JOB_FAIL:
            raised = facts.event(known(last.end)).detail
            if name == raised:
                return None
            return f"job {job.id} failed with {raised} but its Deferred failed with {fired.detail} instead"
        if last.end_kind == EventKind.JOB_FINISH:
            if not target.lease_final(facts.time(last.start), facts.time(known(last.end))):
                return None  # a success after its lease ran out (lease_ms): the subject may refuse it, as a timeout
            return f"job {job.id} succeeded but its Deferred failed with {fired.detail}"
        return None


def _quorum_error(facts: Facts, job: JobFacts, ended: list[Attempt], name: str, detail: str) -> str | None:
    """``fanout``: a quorum call's failure carries the error of one of the copies that failed before it (any
    of them: the first, the last), or is one the target declared; whether failing was due then is
    ``time.quorum_early``'s to judge."""
    errors = sorted({facts.event(known(a.end)).detail for a in ended if a.end_kind == EventKind.JOB_FAIL})
    if name in errors:
        return None
    failed = f"its copies failed with {', '.join(errors)}" if errors else "none of its copies failed"
    return f"job {job.id}'s Deferred failed with {detail}, but {failed}: a quorum call fails with a copy's error"


def _first_own_error(facts: Facts, kind: EventKind) -> int | None:
    """The trace index of the first event of ``kind`` whose error is the subject's to answer for, or None."""
    if kind not in facts.by_kind:
        return None  # no event of the kind (most runs)
    return next((i for i in facts.of_kind(kind) if own_error(facts.event(i).detail)), None)


class Escaped(Invariant):
    """No exception escapes a scheduled call into the reactor."""

    name = "errors.escaped"
    summary = "no exception escapes a scheduled call into the reactor"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        index = _first_own_error(facts, EventKind.REACTOR_ERROR)
        if index is None:
            return None
        event = facts.event(index)
        return self.violation(
            run,
            f"an exception escaped a scheduled call into the reactor at {format_ms(event.t_us)}: "
            f"{event.detail}; a real reactor would only log it",
            [index],
        )


class Logged(Invariant):
    """The subject logs no error but its jobs' own and the types it declares (``Target.logs``).

    Opt-in: services log the errors they handle, so which ones a subject may
    log is its contract. Each error logged during the run (a ``log.error``
    event: ``Logger.failure``, ``log.err``, or a message at error level) is
    legitimate when it is an error a job raised or failed with (the one the
    harness injected, itself or carried by a ``wraps`` type), a hostile
    canceller's ``CancellerError``, or an instance of a ``logs`` type; which
    it is was judged when it was logged (``Run.logs_allowed``). A message
    logged at error level with no exception is never legitimate. An
    ``AlreadyCalledError`` is ``completion.once``'s.
    """

    name = "errors.logged"
    summary = "with logs declared, no error is logged but the jobs' own and the declared types"

    def applies(self, target: Target) -> bool:
        return target.logs is not None

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        if _LOG_ERROR not in facts.by_kind:
            return None
        allowed = run.logs_allowed
        for index in facts.of_kind(_LOG_ERROR):
            event = facts.event(index)
            if index in allowed or not own_error(event.detail):
                continue
            when = format_ms(event.t_us) + (" (after stop())" if facts.stopped_at(index) is not None else "")
            declared = ", ".join(t.__name__ for t in run.target.logs or ())
            also = f" and logs=({declared})" if declared else ""
            return self.violation(
                run,
                f"the subject logged an error at {when}: {event.detail}; the target declares it logs only its jobs' "
                f"own errors{also}: its own machinery failed there (read the trace around it), or logging that error "
                "is its contract (add its type to logs)",
                [index],
            )
        return None


_LOG_ERROR = EventKind.LOG_ERROR


class Unhandled(Invariant):
    """No "Unhandled error in Deferred" is logged during or after the run."""

    name = "errors.unhandled"
    summary = 'no "Unhandled error in Deferred" during or after the run (garbage collected, log observed)'

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        index = _first_own_error(facts, EventKind.UNHANDLED)
        if index is None:
            return None
        detail = facts.event(index).detail
        return self.violation(run, f"Unhandled error in Deferred: {detail}; a Deferred failed and nobody handled it", [index])


class Rejects(Invariant):
    """A job is refused only when the target says a refusal is legitimate then (``rejects_only_while``).

    ``rejects`` alone excuses every refusal: a breaker stuck open for ever
    passes it. With ``rejects_only_while(view, job, t_us)`` declared, each
    refusal (the caller's Deferred fails, or ``submit`` raises, with a
    ``rejects`` type) before ``stop()`` and before a cancel of that caller is
    put to it, with the run's ``RunView``, the refused job's ``JobRecord`` and
    the refusal's virtual time; False is a violation. The function is the
    target's: one that raises, or answers anything but True or False, is a
    target error.
    """

    name = "errors.rejects"
    summary = "a job is refused (fails with a rejects type) only when rejects_only_while says a refusal is legitimate then"

    def applies(self, target: Target) -> bool:
        return target.rejects_only_while is not None and target.kind == "submit"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        target = run.target
        allowed = known(target.rejects_only_while)
        for job in facts.jobs.values():
            refused = _refusal(facts, target, job)
            if refused is None:
                continue
            stop = facts.stop_for(job.submit)  # a restarted subject's: Facts.stop_for
            if (stop is not None and stop < refused) or any(c < refused for c in job.cancels):
                continue  # after stop() or a cancel, any error goes
            t_us = facts.time(refused)
            view = run.view
            if target.allows_refusal(view, view.jobs[job.id], t_us):
                continue
            detail = facts.event(refused).detail
            name = getattr(allowed, "__name__", type(allowed).__name__)
            return self.violation(
                run,
                f"job {job.id}, submitted at {format_ms(facts.time(known(job.submit)))}, was refused at {format_ms(t_us)} "
                f"({detail}), but the target's rejects_only_while ({name}) says no refusal is legitimate then",
                sorted({known(job.submit), refused}),
            )
        return None


def _refusal(facts: Facts, target: Target, job: JobFacts) -> int | None:
    """The trace index where ``job`` was refused (its ``submit`` raised, or its Deferred first failed, with a
    ``rejects`` type), or None."""
    if job.periodic or job.submit is None:
        return None
    index = job.submit_raised if job.submit_raised is not None else job.fired
    if index is None or (index == job.fired and facts.event(index).kind != EventKind.FAILURE):
        return None
    return index if any(facts.is_error(index, t) for t in target.rejects) else None


class Poison(Invariant):
    """A job's failure does not poison the subject: later jobs still run."""

    name = "errors.poison"
    summary = "a failure does not poison the subject: later jobs still run"
    needs_diagnosis = True

    def applies(self, target: Target) -> bool:
        return target.kind == "submit"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        stuck = self.diagnosis(run).first(Cause.FAILURE)
        if stuck is None:
            return None
        job = facts.jobs[stuck]
        failures = [known(a.end) for other in facts.jobs.values() for a in other.attempts if a.end_kind == EventKind.JOB_FAIL]
        submitted = f"job {job.id}, submitted at {format_ms(facts.time(known(job.submit)))}"
        if failures and all(facts.event(index).job == job.id for index in failures):
            # No other job failed: its own failure is what the subject lost (review 4, finding 10).
            if run.target.retries_unbounded and job.attempts:
                # retries=math.inf (review 6, finding 2): a job still retried at the drain is not stranded, so
                # this one's subject stopped retrying it
                last = job.attempts[-1]
                high = known(run.target.backoff_range(last.n + 1))[1]
                idle = facts.idle_drain()  # (a stranded job is judged at the drain)
                if idle is not None:
                    gap = (f"the run drained at {format_ms(facts.time(idle))} with nothing left scheduled, no "
                           "retry to come")
                else:
                    gap = f"no retry came within the declared backoff (up to {high:g}ms)"
                return self.violation(
                    run,
                    f"{submitted}, never finished: its attempt {last.n} failed at "
                    f"{format_ms(facts.time(known(last.end)))} and {gap}, yet its caller was never answered; "
                    "retries=math.inf promises a failed job is retried until it lands (the subject stopped "
                    "retrying it silently)",
                    [known(job.submit), known(last.end)],
                )
            return self.violation(
                run,
                f"{submitted}, never finished after its own attempt failed at {format_ms(facts.time(failures[0]))}, "
                "and no other job failed: the failure left the job itself stranded (its caller never answered)"
                + timers_pending_hint(facts, run.target),
                [known(job.submit), failures[0]],
            )
        return self.violation(
            run,
            f"{submitted}, never finished after an earlier job failed: the failure left the subject unable to run work",
            [known(job.submit), *failures[:1]],
        )
