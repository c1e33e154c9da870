"""The regression corpus: a directory of failure files replayed before every campaign.

It works like a regression test suite. Each file is an ordinary failure file
(the format ``harness replay`` reads, so the pytest plugin can collect the
same directory), saved when a bug was found; replaying them first on every
run keeps a fixed bug fixed. Only ``*.json`` files directly in the directory
count, and only those whose target is the campaign's; the rest are ignored.
A corrupt file stops the campaign instead of being skipped, because a
silently skipped regression is a regression let through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.store import failure_file
from harness.errors import FailureFileError, UsageError
from harness.store.failure_file import FailureRecord
from harness.invariants import Violation
from harness.run.runner import Run
from harness.model.target import Target
from harness.search.verdict import UNFINISHED
from harness.search.verdict import replay as replay_record
from harness.guard.watchdog import DEFAULT_TIMEOUT_S

#: Where the corpus lives unless configured: beside the user's code, kept in git.
DEFAULT_DIRECTORY = "harness-regressions"


@dataclass(frozen=True)
class Replay:
    """One corpus file played again: ``violation`` is set while its invariant still breaks.

    ``path`` is None for a failure replayed from its record alone (one a worker could not save).
    """

    path: Path | None
    record: FailureRecord
    run: Run
    violation: Violation | None

    @property
    def fails(self) -> bool:
        return self.violation is not None

    @property
    def status(self) -> str:
        """``"fails"`` while the recorded invariant still breaks, ``"fixed"`` once it holds."""
        return "fails" if self.fails else "fixed"

    @property
    def exact(self) -> bool:
        """Whether the replay produced exactly the saved trace."""
        return self.run.trace.digest() == self.record.trace_hash


def entries(directory: str | os.PathLike[str], target_spec: str) -> list[tuple[Path, FailureRecord]]:
    """The corpus files for ``target_spec``, in name order; a missing directory is an empty corpus.

    Every file is loaded and validated, whatever its target, so that a
    corrupt file is reported before anything runs.
    """
    folder = Path(directory)
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise UsageError(
            f"regression corpus {str(folder)!r} is not a directory; "
            "pass --regressions DIR naming a directory, or --no-regressions"
        )
    found = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            record = failure_file.load(path)
        except FailureFileError as exc:
            raise FailureFileError(f"regression corpus: {exc}; fix or delete that file") from None
        if record.target == target_spec:
            found.append((path, record))
    return found


def replay(target: Target, path: Path | None, record: FailureRecord, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> Replay:
    """Run a corpus file's schedule against ``target`` and see whether its invariant still breaks.

    A run that hangs or livelocks fails, whatever invariant the file records:
    it is not fixed.
    """
    run, violations = replay_record(target, record, f"regression corpus file {str(path)!r}", timeout_s)
    same = [v for v in violations if v.invariant == record.invariant or v.invariant in UNFINISHED]
    return Replay(path=path, record=record, run=run, violation=same[0] if same else None)


def add(record: FailureRecord, directory: str | os.PathLike[str]) -> Path:
    """Save ``record`` into the corpus (atomically; the same failure always gets the same name)."""
    return failure_file.save(record, directory)
