"""Operation arguments drawn from bytes, so the byte-level search calls operations that take arguments.

A target's operation may take arguments drawn from Hypothesis strategies
(``Operation(call, args=(st.integers(0, 5),))``). The byte search runs no
Hypothesis per example, so each call record of a menu with such operations
carries ``ARG_BYTES`` more bytes (``harness.search.strategies``), and this
module turns them into the call's arguments by running the operation's
strategies on them through Hypothesis's public fuzzing entry point,
``fuzz_one_input``: every strategy works (integers, text, lists,
``sampled_from``, ``builds``...), and the same bytes always give the same
arguments, so the search stays a pure function of its seed. Zero bytes give
each strategy's simplest value (``integers(3, 9)`` gives 3), low bytes
simple ones, so the bytes' zero is the simplest choice, as for the rest of
the codec. The bytes are padded with ``PADDING`` zero bytes, enough for the
strategies' remaining draws to stop at their simplest; bytes a strategy
refuses (a ``filter`` or ``assume`` that fails) leave the call out of the
schedule. How bytes map to values is Hypothesis's and may change between its
versions (the search then differs); a saved failure keeps the arguments
themselves, so it replays under any version.

Drawing costs about 0.25 ms (Hypothesis's test setup), so draws are
remembered (``MEMO`` per operation) under the bytes they read: an
``integers(1, 3)`` argument reads one byte or two, so after a few hundred
draws nearly every call finds its arguments remembered.

A failing schedule's arguments are shrunk by ``shrink_arguments``: each
argument is replaced in turn by a simpler value that its own strategy drew
from simple bytes (one non-zero byte), the simplest first, while the same
invariant still breaks; a value the strategy could not produce is never
tried, so shrinking cannot trade the bug for a call the target never
promised to take.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from harness.errors import TargetError
from harness.model.menu import Menu
from harness.model.schedule import Call, Schedule

#: Bytes of each call record that its arguments are drawn from (when some operation takes arguments).
ARG_BYTES = 8
#: Zero bytes appended to a record's argument bytes, so that the strategies' last draws find their simplest value.
PADDING = 256
#: Argument draws remembered per operation.
MEMO = 4_096
#: Tries per argument in ``shrink_arguments``.
SHRINK_TRIES = 64
#: The leading argument bytes that ``simple_values`` sets, one at a time, to each non-zero value.
SIMPLE_POSITIONS = 4


class ArgumentDrawer:
    """Draws one operation's argument tuple from bytes with its strategies (memoised)."""

    def __init__(self, name: str, strategies: tuple[st.SearchStrategy[Any], ...]) -> None:
        self.name = name
        self.strategies = strategies
        self.memo: dict[bytes, tuple[Any, ...]] = {}  # the bytes a draw read -> its arguments
        self.lengths: list[int] = []  # the lengths of those bytes, in the order first seen
        drawn: list[tuple[Any, ...]] = []

        try:

            @settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
            @given(st.tuples(*strategies))
            def draw(args: tuple[Any, ...]) -> None:
                drawn.append(args)

            # Hypothesis hangs fuzz_one_input on the decorated function, whose type does not declare it:
            self._fuzz = draw.hypothesis.fuzz_one_input  # type: ignore[attr-defined]
        except HypothesisException as exc:
            raise self._refused(exc) from None
        self._drawn = drawn

    def draw(self, data: bytes) -> tuple[Any, ...] | None:
        """The arguments ``data`` gives, or None when the strategies refuse these bytes.

        Strategies read their bytes in order, so the arguments depend only on
        the bytes read: a draw is remembered under that prefix (its length is
        the length of what ``fuzz_one_input`` returns), and any bytes with a
        remembered prefix give the same arguments without running Hypothesis.
        """
        padded = bytes(data) + bytes(PADDING)
        for length in self.lengths:
            if padded[:length] in self.memo:
                return self.memo[padded[:length]]
        self._drawn.clear()
        try:
            replay = self._fuzz(padded)
        except HypothesisException as exc:
            raise self._refused(exc) from None
        args = tuple(self._drawn[0]) if replay is not None and self._drawn else None
        if len(self.memo) >= MEMO:
            self.memo.clear()
            self.lengths.clear()
        if args is not None and replay is not None:
            if len(replay) not in self.lengths:
                self.lengths.append(len(replay))
            self.memo[padded[: len(replay)]] = args
        return args

    def _refused(self, exc: Exception) -> TargetError:
        return TargetError(
            f"operation {self.name!r}: its argument strategies cannot draw: {exc}; fix the strategies in its Operation(args=...)"
        )

    def simple_values(self) -> list[tuple[Any, ...]]:
        """Argument tuples drawn from simple bytes: all zero, then one non-zero byte among the first ``SIMPLE_POSITIONS``."""
        found = []
        for data in _simple_bytes():
            args = self.draw(data)
            if args is not None and args not in found:
                found.append(args)
        return found


@lru_cache(maxsize=1)
def _simple_bytes() -> tuple[bytes, ...]:
    simple = [bytes(ARG_BYTES)]
    for at in range(SIMPLE_POSITIONS):
        for value in range(1, 256):
            data = bytearray(ARG_BYTES)
            data[at] = value
            simple.append(bytes(data))
    return tuple(simple)


def drawers(menu: Menu) -> tuple[ArgumentDrawer | None, ...]:
    """One drawer per operation of the menu (None for an operation without arguments), built once per
    set of operations (a swarm part's menu shares its whole menu's drawers, and what they remember)."""
    return _drawers(menu.operations)


@lru_cache(maxsize=64)
def _drawers(operations: tuple[tuple[str, tuple[st.SearchStrategy[Any], ...]], ...]) -> tuple[ArgumentDrawer | None, ...]:
    return tuple(ArgumentDrawer(name, args) if args else None for name, args in operations)


def takes_arguments(menu: Menu) -> bool:
    """Whether some operation of the menu draws arguments (its call records then carry ``ARG_BYTES``)."""
    return any(args for _, args in menu.operations)


def simplicity(value: Any) -> tuple[int, str]:
    """A total order on JSON-plain values, simplest first: shorter JSON, then the JSON text."""
    text = json.dumps(value, sort_keys=True)
    return len(text), text


def shrink_arguments(schedule: Schedule, menu: Menu, still_fails: Callable[[Schedule], bool]) -> Schedule:
    """``schedule`` with each call's arguments simplified, one at a time, while ``still_fails`` holds.

    Candidates for an argument are the values its strategy draws from simple
    bytes (``ArgumentDrawer.simple_values``), tried simplest first and only
    when simpler than the argument they replace, so shrinking ends.
    """
    table = {name: drawer for (name, _), drawer in zip(menu.operations, drawers(menu)) if drawer is not None}
    for index, op in enumerate(schedule.ops):
        if not isinstance(op, Call) or op.operation not in table or not op.args:
            continue
        pool = table[op.operation].simple_values()
        for position in range(len(op.args)):
            current = schedule.ops[index]
            assert isinstance(current, Call)
            options = sorted({json.dumps(args[position], sort_keys=True): args[position] for args in pool}.values(), key=simplicity)
            tries = 0
            for value in options:
                if simplicity(value) >= simplicity(current.args[position]) or tries >= SHRINK_TRIES:
                    break
                tries += 1
                args = current.args[:position] + (value,) + current.args[position + 1 :]
                candidate = replace(schedule, ops=schedule.ops[:index] + (replace(current, args=args),) + schedule.ops[index + 1 :])
                if still_fails(candidate):
                    schedule = candidate
                    break
    return schedule
