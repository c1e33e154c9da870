"""A user invariant's failure, and the trace events it names.

A target's own invariant reports a broken promise by raising
``AssertionError``; the runner records it as a ``user.fail`` event at the end
of the trace, and the violation marks that event. The events the message is
about (a job's submission, the start that came too early) may lie far before
it, out of the printed window. An invariant that raises ``InvariantFailed``
instead names them by their indices in ``run.trace``: they are marked with
``>>`` and the printed window is centred on them.

The indices live in the trace itself, so that a failure file replays to the
same violation: the ``user.fail`` event's detail ends with
``EVENTS_MARK`` and the indices (``... >> events 3, 7``), written by
``fail_detail`` and read back by ``parse_fail``. A plain ``AssertionError``
writes the detail it always did, so the traces, hashes and failure files of
existing invariants do not change; only a plain message that itself ends like
the mark (or like ``NAMES_NONE``) gets ``NAMES_NONE`` appended, so that it is
not read as naming events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.errors import TargetError

#: What separates a ``user.fail`` message from the indices of the events it names.
EVENTS_MARK = " >> events "

#: Appended to a plain ``AssertionError``'s message that would otherwise be read as naming events.
NAMES_NONE = " >> events none"

_NAMED = re.compile(r"^(?P<message>.*) >> events (?P<events>[0-9]+(?:, [0-9]+)*)$", re.DOTALL)


class InvariantFailed(AssertionError):
    """Raised by a target's own invariant: ``message`` says what broke, ``events`` are the indices in
    ``run.trace`` of the events it is about (marked with ``>>`` in the printed trace, which is centred on them).

    An ``AssertionError``, so that code catching one catches it. Example::

        for index, event in run.view.of_kind(EventKind.JOB_START):
            if too_early(event):
                raise InvariantFailed(f"job {event.job} started at {format_ms(event.t_us)}", events=(index,))
    """

    def __init__(self, message: str, events: Iterable[int] = ()) -> None:
        super().__init__(message)
        try:
            named = tuple(events)
        except TypeError:  # events=3: one index, not a collection of them
            raise TypeError(
                f"InvariantFailed events are a collection of indices into run.trace, got {events!r}; "
                f"give a tuple: events=({events!r},)"
            ) from None
        for index in named:
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise TypeError(
                    f"InvariantFailed events are indices into run.trace (integers from 0), got {index!r}; "
                    "enumerate(run.trace) or run.view.of_kind(kind) gives them"
                )
        self.events: tuple[int, ...] = tuple(sorted(set(named)))


def fail_detail(name: str, error: AssertionError, trace_length: int, text: str) -> str:
    """The detail of the ``user.fail`` event recording ``error``, raised by invariant ``name``.

    ``text`` is the error's message as the trace keeps it (one line, memory
    addresses masked). An ``InvariantFailed`` naming events appends their
    indices; one beyond the trace (``trace_length`` events) is a target error
    naming the invariant, the index and the range.
    """
    detail = f"{name}: {text or 'assertion failed'}"
    events = error.events if isinstance(error, InvariantFailed) else ()
    if not events:
        if detail.endswith(NAMES_NONE) or _NAMED.match(detail) is not None:
            return detail + NAMES_NONE  # a message that ends like the mark: say it names none
        return detail
    beyond = [index for index in events if index >= trace_length]
    if beyond:
        raise TargetError(
            f"the target's invariant {name} names event {beyond[0]}, but the trace has {trace_length} events "
            f"(0 to {trace_length - 1}): give indices into run.trace"
        )
    return detail + EVENTS_MARK + ", ".join(map(str, events))


def parse_fail(detail: str, index: int) -> tuple[str, str, tuple[int, ...]]:
    """The invariant's name, its message and the events it names, from the detail of the ``user.fail``
    event at ``index``; the events are ``(index,)`` (the ``user.fail`` event itself) when it names none.

    Only indices before the ``user.fail`` event count as named (the invariant
    saw the trace up to there): a message of an older file that happens to
    end like the mark with other numbers is read as a message. A detail ending
    in ``NAMES_NONE`` names none; the message is what comes before it.
    """
    function, _, message = detail.partition(": ")
    if message.endswith(NAMES_NONE):
        return function, message[: -len(NAMES_NONE)], (index,)
    named = _NAMED.match(message)
    if named is not None:
        texts = named["events"].split(", ")
        # An index before ``index`` has no more digits than it (and ASCII ones: ``fail_detail`` writes them);
        # a longer number is a message's, and ``int`` refuses those of over 4,300 digits.
        if all(len(text) <= len(str(index)) for text in texts):
            events = tuple(map(int, texts))
            if all(event < index for event in events):
                return function, named["message"], events
    return function, message, (index,)

