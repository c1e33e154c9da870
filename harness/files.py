"""Writing files so that a reader (a CI step, a killed job, another campaign) never sees half of one.

Every file the harness writes (failure files, the regression corpus, the
JSON and JUnit reports) goes through ``write_atomic``: the text is written to
a temporary file in the same directory, flushed to disk, and renamed over
the destination. A reader sees the old file or the new one, never a mix;
two writers of the same file leave one whole file; a crash leaves no partial
file (at worst a hidden ``.NAME.*.tmp`` that nothing reads).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ReportError

#: Permissions of written files (``mkstemp`` alone would make them private to the owner).
FILE_MODE = 0o644


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename; create parent directories.

    Raises ``ReportError`` (one line) when the file cannot be written.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ReportError(f"cannot write {str(target)!r}: {exc.strerror or exc}; choose another directory") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), FILE_MODE)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ReportError(f"cannot write {str(target)!r}: {exc.strerror or exc}; choose another directory") from None
        raise
    return target
