"""Time invariants: timeouts, retries and backoff, rates, and periodic work.

Times are monotonic virtual time. A call may fire late by up to the clock
policy's stride plus jitter (``Facts.late_us``), never early; checks allow
that lateness and nothing more. Wall-clock jumps move only ``seconds()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from ..target import Target
from ..trace import format_ms
from .base import Invariant, Violation
from .facts import Attempt, Facts, JobFacts, facts_of


class Timeout(Invariant):
    """Declared timeout T: a job still running T after it started is cancelled at T, and its caller gets the timeout error."""

    name = "time.timeout"
    summary = "a job still running T after it started (or was submitted) is cancelled at T and fails with the timeout error"

    def applies(self, target: Target) -> bool:
        return target.timeout_ms is not None and target.kind == "submit"

    def check(self, run) -> Iterator[Violation]:
        facts = facts_of(run)
        for job in facts.jobs.values():
            if job.periodic:
                continue
            message = self._judge(run.target, facts, job)
            if message is not None:
                text, events = message
                yield self.violation(run, text, events)
                return

    def _judge(self, target: Target, facts: Facts, job: JobFacts) -> tuple[str, list[int]] | None:
        timeout = target.timeout_ms * 1000
        horizon = facts.time(facts.drained) if facts.drained is not None else 0
        excused = self._excused_from(facts, job)
        for attempt in job.attempts:
            origin = facts.time(attempt.start if target.timeout_from == "start" else job.submit)
            due = origin + timeout
            ended = facts.time(attempt.end) if attempt.end is not None else None
            if attempt.end_kind == "job.cancel" and ended < due and (excused is None or excused > attempt.end):
                return (
                    f"job {job.id} was cancelled at {format_ms(ended)}, only {format_ms(ended - origin)} after it "
                    f"{'started' if target.timeout_from == 'start' else 'was submitted'}; the timeout is "
                    f"{target.timeout_ms}ms",
                    [attempt.start, attempt.end],
                )
            if ended is not None and ended <= due:
                continue
            if ended is not None and attempt.end_kind != "job.cancel" and ended <= due + facts.late_us:
                continue  # on a late clock the job's own end may come before the timeout fires
            if due > horizon:
                continue
            if excused is not None and facts.time(excused) <= due + facts.late_us and (
                attempt.end is None or attempt.end > excused
            ):
                continue  # a cancel or stop came first, before the timeout was due or before a late clock fired it
            timed_out = attempt.end_kind == "job.cancel" and ended <= due + facts.late_us
            if not timed_out:
                still = "never ended" if ended is None else f"ran on until {format_ms(ended)}"
                return (
                    f"job {job.id} was still running at {format_ms(due)}, {target.timeout_ms}ms after it "
                    f"{'started' if target.timeout_from == 'start' else 'was submitted'}, but the timeout did not "
                    f"cancel it (it {still})",
                    [attempt.start] + ([attempt.end] if attempt.end is not None else []),
                )
            if target.retries is None and not attempt.canceller_raised:  # a hostile canceller blocks the failure
                expected = target.timeout_error.__name__
                if job.fired is None or facts.time(job.fired) > ended:
                    return (
                        f"job {job.id} timed out at {format_ms(ended)} but its Deferred did not fail then",
                        [attempt.start, attempt.end],
                    )
                if facts.events[job.fired].kind != "failure" or facts.error_name(job.fired) != expected:
                    return (
                        f"job {job.id} timed out at {format_ms(ended)} but its Deferred fired with "
                        f"{facts.events[job.fired].detail}, not {expected}",
                        [attempt.end, job.fired],
                    )
        return None

    @staticmethod
    def _excused_from(facts: Facts, job: JobFacts) -> int | None:
        """The first user cancel or stop: from then on the job may end for reasons other than the timeout."""
        marks = [*job.cancels[:1], *facts.stops[:1]]
        return min(marks) if marks else None


class Retries(Invariant):
    """Declared retry bound: at most ``retries + 1`` attempts, each only after the previous one failed."""

    name = "time.retries"
    summary = "at most retries+1 attempts per job, each only after the previous attempt failed"

    def applies(self, target: Target) -> bool:
        return target.retries is not None and target.kind == "submit"

    def check(self, run) -> Iterator[Violation]:
        facts = facts_of(run)
        bound = run.target.retries + 1
        for job in facts.jobs.values():
            if len(job.attempts) > bound:
                yield self.violation(
                    run,
                    f"job {job.id} was attempted {len(job.attempts)} times; at most {bound} "
                    f"(1 + {run.target.retries} retries) were declared",
                    [a.start for a in job.attempts],
                )
                return
            for previous, attempt in zip(job.attempts, job.attempts[1:]):
                if previous.end is None or previous.end > attempt.start:
                    yield self.violation(
                        run,
                        f"job {job.id} attempt {attempt.n} started at {format_ms(facts.time(attempt.start))} "
                        f"while attempt {previous.n} was still running",
                        [previous.start, attempt.start],
                    )
                    return
                if previous.end_kind == "job.finish":
                    yield self.violation(
                        run,
                        f"job {job.id} was retried (attempt {attempt.n}) although attempt {previous.n} succeeded",
                        [previous.end, attempt.start],
                    )
                    return


class Backoff(Invariant):
    """Declared backoff: the delay before each retry stays within its declared range."""

    name = "time.backoff"
    summary = "the delay before each retry stays within the declared backoff range"

    def applies(self, target: Target) -> bool:
        return target.backoff_ms is not None

    def check(self, run) -> Iterator[Violation]:
        facts = facts_of(run)
        if run.target.backoff_loop:
            yield from self._loop(run, facts)
            return
        for job in facts.jobs.values():
            for previous, attempt in zip(job.attempts, job.attempts[1:]):
                if previous.end is None:
                    continue
                low, high = run.target.backoff_range(attempt.n)
                waited = facts.time(attempt.start) - facts.time(previous.end)
                if waited < low * 1000 or waited > high * 1000 + facts.late_us:
                    yield self.violation(
                        run,
                        f"job {job.id} retry {attempt.n} started {format_ms(waited)} after attempt {previous.n} "
                        f"ended; the declared backoff is {low:g}ms to {high:g}ms",
                        [previous.end, attempt.start],
                    )
                    return


    def _loop(self, run, facts: Facts) -> Iterator[Violation]:
        """A backoff loop: the call after a failure comes within that retry's range (``time.early`` judges the low end)."""
        for job in facts.jobs.values():
            if not job.periodic:
                continue
            for previous, attempt, wait in _backoff_waits(run.target, job):
                if not wait.retry or facts.jump_between(wait.origin, attempt.start):
                    continue
                k = wait.retry
                low, high = run.target.backoff_range(k)
                waited = facts.time(attempt.start) - facts.time(wait.origin)
                if waited > high * 1000 + facts.late_us:
                    yield self.violation(
                        run,
                        f"periodic call {attempt.n} came {format_ms(waited)} after call {previous.n} failed "
                        f"(retry {k}); the declared backoff is {low:g}ms to {high:g}ms",
                        [previous.end, attempt.start],
                    )
                    return


class Early(Invariant):
    """Nothing starts earlier than promised: periodic calls keep their interval, rate-limited work its rate.

    A wall-clock jump may shift the schedule of code that reads ``seconds()``
    (``LoopingCall`` does), so comparisons never reach across a jump, nor
    from the first periodic call after one, which may have timed the next.
    """

    name = "time.early"
    summary = "periodic calls come no sooner than the interval; rate-limited starts stay within the declared rate"

    def applies(self, target: Target) -> bool:
        return target.rate is not None or target.kind == "periodic"

    def check(self, run) -> Iterator[Violation]:
        facts = facts_of(run)
        target = run.target
        if target.backoff_loop:
            yield from self._backoff(run, facts, target)
        elif target.kind == "periodic":
            yield from self._periodic(run, facts, target.interval_ms * 1000)
        if target.rate is not None:
            yield from self._rate(run, facts, *target.rate)

    def _periodic(self, run, facts: Facts, interval: int) -> Iterator[Violation]:
        for job in facts.jobs.values():
            if not job.periodic:
                continue
            first: Attempt | None = None
            count = 0
            previous = job.submit if job.submit is not None else -1
            settling = False
            for attempt in job.attempts:
                if facts.jump_between(previous, attempt.start):
                    # The first call after a jump may time the next one from a jumped reading against an
                    # anchor read before the jump (LoopingCall re-aligns to its grid once): start afresh
                    # from the call after it.
                    first, settling = None, True
                previous = attempt.start
                if first is None:
                    if settling:
                        settling = False
                    else:
                        first, count = attempt, 0
                    continue
                count += 1
                earliest = facts.time(first.start) + count * interval - facts.late_us
                if facts.time(attempt.start) < earliest:
                    yield self.violation(
                        run,
                        f"periodic call {attempt.n} came at {format_ms(facts.time(attempt.start))}, earlier than "
                        f"the {interval // 1000}ms interval allows (call {first.n} was at "
                        f"{format_ms(facts.time(first.start))}, so no sooner than {format_ms(earliest)})",
                        [first.start, attempt.start],
                    )
                    return

    def _backoff(self, run, facts: Facts, target: Target) -> Iterator[Violation]:
        """A backoff loop: after the k-th failure in a row, the next call waits at least the low end of retry k's range."""
        for job in facts.jobs.values():
            if not job.periodic:
                continue
            for previous, attempt, wait in _backoff_waits(target, job):
                origin, low, why = wait.origin, wait.least_ms, wait.why
                if facts.jump_between(origin, attempt.start):
                    continue
                waited = facts.time(attempt.start) - facts.time(origin)
                if waited < round(low * 1000):
                    yield self.violation(
                        run,
                        f"periodic call {attempt.n} came at {format_ms(facts.time(attempt.start))}, "
                        f"{format_ms(waited)} after call {previous.n} {why}; the declared wait is at least {low:g}ms",
                        sorted({previous.start, origin, attempt.start}),
                    )
                    return

    def _rate(self, run, facts: Facts, jobs: int, per_ms: int) -> Iterator[Violation]:
        starts = sorted(j.first_start for j in facts.jobs.values() if j.first_start is not None)
        for early, late in zip(starts, starts[jobs:]):
            if facts.time(late) - facts.time(early) < per_ms * 1000 and not facts.jump_between(early, late):
                yield self.violation(
                    run,
                    f"{jobs + 1} jobs started between {format_ms(facts.time(early))} and "
                    f"{format_ms(facts.time(late))}; the declared rate is {jobs} per {per_ms}ms",
                    [s for s in starts if early <= s <= late],
                )
                return


class _Periodic(Invariant):
    def applies(self, target: Target) -> bool:
        return target.kind == "periodic"

    @staticmethod
    def periodic_jobs(facts: Facts) -> list[JobFacts]:
        return [job for job in facts.jobs.values() if job.periodic]


class Overlap(_Periodic):
    """Periodic work never overlaps itself unless the target allows it."""

    name = "time.overlap"
    summary = "a periodic call never starts while the previous one still runs (unless overlap=True)"

    def applies(self, target: Target) -> bool:
        return target.kind == "periodic" and not target.overlap

    def check(self, run) -> Iterator[Violation]:
        facts = facts_of(run)
        for job in self.periodic_jobs(facts):
            for previous in job.attempts:
                for attempt in job.attempts:
                    if attempt.n > previous.n and previous.running_at(attempt.start):
                        yield self.violation(
                            run,
                            f"periodic call {attempt.n} started at {format_ms(facts.time(attempt.start))} while "
                            f"call {previous.n} (started {format_ms(facts.time(previous.start))}) was still running",
                            [previous.start, attempt.start],
                        )
                        return


class AfterStop(_Periodic):
    """After ``stop()``, the periodic function is never called again."""

    name = "time.after_stop"
    summary = "after stop() the periodic function is never called again"

    def check(self, run) -> Iterator[Violation]:
        facts = facts_of(run)
        stop = facts.first_stop()
        if stop is None:
            return
        for job in self.periodic_jobs(facts):
            for attempt in job.attempts:
                if attempt.start > stop:
                    yield self.violation(
                        run,
                        f"periodic call {attempt.n} started at {format_ms(facts.time(attempt.start))}, after "
                        f"stop() at {format_ms(facts.time(stop))}",
                        [stop, attempt.start],
                    )
                    return


class LoopDied(_Periodic):
    """An error in periodic work is reported (logged, or its Deferred fails) rather than silently ending the loop."""

    name = "time.loop_died"
    summary = "an error in the periodic function is reported, never silently ending the loop"

    def check(self, run) -> Iterator[Violation]:
        facts = facts_of(run)
        target = run.target
        for job in self.periodic_jobs(facts):
            in_a_row = _failures_in_a_row(job)
            for attempt in job.attempts:
                if attempt.end_kind != "job.fail":
                    continue
                if any(later.start > attempt.end for later in job.attempts):
                    continue
                stop = facts.first_stop()
                if stop is not None and stop < attempt.end:
                    continue  # a call failing after stop() ends nothing that should go on (issue 13 item 4)
                window_end = self._window_end(facts, attempt.end)
                # Two periods (a backoff loop: twice the longest wait before its next retry) with no call.
                if target.backoff_loop:
                    patience = 2 * round(target.backoff_range(in_a_row[attempt.n])[1] * 1000)
                else:
                    patience = 2 * target.interval_ms * 1000
                if facts.time(window_end) - facts.time(attempt.end) < patience + facts.late_us:
                    continue
                if self._reported(facts, job, attempt.end, window_end):
                    continue
                yield self.violation(
                    run,
                    f"periodic call {attempt.n} failed at {format_ms(facts.time(attempt.end))} and the function was "
                    f"never called again, yet the error was not reported (not logged, no failed Deferred)",
                    [attempt.start, attempt.end],
                )
                return

    @staticmethod
    def _window_end(facts: Facts, after: int) -> int:
        later = [i for i in facts.stops if i > after]
        if later:
            return later[0]
        return facts.drained if facts.drained is not None else len(facts.events) - 1

    @staticmethod
    def _reported(facts: Facts, job: JobFacts, start: int, end: int) -> bool:
        for event in facts.events[start:end + 1]:
            if event.kind == "log.error" or (event.kind == "failure" and event.job == job.id):
                return True
        return False


def _failures_in_a_row(job: JobFacts) -> dict[int, int]:
    """For each attempt number, how many calls had failed in a row when it ended (0 after a success)."""
    count = 0
    out: dict[int, int] = {}
    for attempt in job.attempts:
        if attempt.end_kind == "job.fail":
            count += 1
        elif attempt.end_kind == "job.finish":
            count = 0
        out[attempt.n] = count
    return out


class _Wait(NamedTuple):
    """What a backoff loop's call had to wait for: from event ``origin``, at least ``least_ms``; ``retry`` k, or 0."""

    origin: int
    least_ms: float
    why: str
    retry: int


def _backoff_waits(target: Target, job: JobFacts) -> Iterator[tuple[Attempt, Attempt, _Wait]]:
    """Each call of a backoff loop after the first, with the wait it owed to the call before.

    After the k-th failure in a row: ``backoff_range(k)`` from the failure;
    after a success: ``interval_ms`` from the previous start, or without one
    ``backoff_range(1)`` from its end. A call still running, or cancelled
    (by ``stop()``), sets no wait: overlap and after-stop are judged apart.
    """
    in_a_row = _failures_in_a_row(job)
    for previous, attempt in zip(job.attempts, job.attempts[1:]):
        if previous.end is None or previous.end > attempt.start:
            continue
        if previous.end_kind == "job.fail":
            k = in_a_row[previous.n]
            yield previous, attempt, _Wait(previous.end, target.backoff_range(k)[0], f"failed (retry {k})", k)
        elif previous.end_kind == "job.finish":
            if target.interval_ms is not None:
                yield previous, attempt, _Wait(previous.start, float(target.interval_ms), "started (it succeeded)", 0)
            else:
                low = target.backoff_range(1)[0]
                yield previous, attempt, _Wait(previous.end, low, "succeeded (retry count reset)", 0)
