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
parent once, and the parent forwards each one to the child: the first still
asks the campaign to stop gracefully, a second one stops it at once. The
child also gets SIGTERM if the parent dies (Linux), so it never outlives it.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

#: Signals the parent forwards to the child.
FORWARDED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))

#: Exit code when the child ended without finishing (a target error, as the CLI counts them).
EXIT_UNFINISHED = 2

_DONE = b"D"

#: Seconds the parent waits for a child that has reported to end, before killing it.
GRACE_S = 10.0


def available() -> bool:
    """Whether commands can be supervised here (a POSIX ``fork``)."""
    return hasattr(os, "fork") and hasattr(os, "waitpid")


def supervise(command: Callable[[], int], what: str = "the campaign") -> int:
    """Run ``command`` in a forked child; return its exit code if it finished, else a non-zero one.

    Call it in the parent before anything else runs target code. In the
    child, ``command`` runs and the process then exits; ``supervise`` never
    returns there.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the command, report, exit
        os.close(read_end)
        _detach()
        code = 3
        try:
            code = command()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            _flush_streams()
            os.write(write_end, _DONE + bytes([code & 0xFF]))
            os.close(write_end)
        _exit_past_stray_threads(code)
        sys.exit(code)
    os.close(write_end)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first, or exited already
    forwarded: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: _forward(pid, signum, forwarded)) for signum in FORWARDED
    }
    try:
        report = _read_report(read_end)
        _, status = _wait(pid, GRACE_S if len(report) >= 2 else None)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(read_end)
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


def _detach() -> None:
    """In the child: a process group of its own, and SIGTERM when the parent dies (Linux)."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    for signum in FORWARDED:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


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


def _forward(pid: int, signum: int, forwarded: list[int]) -> None:
    forwarded.append(signum)
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _read_report(fd: int) -> bytes:
    """The child's report (done byte and code), or what came before the pipe closed.

    Stops at the report: a process the target started may hold the pipe open.
    """
    data = b""
    while len(data) < 2:
        chunk = os.read(fd, 2 - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def _wait(pid: int, grace: float | None = None) -> tuple[int, int]:
    """Wait for the child; with ``grace``, kill its process group if it has not ended after that many seconds."""
    deadline = None if grace is None else time.monotonic() + grace
    while True:
        try:
            if deadline is None:
                return os.waitpid(pid, 0)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return done, status
            if time.monotonic() > deadline:
                print(
                    f"harness: note: the process that ran the command reported but had not ended after {grace:g}s "
                    "(a thread or process the target left?); killed it",
                    file=sys.stderr,
                    flush=True,
                )
                _kill_group(pid)
                deadline = None
                continue
            time.sleep(0.05)
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
