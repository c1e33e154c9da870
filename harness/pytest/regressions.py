"""Regression files as tests: each saved failure file is its own item, so a fixed bug stays fixed.

An item replays the file's schedule against the target the file names. If
the recorded invariant still breaks, the item fails with the timeline; if it
holds, the item passes. A file that cannot be read becomes a failing item
with a one-line reason, never a crash of the whole collection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.search import corpus
from harness.store import failure_file
from harness.errors import HarnessError
from harness.store.failure_file import FailureRecord
from harness.model.target import load_target
from harness.model.trace import one_line
from harness.search.verdict import UNFINISHED, divergence
from harness.store.judged import check_judged
from harness.pytest.report import (
    InvariantViolated,
    display_path,
    failure_message,
    rerun_line,
    rerun_nodeid,
)

#: Marker put on every regression item, so ``-m "not harness_regression"`` leaves them out.
MARKER = "harness_regression"


def item_name(invariant: str) -> str:
    """A pytest item name for an invariant read from a file: printable, one line, no ``::`` (which splits node ids)."""
    return one_line(invariant).replace("::", ":\\x3a") or "unnamed"


class RegressionError(Exception):
    """A regression file that cannot be replayed: unreadable, or naming a target that does not load."""


def regression_files(directory: Path) -> list[Path]:
    """The failure files under ``directory``, in a stable order (every xdist worker must agree)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*.json") if p.is_file() and not p.name.startswith("."))


class RegressionFile(pytest.File):
    """A saved failure file; it yields one item, named after the invariant it broke."""

    def collect(self) -> Iterator[RegressionItem]:
        try:
            record = failure_file.load(self.path)
        except HarnessError as exc:
            yield RegressionItem.from_parent(self, name="load", record=None, problem=str(exc))
            return
        yield RegressionItem.from_parent(self, name=item_name(record.invariant), record=record, problem="")


class RegressionItem(pytest.Item):
    """Replays one failure file: fails while its invariant still breaks, passes once it holds."""

    def __init__(self, *, record: FailureRecord | None, problem: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.record = record
        self.problem = problem
        self.add_marker(MARKER)

    def runtest(self) -> None:
        if self.record is None:
            raise RegressionError(self.problem)
        record = self.record
        try:
            target = load_target(record.target)
            check_judged(record, target, "the file", also=UNFINISHED)
            replayed = corpus.replay(target, self.path, record)
        except HarnessError as exc:
            shown = display_path(self.path, self.config.invocation_params.dir)
            raise RegressionError(f"regression file {shown}: {exc}") from None
        if replayed.violation is None:
            return
        run, violation = replayed.run, replayed.violation
        if replayed.exact:
            how = "reproduced exactly"
        else:
            where = divergence([event.line() for event in record.trace], run.trace.lines())
            how = f"reproduced, but the trace diverged from the saved one at {where} (saved, then now)"
        again = FailureRecord.of_run(record.target, run, violation, record.seed)
        text = failure_message(
            again,
            path=self.path,
            start=self.config.invocation_params.dir,
            rerun=rerun_line(rerun_nodeid(self.config, self.nodeid)),
            schedule_label="",
            note=f"{how}: the bug this regression file records is back",
            path_label="regression file",  # read and replayed, not written: never "saved:"
        )
        raise InvariantViolated(text, again, self.path)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (RegressionError, InvariantViolated)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        what = self.record.target if self.record is not None else "unreadable file"
        return self.path, None, f"harness regression {self.path.name} ({what})"
