"""The process that reports a campaign's exit code is not the one the target can kill.

A target runs inside the harness's process, and some ways of leaving it are
beyond any guard: ``os._exit(0)`` from a ``__del__`` or another thread, a C
library's ``exit()``, ``exec``. The process then exits with whatever code the
target chose, without a summary, and CI sees that code: 0, a pass.

So ``harness fuzz`` and ``harness replay`` run in a forked child, and the
parent only waits. The child reports its exit code over a pipe once the
command has finished and written everything it was asked to; the parent
exits with that code. A child that ends without reporting did not finish:
the parent says so in one line and exits 2 (or 128 + the signal that killed
it), never 0.

Signals: the child runs in its own process group, so a signal sent to the
group the user or CI controls (Ctrl-C, ``timeout``, a job cancel) reaches the
parent once, and the parent forwards each one to the child (SIGHUP as
SIGTERM: a stop): the first still asks the campaign to stop gracefully, a
second one stops it at once. A stop the campaign does not honour within
``harness.guard.signals.STOP_GRACE_S`` (a run that hangs with no watchdog)
is repeated by the child itself; a child that has still not finished
``KILL_GRACE_S`` after the first signal the parent forwarded (a target that
ignores the signals too) is killed with its process group, and the parent
says so and exits 128 + that signal.

Reports: the child writes its failure files as it finds them, then, once the
campaign is over, its summary (printed, ``--json``, ``--junit``: small, each
fsync'd and renamed into place) and only then the large HTML report. Before
the HTML report it tells the parent (``summary_written``), so a child killed
while writing it is said to have lost that report alone.

The child never outlives the parent for long: on Linux it gets SIGTERM when
the parent dies (``PR_SET_PDEATHSIG``), a stop like the one the parent would
forward; everywhere, a thread checks once a ``PARENT_POLL_S`` whether the
parent is still there, sends that SIGTERM itself where the kernel does not,
and ``KILL_GRACE_S`` later kills the child's process group (its workers too)
if it is still running.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

from harness.guard.signals import SIGNALS, grace_s, hand_over_startup, recording_startup, set_handler, startup_grace

#: Signals the parent forwards to the child.
FORWARDED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))
#: What the parent sends the child for a signal it forwards, when not that signal: a hangup is a stop.
_SENT = {int(signal.SIGHUP): int(signal.SIGTERM)} if hasattr(signal, "SIGHUP") else {}

#: Seconds after the first signal it forwarded that the parent kills a child that has not finished.
KILL_GRACE_S = grace_s(15.0)
#: Seconds between the child's checks that its parent is still there.
PARENT_POLL_S = 1.0

#: The functions as imported: the escape guard patches the public names for its runs.
_set_handler = set_handler
_sleep = time.sleep
_monotonic = time.monotonic

#: Exit code when the child ended without finishing (a target error, as the CLI counts them).
EXIT_UNFINISHED = 2

_DONE = b"D"
#: Sent by the child before its large reports: the failure files and the summary are written.
_SAVED = b"S"

#: In a supervised child, the pipe to the parent (None elsewhere).
_report_fd: int | None = None

#: Seconds the parent waits for a child that has reported to end, before killing it.
GRACE_S = 10.0


def available() -> bool:
    """Whether commands can be supervised here (a POSIX ``fork``)."""
    return hasattr(os, "fork") and hasattr(os, "waitpid")


def summary_written() -> None:
    """Tell the parent that the failure files and the summary are written and only large reports (HTML)
    come next: a child killed from now on loses at most those. Does nothing outside a supervised child."""
    if _report_fd is None:
        return
    try:
        os.write(_report_fd, _SAVED)
    except OSError:
        pass  # the parent is gone: no one to tell


def supervise(command: Callable[[], int], what: str = "the campaign") -> int:
    """Run ``command`` in a forked child; return its exit code if it finished, else a non-zero one.

    Call it in the parent before anything else runs target code. In the
    child, ``command`` runs and the process then exits; ``supervise`` never
    returns there.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: run the command, report, exit
        os.close(read_end)
        _detach(parent)
        global _report_fd
        _report_fd = write_end
        code = 3
        try:
            code = command()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            _flush_streams()
            _report_fd = None
            try:
                os.write(write_end, _DONE + bytes([code & 0xFF]))
                os.close(write_end)
            except OSError:
                pass  # the parent is gone: no one to report to
        _exit_past_stray_threads(code)
        sys.exit(code)
    os.close(write_end)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first, or exited already
    stop = _Stop(pid)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous = {signum: _set_handler(signum, stop.forward) for signum in FORWARDED}
    hand_over_startup()  # the child has the start-up record (forked with it) and acts on it
    previous_wakeup = signal.set_wakeup_fd(wake_write)  # a signal wakes the wait (its deadline may have begun)
    try:
        report = _read_report(read_end, wake_read, stop)
        if report is None:
            return stop.kill(what)
        ended = _wait(pid, GRACE_S if len(report) >= 2 else None, stop)
        if ended is None:
            return stop.kill(what)
        status = ended[1]
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        for signum, handler in previous.items():
            _set_handler(signum, handler)
        for fd in (read_end, wake_read, wake_write):
            os.close(fd)
    forwarded = stop.sent
    if len(report) >= 2 and report[:1] == _DONE:
        return report[1]
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) in forwarded:
        signum = os.WTERMSIG(status)
        print(f"harness: interrupted by {_signal_name(signum)}", file=sys.stderr, flush=True)
        return 128 + signum
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        how, code = f"was killed by {_signal_name(signum)}", 128 + signum
        if signum == getattr(signal, "SIGALRM", None):
            how += (
                " (a real alarm fired: signal.alarm or setitimer, refused inside a run, was called outside one, "
                "such as when the target's module was imported; schedule with the clock given to build(clock))"
            )
    else:
        how, code = f"exited with code {os.WEXITSTATUS(status)}", EXIT_UNFINISHED
    print(
        f"harness: error: the process running {what} {how} before it finished, so nothing it reported "
        "can be trusted and the summary may be missing: the target probably ended the process (os._exit, "
        "exec, a C library's exit() or a signal); a subject must never exit the process",
        file=sys.stderr,
        flush=True,
    )
    return code if code != 0 else EXIT_UNFINISHED


class _Stop:
    """The parent's side of a stop: the signals it forwarded, and when it gives up waiting for the child."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        #: The signals sent to the child, in order.
        self.sent: list[int] = []
        #: The first signal the parent received, and the monotonic time by which the child must have finished.
        self.first: int | None = None
        self.deadline: float | None = None
        #: Whether the child said its failure files and summary are written (``summary_written``).
        self.saved = False

    def forward(self, signum: int, frame: object) -> None:
        """The parent's handler of ``FORWARDED``: pass the signal on (a hangup as SIGTERM); the first starts the clock."""
        sent = _SENT.get(signum, signum)
        self.sent.append(sent)
        if self.first is None:
            self.first, self.deadline = signum, _monotonic() + KILL_GRACE_S
        try:
            os.kill(self.pid, sent)
        except ProcessLookupError:
            pass

    def remaining(self) -> float | None:
        """Seconds left before the child is killed (None: no stop was forwarded), never below 0."""
        return None if self.deadline is None else max(self.deadline - _monotonic(), 0.0)

    def kill(self, what: str) -> int:
        """Kill the child's process group, which did not stop in time; say so, and return 128 + the first signal."""
        _kill_group(self.pid)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        signum = self.first or int(signal.SIGTERM)
        if self.saved:
            print(
                f"harness: error: the process running {what} had not stopped {KILL_GRACE_S:g}s after "
                f"{_signal_name(signum)}: it was writing the HTML report; killed it: the failures it saved and "
                "its summary (printed, --json, --junit) are complete, the HTML report is missing",
                file=sys.stderr,
                flush=True,
            )
            return 128 + signum
        print(
            f"harness: error: the process running {what} had not stopped {KILL_GRACE_S:g}s after "
            f"{_signal_name(signum)} (the target ignores the stop, or hangs where nothing can interrupt it); "
            "killed it: the failures it saved are in their files, its summary and reports are missing",
            file=sys.stderr,
            flush=True,
        )
        return 128 + signum


def _detach(parent: int) -> None:
    """In the child: a process group of its own, and a stop, then death, when the parent dies."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    told = False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        told = libc.prctl(1, int(signal.SIGTERM)) == 0  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    recording = recording_startup()  # the command's start-up: SIGINT and SIGTERM stay recorded (harness.guard.signals)
    for signum in FORWARDED:
        if recording and signum in SIGNALS:
            continue
        _set_handler(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    if recording:
        startup_grace()  # a stop recorded before the fork: its repeat, if the campaign never begins
    threading.Thread(target=_watch_parent, args=(parent, not told), name="harness-parent-watch", daemon=True).start()


def _watch_parent(parent: int, stop: bool) -> None:
    """In a thread of the child: once ``parent`` is gone, send SIGTERM (if ``stop``: the kernel does not), then
    ``KILL_GRACE_S`` later kill the child's process group if it is still running (a target that ignores it)."""
    while os.getppid() == parent:
        _sleep(PARENT_POLL_S)
    if stop:
        os.kill(os.getpid(), signal.SIGTERM)
    _sleep(KILL_GRACE_S)
    print(
        f"harness: error: the harness's parent process died and this one had not stopped {KILL_GRACE_S:g}s later; "
        "killing it",
        file=sys.stderr,
        flush=True,
    )
    try:
        os.killpg(0, signal.SIGKILL)
    except OSError:
        os.kill(os.getpid(), signal.SIGKILL)


def _exit_past_stray_threads(code: int) -> None:
    """In the child, once reported: leave now if the target left non-daemon threads, which exit would wait for."""
    stray = [
        thread for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon and thread.is_alive()
    ]
    if not stray:
        return
    names = ", ".join(sorted({thread.name for thread in stray}))
    print(
        f"harness: note: the target left {len(stray)} thread(s) running ({names}); exiting without waiting for them",
        file=sys.stderr,
    )
    try:
        run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's; without it, none run
        if run_exit_handlers is not None:
            run_exit_handlers()
    finally:
        _flush_streams()
        os._exit(code)


def _flush_streams() -> None:
    """Flush stdout and stderr, whatever state the target left them in."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _read_report(fd: int, wake: int, stop: _Stop) -> bytes | None:
    """The child's report (done byte and code), or what came before the pipe closed; None if ``stop``'s
    deadline passed first; a ``_SAVED`` byte before it sets ``stop.saved``. A signal wakes the wait
    (``wake``, the wakeup fd's pipe), which then has a deadline.

    Stops at the report: a process the target started may hold the pipe open.
    """
    data = b""
    while True:
        while data[:1] == _SAVED:  # the child's word that only large reports are left (before its report)
            stop.saved, data = True, data[1:]
        if len(data) >= 2:
            break
        ready, _, _ = select.select([fd, wake], [], [], stop.remaining())
        if wake in ready:
            os.read(wake, 512)
        if fd not in ready:
            if stop.remaining() == 0.0:
                return None
            continue
        chunk = os.read(fd, 2 - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def _wait(pid: int, grace: float | None = None, stop: _Stop | None = None) -> tuple[int, int] | None:
    """Wait for the child and return its pid and status; with ``grace``, kill its process group if it has not ended after
    that many seconds; None once ``stop``'s deadline passed (the caller kills it)."""
    deadline = None if grace is None else _monotonic() + grace
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return done, status
            if stop is not None and stop.remaining() == 0.0:
                return None
            if deadline is not None and _monotonic() > deadline:
                print(
                    f"harness: note: the process that ran the command reported but had not ended after {grace:g}s "
                    "(a thread or process the target left?); killed it",
                    file=sys.stderr,
                    flush=True,
                )
                _kill_group(pid)
                deadline = None
                continue
            _sleep(0.05)
        except ChildProcessError:
            return pid, 0
        except InterruptedError:
            continue


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
