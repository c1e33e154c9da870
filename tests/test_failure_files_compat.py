"""Failure files written by an earlier version load and replay byte-identically.

``fixtures/failure_files/v60dcd27/`` holds the failure files ``harness fuzz`` (seed 1) wrote at commit
60dcd27, before the seventh round (its direct event appends, hedging, ``capacity``,
``stop_cancels_work``, ``retries_after_answer``, the shared-Deferred note), for bundled buggy
scenarios unchanged since: operations, periodic loops and their reported end, clock jumps, wall
clocks, stepped, jittered, shuffled and PCT clocks, retries, keys, the diagnosis, a user invariant that
holds. (One that fails was left out: under pytest its assert is rewritten, as pytest rewrites every module
of a plugin's distribution installed from a wheel, scenarios too, and its message in the trace said more
than under the CLI. The trace now records the plain statement's message under pytest too:
``harness.run.rewritten``, ``tests/test_failure_files_cross.py``.)
Each must load, break the invariant it records, and replay to the trace it saved (its hash): a
change of the harness that changes what a run records breaks this, and is then deliberate (the
files' messages may read differently: only the trace and the invariant are held).

Round 8 replayed the files of all 65 buggy scenarios of 60dcd27 this way: every one reproduced exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import load_target
from harness.cli.main import main
from harness.search.verdict import replay
from harness.store import failure_file

FILES = sorted((Path(__file__).resolve().parent / "fixtures" / "failure_files" / "v60dcd27").glob("*.json"))


def test_the_earlier_files_are_there() -> None:
    assert len(FILES) == 16


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_a_file_of_an_earlier_version_replays_to_the_trace_it_saved(path: Path) -> None:
    record = failure_file.load(path)
    run, violations = replay(load_target(record.target), record, str(path))
    assert record.invariant in [v.invariant for v in violations]
    assert run.trace.lines() == [event.line() for event in record.trace]
    assert run.trace.digest() == record.trace_hash


def test_the_replay_command_says_an_earlier_file_reproduced_exactly(capsys) -> None:
    path = next(path for path in FILES if path.stem == "cancel_ticket_pool")
    assert main(["replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL cancellation.harmless: cancelling job 0 raised ValueError" in out
    assert "reproduced exactly" in out
