"""The ``harness`` executable: parse the arguments, run the command, turn every error into an exit code.

Every exit 2 is one line on stderr, whatever the arguments or the files
read; exit 3 (a bug in the harness) prints the traceback. The exit codes are
in ``harness.cli.exits``; the commands in ``harness.cli.fuzz`` and
``harness.cli.commands``; the grammar in ``harness.cli.parser``.
"""

from __future__ import annotations

import codecs
import io
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from harness.cli.exits import EXIT_BROKEN_PIPE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE
from harness.cli.parser import build_parser
from harness.errors import HarnessError
from harness.guard import supervise
from harness.guard.signals import end_startup, record_startup
from harness.model.trace import one_line


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``harness ARGV`` in this process and return its exit code (the tests' and ``console``'s entry)."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args))
    except HarnessError as exc:
        print(f"harness: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (harness list | head -2): stop quietly, as a command killed by SIGPIPE would.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception:
        print("harness: internal error (a bug in the harness, please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _open_closed_standard_streams() -> None:
    """Put /dev/null on each of file descriptors 0, 1 and 2 that the caller left closed (``harness fuzz
    >&-``, a service manager with no stdin) and give ``sys`` a stream on it.

    Python sets ``sys.stdout`` (or stdin, stderr) to None then, and the first flush or print of the
    command failed with a traceback, or silently before anything was saved when stderr was the closed
    one. Left closed, the descriptor would also be the next file opened (a failure file), which a worker
    writing "to stdout" would then fill.
    """
    for fd, name, mode in ((0, "stdin", os.O_RDONLY), (1, "stdout", os.O_WRONLY), (2, "stderr", os.O_WRONLY)):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        devnull = os.open(os.devnull, mode)
        if devnull != fd:
            os.dup2(devnull, fd)
            os.close(devnull)
        setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))


def _escape_unencodable(exc: UnicodeError) -> tuple[str | bytes, int]:
    """The ``harness`` error handler for the terminal: a surrogate-escaped byte (a path that was not in
    the locale's encoding) is written back as that byte, so a printed replay line still names the file;
    any other character the terminal's encoding lacks is written as ``\\xfc``."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    char = exc.object[exc.start]
    if 0xDC80 <= ord(char) <= 0xDCFF:
        return bytes([ord(char) - 0xDC00]), exc.start + 1
    return char.encode("ascii", "backslashreplace").decode("ascii"), exc.start + 1


def _printable_streams() -> None:
    """Make stdout and stderr print what the locale cannot encode instead of failing on it.

    Under a C or POSIX locale that Python does not coerce to UTF-8 (or ``PYTHONIOENCODING=ascii``), a
    subject's non-ASCII error message or a non-ASCII report path stopped ``fuzz`` with an internal error
    after the failure was found."""
    codecs.register_error("harness", _escape_unencodable)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors in ("strict", "surrogateescape"):
            stream.reconfigure(errors="harness")


def console(received: Sequence[int] = ()) -> None:
    """The ``harness`` executable: ``main`` with Twisted's own log kept off the terminal.

    Errors the subject logs (an "Unhandled error in Deferred" from a buggy
    subject, thousands of times in a campaign) are recorded in each run's
    trace; printed as well, they would drown the report.

    A stop signal during start-up (``received``: what the entry point,
    ``harness_console``, recorded while the harness was imported; then
    ``harness.guard.signals.record_startup``) becomes ``fuzz``'s stop
    request: the campaign runs no example and writes its summary. Any other
    command stops at once with one line, exit 128 + the signal.
    """
    argv = sys.argv[1:]
    record_startup(received)
    if argv[:1] != ["fuzz"]:
        early = end_startup()
        if early is not None:
            print("harness: interrupted", file=sys.stderr)
            sys.exit(128 + int(signal.Signals[early]))
    _open_closed_standard_streams()
    _printable_streams()
    from twisted.logger import globalLogBeginner

    globalLogBeginner.beginLoggingTo([], discardBuffer=True, redirectStandardIO=False)
    if argv[:1] in (["fuzz"], ["replay"]) and supervise.available():
        # The target runs in a child; this process exits 0 only if that child finished (harness.guard.supervise).
        sys.exit(supervise.supervise(lambda: main(argv), f"'harness {argv[0]}'"))
    sys.exit(main(argv))


if __name__ == "__main__":
    console()
