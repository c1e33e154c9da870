"""The fault clock draws each call's lateness inline (``FaultClock._new_call``): the very draws ``randint`` makes.

``random.Random("lateness:<seed>").randint(0, jitter_us)`` is what a saved failure's replay, the reference
model of ``harness.run.clock_fuzz`` and every earlier trace were made with; the clock draws it without the
three Python calls ``randint`` makes. These tests hold the two to the same numbers, call by call.
"""

from __future__ import annotations

import random

import pytest

from harness.run.clock import FaultClock

#: Bounds around powers of two (where the bit length changes and rejection is likeliest), and usual ones.
JITTERS_US = (1, 2, 3, 4, 7, 8, 9, 255, 256, 257, 1_000, 4_095, 4_096, 4_097, 20_000, 50_000, 65_537)


def _lateness(clock: FaultClock, calls: int) -> list[int]:
    """The lateness of ``calls`` calls made on ``clock``: the harness's own (quiet) ones and plain ``callLater``."""
    made = [clock.call_quietly(0.001 * i, lambda: None) if i % 2 else clock.callLater(0.001 * i, lambda: None) for i in range(calls)]
    return [call.late_us for call in made]


@pytest.mark.parametrize("jitter_us", JITTERS_US)
def test_each_lateness_is_randint_from_the_lateness_stream(jitter_us: int) -> None:
    for seed in range(40):
        clock = FaultClock("shuffle", seed)
        clock.jitter_us = jitter_us
        expected = random.Random(f"lateness:{seed}")
        assert _lateness(clock, 30) == [expected.randint(0, jitter_us) for _ in range(30)], (seed, jitter_us)


def test_a_clock_made_with_jitter_draws_the_same() -> None:
    # FaultClock(jitter=...) in seconds, as a user makes it; and a policy's milliseconds (for_policy).
    clock = FaultClock("fifo", 7, jitter=0.05)
    expected = random.Random("lateness:7")
    assert _lateness(clock, 50) == [expected.randint(0, 50_000) for _ in range(50)]


def test_no_jitter_no_lateness_and_no_draw() -> None:
    clock = FaultClock("fifo", 3)
    assert _lateness(clock, 5) == [0] * 5
    assert clock._lateness is None


def test_another_stream_or_bound_takes_randint() -> None:
    # A lateness stream that is not a plain random.Random (a subclass may draw its own way), or a bound that is no
    # positive int, goes through randint itself, as before.
    class Counting(random.Random):
        def randint(self, a: int, b: int) -> int:
            return 123

    clock = FaultClock("fifo", 1)
    clock.jitter_us = 500
    clock._lateness = Counting("lateness:1")
    assert _lateness(clock, 3) == [123, 123, 123]
    clock = FaultClock("fifo", 1)
    clock.jitter_us = -5  # (a policy never says so: randint refuses it, as it did)
    with pytest.raises(ValueError):
        clock.callLater(1, lambda: None)


def test_a_call_with_keywords_gets_them_and_one_without_gets_none() -> None:
    # _fire passes keywords only when the call has some (an empty dict is not copied into a new one).
    got: list[tuple[tuple[object, ...], dict[str, object]]] = []
    clock = FaultClock()
    clock.callLater(1, lambda *a, **k: got.append((a, k)), 1, 2, x=3)
    clock.callLater(2, lambda *a, **k: got.append((a, k)), 4)
    clock.advance(3)
    assert got == [((1, 2), {"x": 3}), ((4,), {})]
