"""The menu: what a generated schedule may contain, derived from a target's promises."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from hypothesis import strategies as st

from harness.model.faults import BUILTIN_ERRORS
from harness.model.schedule import JOB_KINDS, ORDERS, TIE_BREAKS


#: The Menu fields that count something (``grain_ms`` at least 1, the others at least 0).
_COUNTS = ("max_ops", "min_ops", "max_duration_ms", "max_gap_ms", "grain_ms", "max_jump_ms", "priorities", "max_then", "keys")
#: The Menu fields that switch something on or off.
_FLAGS = ("cancels", "stops", "jumps", "canceller_raises", "periodic", "landings")


def _milliseconds(value: object) -> bool:
    return type(value) is int and value >= 0


#: The Menu fields that are choices: each value's test, and what the values must be (for the message).
_CHOICES = (
    ("job_kinds", lambda v: v in JOB_KINDS, f"job kinds among {', '.join(JOB_KINDS)}"),
    ("errors", lambda v: isinstance(v, str), "exception names (strings)"),
    ("tie_breaks", lambda v: v in ORDERS, f"tie-breaks among {', '.join(ORDERS)}"),
    ("steps_ms", _milliseconds, "non-negative integers (ms)"),
    ("jitters_ms", _milliseconds, "non-negative integers (ms)"),
)


def _shown(value: object) -> str:
    """``value`` for a message, with its type: ``'x' (a str)``."""
    kind = type(value).__name__
    return f"{value!r} ({'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind})"


@dataclass(frozen=True)
class Menu:
    """What a generated schedule may contain; the defaults throw everything at the subject.

    A target's menu is derived from its promises (``Menu.derived(target)``)
    unless it names one; ``Target(menu={...})`` changes single fields of the
    derived menu, so what schedules contain can be widened or narrowed
    without declaring or dropping a promise. The fields:

    * ``max_ops``, ``min_ops``: how many operations a schedule has (a
      periodic schedule's ``Start`` comes on top).
    * ``job_kinds``: the behaviours jobs are drawn from, among
      ``succeed`` (after a duration), ``immediate`` (an already-fired
      Deferred), ``value`` (a plain value), ``fail`` (after a duration),
      ``raise`` (at call) and ``hang`` (until cancelled); leave out
      ``immediate`` and ``value`` for jobs that never complete at once.
    * ``errors``: the exception names failing jobs raise (built-in ones and
      those the target declares in ``errors``).
    * ``max_duration_ms``: the longest ``succeed``/``fail`` duration.
    * ``max_gap_ms``: the longest gap between two operations; half the gaps
      are zero (bursts).
    * ``grain_ms``: every duration, gap and jump is a multiple of it, so that
      calls often fall due at the same instant (where tie-break bugs live).
    * ``cancels``: schedules cancel submitted Deferreds (submit targets).
    * ``stops``: schedules may stop the subject early (at most one stop,
      but one more after each call of a ``restarts`` operation; the harness
      stops it at the end of every run anyway).
    * ``jumps``, ``max_jump_ms``: the wall clock (``seconds()``) jumps
      forward or back by up to ``max_jump_ms``.
    * ``priorities``: how many priority levels submissions carry (0: all 0).
    * ``canceller_raises``: some cancellable jobs (``succeed``, ``fail``,
      ``hang``) get a canceller that raises (a hostile job), about one in eight.
    * ``periodic``: schedules start a periodic subject once (with ``Start``)
      instead of submitting jobs.
    * ``max_then``: how many extra behaviours a job may have for its later
      attempts (retries, later periodic calls); the last one repeats.
    * ``tie_breaks``, ``steps_ms``, ``jitters_ms``: the clock policies drawn
      from (one of each per schedule, each value equally often): the order of
      calls due at the same instant (fifo, lifo, shuffle), the reactor's
      stride (0, 10, 100, 1,000, 5,000 ms; 0: punctual) and how late each call
      may fire (0, 5, 50 ms); a call fires at most stride + jitter late.
    * ``landings``: operations may land before or between the rounds of
      calls due at their instant (``after_rounds``: I/O between two passes of
      the reactor), about one in four; False: always after every round.
    * ``keys``: how many keys submitted jobs are spread over (0: none); key 0
      is the simplest, so a schedule shrinks towards one key.
    * ``operations``: the target's named calls, ``(name, argument
      strategies)``; each schedule draws a pool of argument tuples per
      operation, used in turn.
    * ``restarts``: the names of the operations declared
      ``Operation(restarts=True)``: after a call of one, a schedule may stop
      the subject again.
    """

    max_ops: int = 16
    min_ops: int = 0
    job_kinds: tuple[str, ...] = JOB_KINDS
    errors: tuple[str, ...] = tuple(BUILTIN_ERRORS)
    max_duration_ms: int = 1_000
    max_gap_ms: int = 500
    grain_ms: int = 10
    cancels: bool = True
    stops: bool = False
    jumps: bool = True
    max_jump_ms: int = 5_000
    priorities: int = 0
    canceller_raises: bool = False
    periodic: bool = False
    max_then: int = 0
    tie_breaks: tuple[str, ...] = TIE_BREAKS
    steps_ms: tuple[int, ...] = (0, 10, 100, 1_000, 5_000)
    jitters_ms: tuple[int, ...] = (0, 5, 50)
    keys: int = 0
    landings: bool = True
    operations: tuple[tuple[str, tuple[st.SearchStrategy[Any], ...]], ...] = ()
    restarts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Types first, so that a wrong one is named here rather than failing a comparison below or in the search.
        for name in _COUNTS:
            value = getattr(self, name)
            least = 1 if name == "grain_ms" else 0
            if type(value) is not int or value < least:
                raise ValueError(f"Menu {name} must be an integer of at least {least}, got {_shown(value)}")
        for name in _FLAGS:
            if type(getattr(self, name)) is not bool:
                raise ValueError(f"Menu {name} must be True or False, got {_shown(getattr(self, name))}")
        for name, each, allowed in _CHOICES:
            value = getattr(self, name)
            if not isinstance(value, tuple) or not value or not all(each(v) for v in value):
                raise ValueError(f"Menu {name} must be a non-empty tuple of {allowed}, got {_shown(value)}")
        if not isinstance(self.operations, tuple):
            raise ValueError(f"Menu operations must be a tuple of (name, argument strategies), got {_shown(self.operations)}")
        if not isinstance(self.restarts, tuple) or not all(isinstance(name, str) for name in self.restarts):
            raise ValueError(f"Menu restarts must be a tuple of operation names, got {_shown(self.restarts)}")
        if not self.job_kinds or any(kind not in JOB_KINDS for kind in self.job_kinds):
            raise ValueError(f"Menu job_kinds must be a non-empty subset of {', '.join(JOB_KINDS)}")
        if not self.errors:
            raise ValueError("Menu errors must name at least one exception type")
        if not 0 <= self.min_ops <= self.max_ops:
            raise ValueError(f"Menu needs 0 <= min_ops <= max_ops, got {self.min_ops} and {self.max_ops}")
        if not isinstance(self.keys, int) or self.keys < 0:
            raise ValueError(f"Menu keys must be a non-negative integer (0: no keys), got {self.keys!r}")

    @classmethod
    def derived(cls, target: Any) -> Menu:
        """The menu a ``harness.Target`` gets from its promises alone (whatever its own ``menu`` says).

        Cancels and hostile cancellers come with ``cancellable`` submit
        targets, priorities with ``order="priority"``, later-attempt
        behaviours with ``retries`` and periodic targets; every target may be
        stopped early.
        """
        submit = target.kind == "submit"
        return cls(
            errors=tuple(target.error_types),
            cancels=bool(target.cancellable) and submit,
            stops=True,
            priorities=3 if target.order == "priority" else 0,
            periodic=not submit,
            canceller_raises=bool(target.cancellable) and submit,
            max_then=3 if (target.retries or not submit or _copies(target)) else 0,
            keys=target.keys or 0,
            operations=tuple((name, op.args) for name, op in sorted(target.operations.items())),
            restarts=tuple(sorted(target.restarting_operations)),
        )

    def narrowed(self, **changes: Any) -> Menu:
        """This menu with some choices left out, built without the checks (a swarm part, per example).

        Only for values taken from this menu's own: a non-empty part of a
        choice tuple, or a flag turned off; anything else goes through ``with_``.
        """
        part = object.__new__(Menu)
        part.__dict__.update(self.__dict__)
        part.__dict__.update(changes)
        return part

    def with_(self, **changes: Any) -> Menu:
        """This menu with some fields changed: ``menu.with_(canceller_raises=True)``.

        Raises ``ValueError`` naming a field that does not exist.
        """
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(
                f"Menu has no field {', '.join(map(repr, unknown))}; "
                f"its fields are {', '.join(f.name for f in fields(self))}"
            )
        return replace(self, **changes)


def _copies(target: Any) -> bool:
    """Whether the target's subject calls a job several times beside each other (``hedge_ms``, ``fanout``): its
    copies may behave otherwise than the first call, so the menu draws later-attempt behaviours."""
    return getattr(target, "hedge_ms", None) is not None or getattr(target, "fanout", None) is not None
