"""Operation arguments drawn from bytes: the byte search calls operations that take arguments, and shrinks them."""

from __future__ import annotations

from collections import deque
from random import Random
from typing import Any

import pytest
from hypothesis import strategies as st
from twisted.internet import defer

from harness import CampaignConfig, Operation, Target, TargetError, run_campaign
from harness.model.menu import Menu
from harness.model.schedule import Call, Schedule, Submit
from harness.search.arguments import ArgumentDrawer, shrink_arguments
from harness.search.generate import STRATEGIES, Examples
from harness.search.strategies import codec
from harness.search.verdict import replay
from harness.store import failure_file

#: The size a pool is built with and, for the buggy one, the size whose ``resize`` resets it.
DEFAULT = 3


class ResizablePool:
    """At most ``limit`` jobs at once, FIFO; ``resize(n)`` changes the limit at run time (1 to 3)."""

    def __init__(self, clock: Any, limit: int = DEFAULT) -> None:
        self.clock = clock
        self.limit = self.free = limit
        self.waiting: deque[tuple[Any, defer.Deferred[Any]]] = deque()

    def submit(self, job: Any) -> defer.Deferred[Any]:
        caller: defer.Deferred[Any] = defer.Deferred()
        self.waiting.append((job, caller))
        self._pump()
        return caller

    def _pump(self) -> None:
        while self.free > 0 and self.waiting:
            job, caller = self.waiting.popleft()
            self.free -= 1
            defer.maybeDeferred(job).addBoth(self._done).chainDeferred(caller)

    def _done(self, result: Any) -> Any:
        self.free += 1
        self._pump()
        return result

    def resize(self, size: int) -> None:
        self.free += size - self.limit  # running jobs keep their slots; a smaller pool waits for them to end
        self.limit = size
        self._pump()


class ResettingPool(ResizablePool):
    """BUG: ``resize`` back to the default size "resets" the pool: every slot free, the running jobs forgotten."""

    def resize(self, size: int) -> None:
        if size == DEFAULT:
            self.limit = self.free = size
            self._pump()
        else:
            super().resize(size)


def _target(pool: type[ResizablePool]) -> Target:
    return Target(
        build=pool,
        limit=DEFAULT,
        order="fifo",
        cancellable=False,
        operations={"resize": Operation(lambda p, n: p.resize(n), args=(st.integers(1, DEFAULT),))},
        menu={"jumps": False, "job_kinds": ("succeed", "immediate", "value", "fail", "raise")},  # a hung job would starve a shrunk pool
    )


CORRECT = _target(ResizablePool)
BUGGY = _target(ResettingPool)


def _calls(schedules: list[Schedule]) -> list[Call]:
    return [op for s in schedules for op in s.ops if isinstance(op, Call)]


def test_the_byte_search_calls_operations_with_every_argument_value_and_is_seeded() -> None:
    menu = CORRECT.default_menu()
    assert codec(menu).arg_width > 0 and codec(Menu()).arg_width == 0  # other menus' records are as before
    assert codec(Menu(operations=(("flush", ()),))).arg_width == 0
    for strategy in STRATEGIES:
        first = [next(examples) for examples in [Examples(menu, 7, strategy)] for _ in range(300)]
        again = [next(examples) for examples in [Examples(menu, 7, strategy)] for _ in range(300)]
        assert first == again
        assert {call.args for call in _calls(first)} == {(1,), (2,), (3,)}, strategy


def test_zero_bytes_draw_the_simplest_arguments_and_any_strategy_works() -> None:
    drawer = ArgumentDrawer("tag", (st.integers(3, 9), st.text(max_size=3), st.lists(st.booleans(), max_size=2)))
    assert drawer.draw(bytes(8)) == (3, "", [])
    random = Random(1)
    drawn = [drawer.draw(random.randbytes(8)) for _ in range(300)]
    assert len(set(map(repr, drawn))) > 100 and all(args is not None and 3 <= args[0] <= 9 for args in drawn)
    assert drawer.draw(b"\x05\x01") == drawer.draw(b"\x05\x01")  # a pure function of the bytes


def test_bytes_a_strategy_refuses_leave_the_call_out_and_a_broken_strategy_is_named() -> None:
    menu = Menu(operations=(("never", (st.integers().filter(lambda n: False),)),), cancels=False)
    schedules = [codec(menu).decode_blob(Random(2).randbytes(200)) for _ in range(5)]
    assert _calls(schedules) == [] and any(s.ops for s in schedules)
    broken = Menu(operations=(("broken", (st.integers(5, 1),)),), job_kinds=("succeed",))
    width = codec(broken).width
    call = bytes([codec(broken).actions.index("call")]).ljust(width, b"\0")
    with pytest.raises(TargetError, match="operation 'broken': its argument strategies cannot draw"):
        codec(broken).decode_blob(bytes(5) + call)


def test_a_bug_that_needs_one_argument_value_is_found_shrunk_to_it_and_replays(tmp_path) -> None:
    config = CampaignConfig(seed=1, max_examples=5_000, report_dir=str(tmp_path), strategy="random")
    (finding,) = run_campaign(BUGGY, "tests.test_operation_arguments:BUGGY", config).findings
    assert finding.violation.invariant == "concurrency.limit" and finding.shrunk
    calls = [op for op in finding.record.schedule.ops if isinstance(op, Call)]
    assert calls and all(call.args == (DEFAULT,) for call in calls)  # nothing simpler than 3 resets the pool
    assert sum(isinstance(op, Submit) for op in finding.record.schedule.ops) <= DEFAULT + 1
    loaded = failure_file.load(finding.path)
    assert loaded.schedule == finding.record.schedule
    run, violations = replay(BUGGY, loaded, str(finding.path))
    assert violations[0].invariant == "concurrency.limit" and run.trace.digest() == finding.run.trace.digest()
    # The same seed finds the same failure at the same example.
    (again,) = run_campaign(BUGGY, "tests.test_operation_arguments:BUGGY", config).findings
    assert (again.examples_to_detect, again.record.schedule) == (finding.examples_to_detect, finding.record.schedule)


def test_the_correct_pool_passes_a_campaign_that_resizes_it(tmp_path) -> None:
    played: list[Schedule] = []
    config = CampaignConfig(seed=2, max_examples=1_500, report_dir=str(tmp_path))
    result = run_campaign(CORRECT, "tests.test_operation_arguments:CORRECT", config, on_run=lambda s, r: played.append(s))
    assert result.findings == [] and len({call.args for call in _calls(played)}) == DEFAULT


def test_shrinking_an_argument_stops_at_the_simplest_value_that_still_fails() -> None:
    menu = Menu(operations=(("set", (st.integers(0, 100), st.integers(0, 100))),))
    schedule = Schedule((Call(0, "set", (88, 54)),))

    def still_fails(candidate: Schedule) -> bool:
        (call,) = candidate.ops
        assert isinstance(call, Call) and 0 <= call.args[0] <= 100 and 0 <= call.args[1] <= 100
        return call.args[0] >= 37

    assert shrink_arguments(schedule, menu, still_fails).ops == (Call(0, "set", (37, 0)),)
    assert shrink_arguments(schedule, menu, lambda s: False) == schedule
