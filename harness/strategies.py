"""Hypothesis strategies that generate schedules.

Built to shrink well: operations are a flat list (Hypothesis deletes
elements), every choice lists its simplest value first (a submit before a
cancel, ``succeed`` before ``hang``, ``fifo`` before ``shuffle``, punctual
before strided) and numbers shrink towards zero, so a minimal failing
schedule has few, short, fault-free operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hypothesis import strategies as st

from .faults import BUILTIN_ERRORS
from .schedule import JOB_KINDS, TIE_BREAKS, Cancel, ClockPolicy, JobSpec, Jump, Schedule, Start, Stop, Submit


@dataclass(frozen=True)
class Menu:
    """What a generated schedule may contain; the defaults throw everything at the subject.

    Times are multiples of ``grain_ms`` so that calls often fall due at the
    same instant, which is where tie-break bugs live. ``periodic`` makes
    schedules that start a periodic subject once and then stop it or jump the
    clock; ``max_then`` is how many extra behaviours a job may have for its
    later attempts (retries, later periodic calls). At most one stop is kept.
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


def _grained(limit_ms: int, grain_ms: int) -> st.SearchStrategy[int]:
    return st.integers(0, max(limit_ms // grain_ms, 0)).map(lambda n: n * grain_ms)


def job_specs(menu: Menu = Menu()) -> st.SearchStrategy[JobSpec]:
    """Job behaviours from the menu, simplest (a short success) first."""
    return st.builds(
        JobSpec,
        kind=st.sampled_from(menu.job_kinds),
        after_ms=_grained(menu.max_duration_ms, menu.grain_ms),
        error=st.sampled_from(menu.errors),
        canceller_raises=st.booleans() if menu.canceller_raises else st.just(False),
    )


def clock_policies(menu: Menu = Menu()) -> st.SearchStrategy[ClockPolicy]:
    return st.builds(
        ClockPolicy,
        tie_break=st.sampled_from(menu.tie_breaks),
        seed=st.integers(0, 2**16),
        step_ms=st.sampled_from(menu.steps_ms),
        jitter_ms=st.sampled_from(menu.jitters_ms),
    )


def _behaviours(menu: Menu) -> st.SearchStrategy[tuple[JobSpec, tuple[JobSpec, ...]]]:
    """A job's first behaviour and those of its later attempts."""
    specs = job_specs(menu)
    then = st.lists(specs, max_size=menu.max_then).map(tuple) if menu.max_then else st.just(())
    return st.tuples(specs, then)


def _drafts(menu: Menu) -> st.SearchStrategy[tuple[Any, ...]]:
    gap = _grained(menu.max_gap_ms, menu.grain_ms)
    priority = st.integers(0, max(menu.priorities - 1, 0))
    options: list[st.SearchStrategy[tuple[Any, ...]]] = []
    if not menu.periodic:
        options.append(st.tuples(st.just("submit"), gap, _behaviours(menu), priority))
    if menu.cancels and not menu.periodic:
        options.append(st.tuples(st.just("cancel"), gap, st.integers(0, menu.max_ops)))
    if menu.jumps:
        options.append(
            st.tuples(st.just("jump"), gap, _grained(menu.max_jump_ms, menu.grain_ms), st.booleans())
        )
    if menu.stops:
        options.append(st.tuples(st.just("stop"), gap))
    return st.one_of(options)


def _assemble(drafts: list[tuple[Any, ...]], policy: ClockPolicy, start: Any = None) -> Schedule:
    ops: list[Any] = []
    now = 0
    submitted = 0
    stopped = False
    if start is not None:
        gap, (spec, then) = start
        now = gap
        ops.append(Start(now, 0, spec, then))
        submitted = 1
    for draft in drafts:
        kind, gap = draft[0], draft[1]
        now += gap
        if kind == "submit":
            spec, then = draft[2]
            ops.append(Submit(now, submitted, spec, draft[3], then))
            submitted += 1
        elif kind == "cancel":
            # ``back`` counts from the newest submission, so it shrinks to "the latest job".
            if submitted:
                ops.append(Cancel(now, submitted - 1 - min(draft[2], submitted - 1)))
        elif kind == "jump":
            ops.append(Jump(now, -draft[2] if draft[3] else draft[2]))
        elif not stopped:
            ops.append(Stop(now))
            stopped = True
    return Schedule(tuple(ops), policy)


@lru_cache(maxsize=64)
def schedules(menu: Menu = Menu()) -> st.SearchStrategy[Schedule]:
    """Schedules of submissions (or a periodic start), cancellations, a stop and clock faults.

    Built once per menu: constructing strategies inside every draw would cost
    more than running the schedule.
    """
    start = st.tuples(_grained(menu.max_gap_ms, menu.grain_ms), _behaviours(menu)) if menu.periodic else st.none()
    drafts = st.lists(_drafts(menu), min_size=menu.min_ops, max_size=menu.max_ops) if _has_drafts(menu) else st.just([])
    return st.tuples(drafts, clock_policies(menu), start).map(lambda parts: _assemble(*parts))


def _has_drafts(menu: Menu) -> bool:
    return not menu.periodic or menu.jumps or menu.stops
