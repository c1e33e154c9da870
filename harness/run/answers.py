"""An operation's answer: the trace events saying what the Deferred an operation returned delivered.

A ``call`` event opens an operation; a Deferred it returns answers later, or at
once, with a value (``call.result``), an error (``call.failure`` for an
undeclared type, ``call.refused`` for a declared one), or never
(``call.pending``, recorded when the run ended with nothing left to fire it).
Several calls of one operation may be waiting at once and be answered in any
order, so each answer names its call: the detail ends with ``(call at event
<trace index of the call>)``. An operation that raised is answered by the
event right after its call, without that ending (as it always was). This
module writes and reads that ending; ``harness.run.view`` pairs the answers
with their ``CallRecord``. The harness's caller only watches: it passes each
answer on unchanged (``harness.run.steps``), so calls handed one shared
Deferred record the same answer.
"""

from __future__ import annotations

_MARK = " (call at event "


def answer_detail(text: str, call_at: int) -> str:
    """The detail of an answer event: ``text`` (``wait: <value>``) and the trace index of its call."""
    return f"{text}{_MARK}{call_at})"


def read_answer(detail: str) -> tuple[str, int | None]:
    """``(text, call index)`` of an answer event's detail; ``(detail, None)`` for one naming no call (a raise)."""
    text, mark, index = detail.rpartition(_MARK)
    if not mark or not index.endswith(")") or not index[:-1].isdigit():
        return detail, None
    return text, int(index[:-1])
