"""The grace repeat behind both stop paths (start-up record, ``StopSignals``), in process and without its 5 s wait."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from harness.guard.signals import _repeat_unless_taken_up

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")


def _repeated(taken_up: bool) -> list[int]:
    """Run the repeat with a wait that returns at once; the signals the main thread got within a second."""
    got: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    try:
        _repeat_unless_taken_up(signal.SIGUSR1, lambda: taken_up, lambda: "what it waits on", "test-grace")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not got and any(t.name == "test-grace" for t in threading.enumerate()):
            time.sleep(0.01)
        time.sleep(0.05)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    return got


def test_a_stop_not_taken_up_is_noted_and_sent_again_to_the_main_thread(capsys) -> None:
    assert _repeated(False) == [signal.SIGUSR1]
    assert capsys.readouterr().err == "harness: note: what it waits on\n"


def test_a_stop_taken_up_in_time_is_left_alone(capsys) -> None:
    assert _repeated(True) == []
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("setting, seconds", [(None, 15.0), ("0.2", 3.0), ("1", 15.0), ("0", 15.0), ("-1", 15.0),
                                              ("2", 15.0), ("fast", 15.0), ("nan", 15.0)])
def test_the_private_grace_setting_only_shortens(setting, seconds, monkeypatch) -> None:
    """``_HARNESS_GRACE_SCALE`` (the slow signal tests' setting): a factor in (0, 1], anything else ignored."""
    from harness.guard.signals import GRACE_SCALE_ENV, grace_s

    if setting is None:
        monkeypatch.delenv(GRACE_SCALE_ENV, raising=False)
    else:
        monkeypatch.setenv(GRACE_SCALE_ENV, setting)
    assert grace_s(15.0) == pytest.approx(seconds)
