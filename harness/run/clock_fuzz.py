"""Self-check of the ``FaultClock``: random timer operations against a reference model.

The harness must never hang on its own, nor run a call early or out of due
order; ``fuzz_clock`` checks that with random timer operations applied both
to a ``FaultClock`` and to ``ReferenceClock``, a plain simulation on integer
microseconds that keeps pending calls sorted by (due time, tie-break key):

* ``callLater`` with delays of 0, below a microsecond, whole micro- and
  milliseconds, and decimal seconds that floats cannot hold exactly (0.1,
  0.2, 9.13), from the driver and re-entrantly from inside running calls;
* ``cancel``, ``reset`` and ``delay`` of pending calls (also from inside
  calls), and calls that raise;
* the runner's reactor loop (``run_until``, ``drain``) under every tie-break
  policy, strides and jitter, ``advance``/``advance_to`` as ``task.Clock``
  users call them, and wall-clock jumps.

After every operation it compares which calls ran, in what order and at
what virtual time, what is pending and when it is due, and what
``seconds()`` reads. It also checks that no call ran before it was due,
that the reactor loop never ran one later than ``step + jitter``, and that
``seconds()`` never went back between two calls without a backward jump.
``tests/test_clock_fuzz.py`` runs a few thousand operations;
``benchmarks/clock_fuzz.py`` runs millions.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from harness.run.clock import MICRO, FaultClock, Livelock, drift_step
from harness.model.schedule import TIE_BREAKS

#: Wakes one driver operation may take before the fuzzer calls it a hang.
MAX_WAKES_PER_OP = 100_000
#: Delays the driver arms, as (seconds handed to ``callLater``, microseconds meant).
DECIMAL_DELAYS: tuple[tuple[float, int], ...] = (
    (0.0, 0),
    (1e-7, 0),
    (4e-7, 0),
    (6e-7, 1),
    (0.001, 1_000),
    (0.01, 10_000),
    (0.05, 50_000),
    (0.1, 100_000),
    (0.2, 200_000),
    (0.3, 300_000),
    (0.7, 700_000),
    (1.1, 1_100_000),
    (9.13, 9_130_000),
)
#: Strides and jitters (microseconds) a fuzzed clock runs under.
STEPS_US = (0, 0, 7, 1_000, 10_000, 30_000)
JITTERS_US = (0, 0, 3, 5_000, 50_000)


class Hang(Exception):
    """One driver operation took more than ``MAX_WAKES_PER_OP`` wakes."""


@dataclass
class Script:
    """What a call does when it runs: timer operations, then maybe raise."""

    ops: list[tuple[Any, ...]] = field(default_factory=list)
    raises: bool = False


@dataclass
class FuzzResult:
    """What a fuzzing session found: every count but ``ops`` and ``clocks`` must be 0."""

    ops: int = 0
    clocks: int = 0
    fired: int = 0
    hangs: int = 0
    order_differences: int = 0
    early: int = 0
    too_late: int = 0
    seconds_errors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return self.hangs + self.order_differences + self.early + self.too_late + self.seconds_errors

    def note(self, kind: str, message: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.problems) < 10:
            self.problems.append(message)


@dataclass
class _ModelCall:
    id: int
    due_us: int
    late_us: int
    key: float
    order: int
    stamp: int
    script: Script

    def sort_key(self) -> tuple[int, float, int]:
        return (self.due_us, self.key, self.order)


class ReferenceClock:
    """The specification of the clock, on integers only: pending calls sorted by (due, key).

    The reactor loop wakes at the earliest (due + lateness), rounded up to a
    stride; a wake at W runs, round after round, every call due by W in
    (due, key) order; a call armed or rearmed during a round waits for the
    next one. Tie-break keys and lateness come from the same seeded streams
    as the ``FaultClock``'s (``random.Random(seed)``, ``random.Random("lateness:<seed>")``).
    """

    def __init__(self, tie_break: str, seed: int, step_us: int, jitter_us: int) -> None:
        self.tie_break = tie_break
        self.step_us = step_us
        self.jitter_us = jitter_us
        self.keys = random.Random(seed)
        self.lateness = random.Random(f"lateness:{seed}")
        self.now_us = 0
        self.skew_us = 0
        self.fired = 0
        self.drift = 0.0
        self.stamps = 0
        self.pending: list[_ModelCall] = []  # sorted by sort_key()
        self.by_id: dict[int, _ModelCall] = {}
        self.run: Callable[[_ModelCall], None] = lambda call: None

    def call_later(self, call_id: int, delay_us: int, script: Script) -> None:
        self.stamps += 1
        if self.tie_break == "fifo":
            key: float = call_id
        elif self.tie_break == "lifo":
            key = -call_id
        else:
            key = self.keys.random()
        late = self.lateness.randint(0, self.jitter_us) if self.jitter_us else 0
        call = _ModelCall(call_id, self.now_us + max(delay_us, 0), late, key, call_id, self.stamps, script)
        self._insert(call)

    def _insert(self, call: _ModelCall) -> None:
        bisect.insort(self.pending, call, key=_ModelCall.sort_key)
        self.by_id[call.id] = call

    def _remove(self, call: _ModelCall) -> None:
        self.pending.remove(call)
        del self.by_id[call.id]

    def cancel(self, call_id: int) -> None:
        self._remove(self.by_id[call_id])

    def move(self, call_id: int, due_us: int) -> None:
        call = self.by_id[call_id]
        self._remove(call)
        self.stamps += 1
        call.due_us, call.stamp = due_us, self.stamps
        self._insert(call)

    def reset(self, call_id: int, delay_us: int) -> None:
        self.move(call_id, self.now_us + max(delay_us, 0))

    def delay(self, call_id: int, delta_us: int) -> None:
        self.move(call_id, max(self.by_id[call_id].due_us + delta_us, self.now_us))

    def seconds(self) -> float:
        return (self.now_us + self.skew_us) / MICRO + self.drift

    def next_wake(self) -> int | None:
        if not self.pending:
            return None
        wake = min(c.due_us + c.late_us for c in self.pending)
        if self.step_us:
            wake = (wake + self.step_us - 1) // self.step_us * self.step_us
        return max(wake, self.now_us)

    def wake(self, when_us: int, rounds: int | None = None) -> int:
        self.now_us = max(self.now_us, when_us)
        done = 0
        while self.pending and self.pending[0].due_us <= self.now_us:
            batch = [(c, c.stamp) for c in self.pending if c.due_us <= self.now_us]
            if done == rounds:
                return len(batch)
            done += 1
            for call, stamp in batch:
                if call.id in self.by_id and call.stamp == stamp:
                    self._remove(call)
                    self.fired += 1
                    self.drift += drift_step((self.now_us + self.skew_us) / MICRO)
                    self.run(call)
        return 0

    def run_until(self, when_us: int, rounds: int | None = None) -> int:
        while (wake := self.next_wake()) is not None and wake <= when_us:
            if rounds is not None and wake == when_us:
                return self.wake(wake, rounds)
            self.wake(wake)
        self.now_us = max(self.now_us, when_us)
        return 0

    def drain(self, horizon_us: int) -> None:
        while (wake := self.next_wake()) is not None and wake <= horizon_us:
            self.wake(wake)


class _Session:
    """One clock and its model, driven by one random stream."""

    def __init__(
        self, rng: random.Random, result: FuzzResult, make_clock: Callable[..., FaultClock], max_wakes: int
    ) -> None:
        self.rng = rng
        self.max_wakes = max_wakes
        self.result = result
        tie_break = rng.choice(TIE_BREAKS)
        seed = rng.randrange(2**32)
        self.step_us = rng.choice(STEPS_US)
        self.jitter_us = rng.choice(JITTERS_US)
        self.clock = make_clock(tie_break, seed, on_escape=lambda call, exc: None)
        self.clock.step_us = self.step_us
        self.clock.jitter_us = self.jitter_us
        self.model = ReferenceClock(tie_break, seed, self.step_us, self.jitter_us)
        self.model.run = self._run_model
        self.policy = f"{tie_break} seed={seed} step={self.step_us}us jitter={self.jitter_us}us"
        self.calls: dict[int, Any] = {}  # id -> pending DelayedCall of the clock
        self.clock_ids = 0
        self.model_ids = 0
        self.clock_log: list[tuple[int, int]] = []
        self.model_log: list[tuple[int, int]] = []
        self.clock_seconds: list[float] = []
        self.model_seconds: list[float] = []
        self.looping = False  # inside run_until/drain: lateness is bounded by step + jitter
        self.last_seconds: float | None = None
        self.wakes = 0
        self.broken = False

    # -- scripts ----------------------------------------------------------

    def _delay(self) -> tuple[float, int]:
        rng = self.rng
        pick = rng.random()
        if pick < 0.45:
            return rng.choice(DECIMAL_DELAYS)
        if pick < 0.75:
            ms = rng.randrange(0, 200)
            return ms / 1000, ms * 1000
        us = rng.randrange(0, 300_000)
        return us / MICRO, us

    def _script(self, depth: int) -> Script:
        rng = self.rng
        script = Script(raises=rng.random() < 0.03)
        if depth >= 3:
            return script
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            script.ops.append(self._op(depth + 1))
        return script

    def _op(self, depth: int) -> tuple[Any, ...]:
        rng = self.rng
        pick = rng.random()
        if pick < 0.55:
            seconds, us = self._delay()
            return ("later", seconds, us, self._script(depth))
        if pick < 0.75:
            return ("cancel", rng.randrange(1 << 30))
        if pick < 0.9:
            seconds, us = self._delay()
            return ("reset", rng.randrange(1 << 30), seconds, us)
        ms = rng.randrange(-100, 100)
        return ("delay", rng.randrange(1 << 30), ms / 1000, ms * 1000)

    # -- one timer operation, on the clock or on the model ------------------

    @staticmethod
    def _pick(ids: list[int], pick: int) -> int | None:
        """The pending call ``pick`` designates; both sides pick alike while their pending sets agree."""
        return ids[pick % len(ids)] if ids else None

    def _clock_apply(self, op: tuple[Any, ...]) -> None:
        self.result.ops += 1
        kind = op[0]
        if kind == "later":
            _, seconds, _us, script = op
            call_id = self.clock_ids
            self.clock_ids += 1
            self.calls[call_id] = self.clock.callLater(seconds, self._run_clock, call_id, script)
            return
        # args[0] is the int call id given to callLater above; DelayedCall types its args as objects.
        target = self._pick(sorted(cast(int, c.args[0]) for c in self.clock.calls), op[1])
        if target is None:
            return
        call = self.calls[target]
        if kind == "cancel":
            call.cancel()
            del self.calls[target]
        elif kind == "reset":
            call.reset(op[2])
        else:
            call.delay(op[2])

    def _model_apply(self, op: tuple[Any, ...]) -> None:
        kind, model = op[0], self.model
        if kind == "later":
            model.call_later(self.model_ids, op[2], op[3])
            self.model_ids += 1
            return
        target = self._pick(sorted(model.by_id), op[1])
        if target is None:
            return
        if kind == "cancel":
            model.cancel(target)
        elif kind == "reset":
            model.reset(target, op[3])
        else:
            model.delay(target, op[3])

    def _run_clock(self, call_id: int, script: Script) -> None:
        clock, call = self.clock, self.calls.pop(call_id)
        self.clock_log.append((call_id, clock.now_us))
        if clock.now_us < call.due_us:
            self.result.note("early", f"{self.policy}: call {call_id} due at {call.due_us}us ran at {clock.now_us}us")
        if self.looping and clock.now_us - call.due_us > self.step_us + self.jitter_us:
            self.result.note(
                "too_late",
                f"{self.policy}: call {call_id} due at {call.due_us}us ran at {clock.now_us}us, "
                f"more than step + jitter late",
            )
        seconds = clock.seconds()
        if clock.monotonic() != clock.now_us / MICRO or clock.rightNow != clock.now_us / MICRO:
            self.result.note("seconds_errors", f"{self.policy}: monotonic() {clock.monotonic()!r} at {clock.now_us}us")
        if self.last_seconds is not None and seconds <= self.last_seconds:
            self.result.note("seconds_errors", f"{self.policy}: seconds() went from {self.last_seconds!r} to {seconds!r}")
        self.last_seconds = seconds
        self.clock_seconds.append(seconds)
        for op in script.ops:
            self._clock_apply(op)
        if script.raises:
            raise RuntimeError(f"call {call_id} raises")

    def _run_model(self, call: _ModelCall) -> None:
        self.result.fired += 1
        self.model_log.append((call.id, self.model.now_us))
        self.model_seconds.append(self.model.seconds())
        for op in call.script.ops:
            self._model_apply(op)

    # -- driver operations --------------------------------------------------

    def _checkpoint(self) -> None:
        self.wakes += 1
        if self.wakes > self.max_wakes:
            raise Hang()

    def step(self) -> None:
        """One driver operation on both clock and model, then compare them."""
        rng, clock, model = self.rng, self.clock, self.model
        pick = rng.random()
        self.wakes = 0
        try:
            if pick < 0.5:
                op = self._op(0)
                self._clock_apply(op)
                self._model_apply(op)
            elif pick < 0.8:
                span = rng.choice((0, 1, 500, 5_000, 25_000, 100_000, 1_000_000))
                # Sometimes pause the wake at the end after a few rounds, as the runner does for an
                # operation with ``after_rounds``; both must leave the same calls due.
                rounds = rng.choice((None, None, 0, 1, 2))
                self.looping = True
                self.result.ops += 1
                left = clock.run_until(clock.now_us + span, self._checkpoint, rounds)
                if left != model.run_until(model.now_us + span, rounds):
                    self._diverged(f"run_until paused after {rounds} rounds left {left} calls due, the model another number")
            elif pick < 0.85:
                horizon = rng.choice((0, 50_000, 2_000_000))
                self.looping = True
                self.result.ops += 1
                clock.drain(clock.now_us + horizon, self._checkpoint)
                model.drain(model.now_us + horizon)
            elif pick < 0.95:
                seconds, us = self._delay()
                self.result.ops += 1
                clock.advance(seconds)
                model.wake(model.now_us + us)
            else:
                delta = rng.randrange(-5_000_000, 5_000_000)
                self.result.ops += 1
                clock.jump_us(delta)
                model.skew_us += delta
                self.last_seconds = None
        except Hang:
            self.result.note("hangs", f"{self.policy}: one operation took more than {self.max_wakes} wakes")
            self.broken = True
            return
        except Livelock as exc:
            self.result.note("hangs", f"{self.policy}: {exc}")
            self.broken = True
            return
        finally:
            self.looping = False
        self._compare()

    def _compare(self) -> None:
        clock, model = self.clock, self.model
        if self.clock_log != self.model_log:
            self._diverged(f"ran {self.clock_log[:8]}..., the model {self.model_log[:8]}...")
            return
        if self.clock_seconds != self.model_seconds:
            self.result.note("seconds_errors", f"{self.policy}: calls read seconds() {self.clock_seconds[:4]}, the model {self.model_seconds[:4]}")
            self.broken = True
            return
        for log in (self.clock_log, self.model_log, self.clock_seconds, self.model_seconds):
            log.clear()
        pending = sorted((c.args[0], c.due_us) for c in clock.calls)
        expected = sorted((c.id, c.due_us) for c in model.pending)
        if pending != expected or clock.now_us != model.now_us:
            self._diverged(f"pending {pending[:6]} at {clock.now_us}us, the model {expected[:6]} at {model.now_us}us")
            return
        for call in clock.getDelayedCalls():
            if call.getTime() != call.due_us / MICRO:
                self._diverged(f"getTime() {call.getTime()!r} for a call due at {call.due_us}us")
                return
        if clock.seconds() != model.seconds():
            self.result.note("seconds_errors", f"{self.policy}: seconds() {clock.seconds()!r}, the model {model.seconds()!r}")
            self.broken = True

    def _diverged(self, message: str) -> None:
        self.result.note("order_differences", f"{self.policy}: {message}")
        self.broken = True


def fuzz_clock(
    ops: int,
    seed: int = 0,
    ops_per_clock: int = 2_000,
    progress: Callable[[FuzzResult], None] | None = None,
    make_clock: Callable[..., FaultClock] = FaultClock,
    max_wakes: int = MAX_WAKES_PER_OP,
) -> FuzzResult:
    """Run at least ``ops`` random timer operations on fresh clocks of random policies.

    Each clock gets ``ops_per_clock`` driver operations (fewer if it breaks),
    some of them nested inside running calls; ``FuzzResult.ops`` counts every
    timer operation applied. Deterministic for a given ``seed``.
    ``make_clock(tie_break, seed, on_escape=...)`` builds each clock (a
    subclass, to show the fuzzer catches a broken one). One driver operation
    that takes more than ``max_wakes`` wakes of the reactor loop is a hang.
    """
    rng = random.Random(seed)
    result = FuzzResult()
    while result.ops < ops:
        session = _Session(rng, result, make_clock, max_wakes)
        result.clocks += 1
        if rng.random() < 0.2:  # start far from zero, where floats hold microseconds less exactly
            start = rng.choice((9_130_000, 86_400 * MICRO, 10**10))
            session.clock.advance(start / MICRO)
            session.model.wake(start)
        for _ in range(ops_per_clock):
            session.step()
            if session.broken or result.ops >= ops:
                break
        if progress is not None:
            progress(result)
    return result
