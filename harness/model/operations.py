"""Operations: named calls on the subject besides submit, cancel and stop.

Stateful components have more to their interface than "submit a job": a
batching queue is flushed, a circuit breaker tripped or reset, a pool
resized. ``Target(operations={"flush": Operation(lambda s: s.flush())})``
declares such calls; schedules then draw them as timed ``Call`` operations
(arguments from the Hypothesis strategies in ``args``, which must produce
JSON-plain values, so the call can be saved in a failure file and replayed).
A call that raises, or whose returned Deferred fails, breaks
``errors.operation`` unless its exception type is listed in ``raises``; an
``AlreadyCalledError`` (a Deferred fired twice) is ``completion.once``'s
whatever ``raises`` lists.

An operation that suspends progress (``pause()`` of a producer, a
cooperative task, a maintenance mode) declares ``suspends``: the name of the
operation that resumes it, or True when nothing but the end of the run
does. A job left unfinished at the drain because a suspension was still in
force (not yet resumed) is not stranded: ``harness.run.suspensions``.

An operation of a periodic target that asks the loop for a call of its work
now (a forced poll) declares ``calls_now=True``: ``time.on_demand`` holds the
loop to it (``harness.invariants.on_demand``).

An operation that ends work in flight on purpose (``unsubscribe()`` that
cancels the delivery in progress, a partial stop, an abort) declares
``cancels_work=True``: a job (or periodic call) the subject cancels in the
instant of such a call, after it, was cancelled by it, and ``time.timeout``
does not take that cancel for an early timeout (as after a ``stop()``).

An operation that starts afresh jobs whose callers already had their answer (a dead-letter queue's
``redrive()``) declares ``redrives=True``: the attempts of a job after a call of it, once its caller had
a failure for an answer and its last attempt failed, are a new run of the job, judged by ``time.retries``
and ``time.backoff`` with a count of their own (``harness.invariants.redrives``).

An operation that starts a stopped subject again (``resume()``, a service's
``startService()`` after ``stopService()``) declares ``restarts=True``: a
call of it that returns (does not raise) after a ``stop()`` ends the stopped
state, so the schedule may stop the subject again (and the harness's
teardown stops it, if the schedule does not), and ``completion.stop`` and
``completion.operation`` judge what is left unanswered once its last
``stop()`` left it idle. Other invariants still read the first ``stop()``
(work after it is excused, never judged stricter), and a periodic target
refuses it (``time.after_stop`` holds its work to the first ``stop()``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from harness.errors import TargetError


@dataclass(frozen=True)
class Operation:
    """One named call: ``call(subject, *args)``, its argument strategies, and the errors it may raise."""

    call: Callable[..., Any]
    args: tuple[st.SearchStrategy[Any], ...] = ()
    raises: tuple[type[BaseException], ...] = ()
    #: The operation that resumes the progress this one suspends (``"resume"``), True if none does, False
    #: (default) if it suspends nothing. Each resume call ends the latest suspension still in force.
    suspends: bool | str = False
    #: On a periodic target: the call asks the loop to call its work now (buildbot's ``Poller.__call__``, a
    #: "poll now" button): a call of the work starts within the clock's lateness of it, or of the end of the
    #: call running then (``time.on_demand``).
    calls_now: bool = False
    #: The Deferred the call returns may stay unfired for ever, also once the subject is stopped and idle
    #: (a "wait until the next event" that stop() does not answer, by design). Otherwise one that has not
    #: fired when the run ends stopped, with no work in flight and nothing scheduled, breaks
    #: ``completion.operation``: nothing can ever answer its caller.
    may_pend: bool = False
    #: The call may end work in flight on purpose (``unsubscribe()`` cancelling the delivery in progress, a
    #: partial stop): a job the subject cancels in the call's instant, after it, is no early timeout.
    cancels_work: bool = False
    #: A call of it (one that returns, not raises) starts a stopped subject again (``resume()``,
    #: ``startService()``): the run counts as running from then on, the schedule may stop it again, and
    #: ``completion.stop`` / ``completion.operation`` judge from its last ``stop()``. A submit target's only.
    restarts: bool = False
    #: A call of it starts afresh jobs whose callers already had their answer, a failure (a dead-letter
    #: queue's ``redrive()``): a job's attempts after such a call, its last attempt having failed, are a new
    #: run of the job with a count of its own (``time.retries``: at most ``retries + 1`` again; ``time.backoff``:
    #: its first attempt is no retry). The call's return (the new Deferreds) is the glue's to handle. A
    #: submit target's only.
    redrives: bool = False

    def __post_init__(self) -> None:
        if not callable(self.call):
            raise TargetError(f"Operation call must be a function of the subject, got {self.call!r}")
        if not isinstance(self.args, tuple) or not all(isinstance(a, st.SearchStrategy) for a in self.args):
            raise TargetError(f"Operation args must be a tuple of Hypothesis strategies, got {self.args!r}")
        if not isinstance(self.raises, tuple) or not all(isinstance(t, type) and issubclass(t, BaseException) for t in self.raises):
            raise TargetError(f"Operation raises must be a tuple of exception types, got {self.raises!r}")
        if not isinstance(self.suspends, (bool, str)) or (isinstance(self.suspends, str) and not self.suspends.isidentifier()):
            raise TargetError(
                f"Operation suspends must be the name of the operation that resumes it (such as 'resume'), True "
                f"(nothing resumes it but the end of the run) or False, got {self.suspends!r}"
            )
        if not isinstance(self.calls_now, bool):
            raise TargetError(f"Operation calls_now must be True or False, got {self.calls_now!r}")
        if not isinstance(self.may_pend, bool):
            raise TargetError(f"Operation may_pend must be True or False, got {self.may_pend!r}")
        if not isinstance(self.cancels_work, bool):
            raise TargetError(f"Operation cancels_work must be True or False, got {self.cancels_work!r}")
        if not isinstance(self.restarts, bool):
            raise TargetError(f"Operation restarts must be True or False, got {self.restarts!r}")
        if not isinstance(self.redrives, bool):
            raise TargetError(f"Operation redrives must be True or False, got {self.redrives!r}")


def operation_table(operations: Mapping[str, Operation | Callable[..., Any]]) -> dict[str, Operation]:
    """The target's operations by name, a bare function standing for an operation without arguments."""
    if not isinstance(operations, Mapping):
        raise TargetError(f"Target operations must map names to Operation(...) or functions, got {operations!r}")
    table: dict[str, Operation] = {}
    for name, op in operations.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise TargetError(f"Target operation names must be identifiers such as 'flush', got {name!r}")
        if name in ("submit", "cancel", "stop", "start"):
            raise TargetError(f"Target operation {name!r} would shadow the harness's own {name}; name it otherwise")
        table[name] = op if isinstance(op, Operation) else Operation(op)
    for name, op in table.items():
        resume = op.suspends
        if isinstance(resume, str) and (resume not in table or resume == name):
            known = ", ".join(other for other in table if other != name) or "none"
            raise TargetError(
                f"Target operation {name!r} suspends until {resume!r}, which is not another of its operations "
                f"(declared: {known}); name the operation that resumes it, or suspends=True if none does"
            )
    return table
