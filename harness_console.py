"""The ``harness`` command's entry point: stop signals are recorded before anything heavy is imported.

Importing the harness (Twisted, Hypothesis) takes a second or more, three on a loaded machine. A Ctrl-C in
that window printed a 25-line ``KeyboardInterrupt`` traceback from an import, and a SIGTERM (a CI cancel,
``timeout``) ended the process with nothing said; neither wrote the ``--json``/``--junit`` summary (review 8,
finding 6). This module imports nothing but the standard library: it records SIGINT and SIGTERM, then
imports the command, which takes the record over (``harness.guard.signals.record_startup``): ``fuzz`` then
stops before its first example and writes its summary, any other command stops with one line. A second
signal during the import stops at once, also with one line.

It is a top-level module because any module of the ``harness`` package imports the whole package first.
``python -m harness`` and ``harness.cli.main:console`` (a script installed before this entry point) still
work; their window before the record is the import.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

#: The stop signals received while the command was imported (the first is kept).
_received: list[int] = []


def _record(signum: int, frame: FrameType | None) -> None:
    if _received:
        raise KeyboardInterrupt
    _received.append(signum)


def console() -> None:
    """Record SIGINT and SIGTERM, import the command, and run it (``harness.cli.main.console``)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _record)
    try:
        from harness.cli.main import console as run
    except KeyboardInterrupt:  # a second signal while importing: stop at once
        print("harness: interrupted", file=sys.stderr)
        sys.exit(128 + (_received[0] if _received else int(signal.SIGINT)))
    run(_received)


if __name__ == "__main__":
    console()
