"""``benchmarks/per_instruction.py`` runs each block once inside its own C trampoline (callgrind counts the
trampoline's inclusive instructions as the block's), and prints a time for each block."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import per_instruction  # noqa: E402


def test_each_trampoline_runs_its_block_once() -> None:
    for trampoline in (
        per_instruction._in_starmap,
        per_instruction._in_reduce,
        per_instruction._in_methodcaller,
        per_instruction._in_calliter,
    ):
        calls: list[int] = []
        trampoline(lambda: calls.append(1))
        assert calls == [1], trampoline.__name__


def test_every_block_is_timed(capsys) -> None:
    found = per_instruction.blocks(3, 1)
    assert set(found) == set(per_instruction.TRAMPOLINES)
    assert all(len(times) == 1 and times[0] > 0 for times in found.values())
    assert per_instruction.main(["--schedules", "2", "--repeats", "1"]) == 0
    assert capsys.readouterr().out.count(" us an example") == 4
