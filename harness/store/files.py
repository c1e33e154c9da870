"""Reading and writing the harness's files safely: whole files out, bounded regular files in.

Every file the harness writes (failure files, the regression corpus, the
JSON and JUnit reports, the HTML page) goes through ``write_atomic``: the
text is written to a temporary file in the same directory, flushed to disk,
and renamed over the destination. A reader sees the old file or the new
one, never a mix; two writers of the same file leave one whole file; a
crash leaves no partial file (at worst a hidden ``.NAME.*.tmp`` that nothing
reads).

Only a regular file (or a new path) is ever replaced by the rename. A path
that is a symbolic link is followed: the file it points to is written, the
link stays. A character device or a FIFO (``/dev/stdout``, ``/dev/null``, a
pipe a CI step reads) is written directly, as a stream; a FIFO that no
process reads is refused rather than waited on. Anything else (a
directory, a socket, a block device) is refused with one line.

Every file the harness reads from a user (summaries, failure files) goes
through ``read_bounded``: it must be a regular file of at most a given size,
opened without blocking, so that a FIFO, ``/dev/zero`` or a huge file is a
one-line error and not a hang or a memory exhaustion.
"""

from __future__ import annotations

import errno
import gc
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import HarnessError, ReportError

#: What becomes of text UTF-8 cannot encode: a path that was not UTF-8 (decoded with surrogate escapes, as
#: under a C locale) is written as ``\udcc3`` rather than failing the report after the campaign.
UNENCODABLE = "backslashreplace"

#: Permissions of a new file before the umask, as ``open`` gives (``mkstemp`` alone makes it owner-only).
FILE_MODE = 0o666


def _umask() -> int:
    """The process's umask: from /proc (Linux), else by setting it and putting it back."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(target: Path) -> int:
    """The permissions a rewrite of ``target`` gets: those it has, or for a new file the ones ``open``
    would give (``FILE_MODE`` less the umask). A fixed 0o644 made files readable by all under ``umask
    077`` and widened a file the user had made private."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return FILE_MODE & ~_umask()


def _cannot(target: object, why: str) -> ReportError:
    return ReportError(f"cannot write {str(target)!r}: {why}; choose another path")


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` safely (see the module docstring); create parent directories.

    Raises ``ReportError`` (one line) when the file cannot be written.
    """
    target = Path(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None  # a new path, or a link to one
    except (OSError, ValueError) as exc:
        raise _cannot(target, getattr(exc, "strerror", None) or str(exc)) from None
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        _write_stream(target, text, fifo=stat.S_ISFIFO(mode))
        return target
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise _cannot(target, f"it is {kind}")
    # A link is followed: the file it names is replaced, the link itself stays.
    real = Path(os.path.realpath(target)) if target.is_symlink() else target
    _replace(real, text)
    return target


def _write_stream(target: Path, text: str, fifo: bool) -> None:
    """Write to a device or a FIFO as a stream, never replacing it."""
    flags = os.O_WRONLY | (os.O_NONBLOCK if fifo else 0)
    try:
        fd = os.open(target, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise _cannot(target, "it is a FIFO that no process reads") from None
        raise _cannot(target, exc.strerror or str(exc)) from None
    try:
        if fifo:
            os.set_blocking(fd, True)
        with os.fdopen(fd, "w", encoding="utf-8", errors=UNENCODABLE, closefd=True) as handle:
            handle.write(text)
    except OSError as exc:
        raise _cannot(target, exc.strerror or str(exc)) from None


def _replace(target: Path, text: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = _mode_for(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _cannot(target, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors=UNENCODABLE) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _cannot(target, exc.strerror or str(exc)) from None
        raise


def writable_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``write_atomic(path, ...)`` would fail, checked before a long campaign, or None."""
    target = Path(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or str(exc)
    if mode is not None:
        if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
            return None if os.access(target, os.W_OK) else "it is not writable"
        if stat.S_ISDIR(mode):
            return "it is a directory; give a file name such as reports/summary.json"
        if not stat.S_ISREG(mode):
            return "it is not a regular file, a device or a FIFO"
    parent = Path(os.path.realpath(target)).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create its directory ({exc.strerror})"
    if not os.access(parent, os.W_OK):
        return "its directory is not writable"
    return None


def directory_problem(path: str | os.PathLike[str]) -> str | None:
    """Why files cannot be written into the directory ``path`` (created when missing), or None.

    It is tried for real (a temporary file is made and removed): permission
    bits say nothing of a read-only mount, or to root.
    """
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".harness-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or str(exc)
    return None


def read_bounded(path: str | os.PathLike[str], max_bytes: int, what: str, error: type[HarnessError]) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``max_bytes`` long.

    Anything else (missing, a directory, a FIFO, a device, too large, not
    UTF-8) raises ``error`` with one line naming ``what`` and the path. The
    file is opened without blocking, so a FIFO cannot hang the caller.
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error(f"{what} {name!r} does not exist") from None
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {what} {name!r}: {error_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {name!r} is not a regular file")
        if info.st_size > max_bytes:
            raise error(
                f"{what} {name!r} is {info.st_size} bytes, more than the {max_bytes} a {what} can be; "
                "it is not one the harness wrote"
            )
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:  # chunks joined once: a file read in many small reads costs no more
            chunk = os.read(fd, min(max_bytes + 1 - size, max(info.st_size - size, 0) + 65536))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise error(f"{what} {name!r} grew past the {max_bytes} bytes the harness reads")
    except OSError as exc:
        raise error(f"cannot read {what} {name!r}: {error_reason(exc)}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"cannot read {what} {name!r}: not UTF-8 ({error_reason(exc)})") from None


@contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic garbage collection off while the block runs: for parsing a large file into acyclic data.

    ``json.loads`` of a failure file of a million trace events makes millions
    of lists, and each few hundred of them started a collection that scanned
    every one made so far: about 40% of the time ``harness show`` took. Parsed
    JSON holds no reference cycle, so there is nothing for those collections
    to free; collection is back on (if it was on) when the block ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def error_reason(exc: BaseException) -> str:
    """An exception as a short one-line reason, for error messages."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split())[:200]


def json_problem(exc: BaseException) -> str:
    """Why ``json.loads`` refused a text and what to do: ``(reason); fix``, the tail of a one-line error.

    ``json.loads`` raises ``RecursionError`` for data nested too deeply and
    ``ValueError`` for anything else, whose text alone misleads: an integer
    too long to parse comes with advice to call ``sys.set_int_max_str_digits``,
    and a byte order mark is no truncation.
    """
    text = error_reason(exc)
    if isinstance(exc, RecursionError):
        return "(nested too deeply); it is not a file the harness wrote"
    if "integer string conversion" in text:
        return "(an integer of thousands of digits); it is not a file the harness wrote"
    if text.endswith("is not JSON"):  # NaN or Infinity, refused by the strict parser
        return f"({text}); it is not a file the harness wrote"
    if "BOM" in text:
        return "(it starts with a byte order mark); save it as UTF-8 without one"
    return f"({text}); it may be truncated"
