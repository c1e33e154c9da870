"""What a failing harness test says: the invariant, the minimal timeline, and how to get it back.

Every failure the plugin reports (a fuzz test, a hand-written property, a
regression file that breaks again) reads the same way, as the ``harness``
command prints it: ``FAIL <invariant>: <message>``, the schedule and trace
with the violating events marked, where the failure file is, the exact
``harness replay`` command, and the pytest line that reruns just this test.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.store.failure_file import FailureRecord
from harness.output.timeline import CONTEXT, render_schedule, render_trace


class InvariantViolated(AssertionError):
    """A harness test failed because the subject broke an invariant; the message is the whole report.

    The plugin prints the message as the failure, without a traceback into
    the harness: the timeline is the useful part, not the harness's frames.
    """

    def __init__(self, message: str, record: FailureRecord | None = None, path: Path | None = None) -> None:
        super().__init__(message)
        self.record = record
        self.path = path


def display_path(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` when it lies below it (shorter to read and paste), else absolute."""
    try:
        return str(path.relative_to(start))
    except ValueError:
        return str(path)


def quote_nodeid(nodeid: str) -> str:
    """A node id as one shell word, always quoted so that ``[`` and ``::`` read the same in any shell."""
    return "'" + nodeid.replace("'", "'\"'\"'") + "'"


def rerun_nodeid(config: pytest.Config, nodeid: str) -> str:
    """The node id as typed from the invocation directory (node ids are relative to the rootdir)."""
    if config.invocation_params.dir == config.rootpath:
        return nodeid
    file_part, sep, rest = nodeid.partition("::")
    path = os.path.relpath(Path(config.rootpath) / file_part, config.invocation_params.dir)
    return path + sep + rest


def rerun_line(nodeid: str, args: Sequence[str] = ()) -> str:
    """The pytest command that runs just this test again with the given options."""
    return " ".join(["pytest", quote_nodeid(nodeid), *args])


def replay_line(path: Path, start: Path) -> str:
    return f"harness replay {shlex.quote(display_path(path, start))}"


def failure_message(
    record: FailureRecord,
    *,
    path: Path | None,
    start: Path,
    rerun: str | None,
    schedule_label: str = "minimal ",
    note: str = "",
    not_saved: str = "",
    path_label: str = "saved",
) -> str:
    """The full text of a failure, as ``harness fuzz`` prints it plus the pytest rerun line.

    ``path_label`` names the file at ``path``: ``saved`` for one just written (a fuzzed failure), else
    what it is (``regression file``, read and replayed, not written), so the text never says a file
    it only read was saved; the CLI prints no ``saved:`` line for a regression either."""
    lines = [f"FAIL {record.invariant}: {record.message}"]
    if note:
        lines.append(note)
    lines += [
        "",
        schedule_label + render_schedule(record.schedule),
        "",
        "trace (>> marks the events that break the invariant):",
        render_trace(
            record.trace,
            record.marked,
            around=CONTEXT,
            hint=f"the full trace: harness show {shlex.quote(display_path(path, start))}" if path is not None
            else "the full trace is in the run's trace",
        ),
        "",
    ]
    if path is not None:
        lines.append(f"{path_label}: {display_path(path, start)}")
        lines.append(f"replay: {replay_line(path, start)}")
    elif not_saved:
        lines.append(f"not saved: {not_saved}")
    if rerun:
        lines.append(f"rerun: {rerun}")
    return "\n".join(lines)
