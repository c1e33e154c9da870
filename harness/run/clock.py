"""FaultClock: a ``task.Clock`` that behaves like a hostile production reactor.

Differences from ``task.Clock``, each one a fault real reactors have:

* **Ties.** Calls due at the same instant run in a seeded order: ``fifo``
  (insertion, what ``task.Clock`` does), ``lifo``, ``shuffle`` or ``pct``
  (random priorities with ``depth - 1`` change points, as PCT schedules
  threads). A real reactor keeps a heap and promises no order.
* **Rounds.** As in ``ReactorBase.runUntilCurrent``, a call scheduled (or
  reset, or delayed) while due calls run, ``callLater(0, ...)`` re-entrantly
  for instance, runs in a later round of the same wake, never ahead of calls
  that were already due.
* **Wall-clock jumps.** ``seconds()`` reads a wall clock that the schedule can
  jump forward or back. Delayed calls are kept on monotonic virtual time, so
  code that relies on ``callLater`` delays is unaffected, while code that
  computes deadlines from ``seconds()`` readings sees the jump, as it would
  on a reactor whose ``seconds()`` is ``time.time()``. (Twisted's own
  reactors also keep their timers on ``seconds()``, so there a jump moves
  them too; that fault is not modelled: these timers are monotonic.)
* **Late wakes.** With a ``jitter`` (a busy reactor) each call draws a
  seeded lateness, and the reactor, driven by ``run_until``, wakes that late
  for it; with a ``step`` (a stalled or ticking reactor) it wakes only on
  stride boundaries. When it wakes at W, every call due by W runs, in due
  order; only calls due at the same instant are permuted, by the tie-break
  policy. No reactor runs a call due later ahead of one due earlier. A call
  fires at most ``step + jitter`` late, never early.
* **Escapes.** An exception raised by a scheduled call is handed to
  ``on_escape`` and the clock goes on, as a reactor logs and continues;
  ``task.Clock.advance`` would let it escape into the test.

*Integer time.* Virtual time, due times, strides, lateness and wall-clock
skew are integer microseconds (``now_us``, ``DelayedCall.due_us``); floats
appear only where the user's code meets the clock: ``seconds()``,
``rightNow``, ``callLater(delay)``, ``getTime()``, ``reset``/``delay``. No
float comparison decides what is due, so the clock's loop always makes
progress (a float due time rounded one ulp short of itself once made the
runner wake for ever at an instant when nothing was due).

It keeps every ``DelayedCall`` it created, for leak checks. A call is
scheduled in ``_arm``, fired in ``_fire``, cancelled in ``_disarm`` and
rescheduled in ``_rearm``: one place each, for anything that records them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from traceback import format_stack
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import error, task
from twisted.internet.base import DelayedCall
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from harness.model.schedule import ORDERS
from harness.run.describe import mask_addresses

if TYPE_CHECKING:
    from harness.model.schedule import ClockPolicy

#: Microseconds in a second: the resolution of virtual time.
MICRO = 1_000_000
#: Rounds of same-instant calls after which the clock declares a livelock.
MAX_ROUNDS_PER_INSTANT = 10_000
#: How far ``seconds()`` moves on for each call the clock runs, at least (and
#: at least ``DRIFT_ULPS`` float ulps of the reading, for readings above a few
#: hours): far above float rounding error, far below the microsecond
#: resolution of due times (at small times it reaches 1us after 100,000
#: calls). Due times never include it: they are integers on monotonic time.
DRIFT_PER_CALL = 1e-11
DRIFT_ULPS = 4
#: Below this reading (in seconds, either sign) ``DRIFT_ULPS`` ulps are less than
#: ``DRIFT_PER_CALL``, so ``drift_step`` is ``DRIFT_PER_CALL``: a float in [2**13, 2**14) has an ulp of
#: 2**-39 (4 of them 7.3e-12), one in [2**14, 2**15) 2**-38 (1.5e-11). About 4.5 hours.
FLAT_DRIFT_BELOW = 2.0**14


def to_us(seconds: float) -> int:
    """Seconds (a float from user code) as integer microseconds, rounded to the nearest."""
    return round(seconds * MICRO)


class Livelock(Exception):
    """Scheduled calls kept scheduling more calls at the same instant without end."""


class _FaultDelayedCall(DelayedCall):
    """A DelayedCall due at integer microseconds ``due_us``, with a tie-break key and its number ``seq`` (1, 2...).

    ``late_us`` is how late the reactor wakes when this is the call it wakes
    for; it never changes the order calls run in.

    ``time`` (what Twisted reads) is derived from ``due_us``; ``reset`` and
    ``delay`` work on integers and move the call to a later round. ``stamp``
    changes whenever the call is (re)armed: a round runs only the calls as
    they were when it began.
    """

    due_us: int = 0
    late_us: int = 0
    key: float = 0.0
    stamp: int = 0
    seq: int = 0
    clock: FaultClock
    #: The runner's name for the call in its timer events (``#3 func``), once it recorded the call set.
    label: str | None = None
    #: A call of the harness's own (``FaultClock.call_quietly``): ``on_timer`` is never told of it.
    quiet = False
    # DelayedCall's state before it runs or is cancelled (Twisted sets its own when either happens).
    cancelled = 0
    called = 0
    delayed_time = 0.0

    def __init__(self, clock: FaultClock, func: Callable[..., Any], args: tuple[object, ...], kw: dict[str, object]) -> None:
        """What ``DelayedCall.__init__`` sets, less what the class holds: ``clock.callLater`` makes
        about 10 calls a run, and Twisted's ``__init__`` set eight attributes, two of them bound
        methods of the clock and one (``time``) through the property below; the canceller, resetter
        and ``seconds`` are methods here, and the state before the call runs is class attributes."""
        self.func, self.args, self.kw = func, args, kw
        self.clock = clock
        if self.debug:
            self.creator = format_stack()[:-2]

    def canceller(self, call: DelayedCall) -> None:
        """What Twisted's ``cancel`` calls before it marks the call cancelled: the clock disarms it."""
        self.clock._disarm(call)

    def resetter(self, call: DelayedCall) -> None:
        """Twisted's resetter: unused, as ``reset`` and ``delay`` reschedule through ``FaultClock._rearm``."""

    def seconds(self) -> float:
        """The time Twisted reads for this call: the clock's monotonic virtual time."""
        return self.clock.monotonic()

    @property
    def time(self) -> float:
        return self.due_us / MICRO

    @time.setter
    def time(self, value: float) -> None:
        self.due_us = to_us(value)

    def reset(self, secondsFromNow: float) -> None:
        """Reschedule at ``secondsFromNow`` from now (never before now), as a fresh call would be."""
        self._check_pending()
        self.clock._rearm(self, self.clock.now_us + max(to_us(secondsFromNow), 0))

    def delay(self, secondsLater: float) -> None:
        """Move the due time by ``secondsLater`` (never before now)."""
        self._check_pending()
        self.clock._rearm(self, max(self.due_us + to_us(secondsLater), self.clock.now_us))

    def _check_pending(self) -> None:
        if self.cancelled:
            raise error.AlreadyCancelled
        if self.called:
            raise error.AlreadyCalled


#: Makes a ``_FaultDelayedCall`` without running ``__init__`` (``FaultClock._new_call`` sets its fields).
_new_delayed_call = object.__new__

#: The keywords of every quiet call (the harness's own calls take none; nothing changes this dict).
_NO_KEYWORDS: dict[str, object] = {}


def func_name(func: Any) -> str:
    """A deterministic, readable name for a function (no addresses, no ``<locals>``).

    Addresses are masked (``0x?``) also inside a ``__qualname__``: a wrapper may name itself after
    the ``repr`` of what it wraps (automat's ``<implementation for <function f at 0x7f...>>``), and
    the trace would differ between processes. A ``__qualname__`` that is not a string names nothing.
    """
    name = getattr(func, "__qualname__", None) or type(func).__name__
    if not isinstance(name, str):
        name = type(func).__name__
    name = name.rsplit("<locals>.", 1)[-1]
    return mask_addresses(name) if "0x" in name or "..." in name else name


def call_name(call: DelayedCall) -> str:
    """The name of a delayed call's function."""
    return func_name(getattr(call, "func", None))


@implementer(IReactorTime)
class FaultClock(task.Clock):
    """An ``IReactorTime`` with seeded tie-breaks, wall-clock skew, late wakes and reactor-like error handling.

    ``jitter`` and ``step`` (seconds) only matter to ``run_until`` and
    ``drain``, the reactor loop the runner drives; ``advance`` and
    ``advance_to`` wake exactly when told, like ``task.Clock.advance``.

    Example::

        clock = FaultClock(tie_break="lifo")
        clock.callLater(1, print, "a"); clock.callLater(1, print, "b")
        clock.advance(1)   # prints b, then a
    """

    def __init__(
        self,
        tie_break: str = "fifo",
        seed: int = 0,
        on_escape: Callable[[DelayedCall, BaseException], object] | None = None,
        jitter: float = 0.0,
        step: float = 0.0,
        depth: int = 3,
    ) -> None:
        if tie_break not in ORDERS:
            raise ValueError(f"tie_break must be one of {', '.join(ORDERS)}, got {tie_break!r}")
        self.now_us = 0
        super().__init__()
        self.skew_us = 0
        self.tie_break = tie_break
        self.jitter_us = max(to_us(jitter), 0)
        self.step_us = max(to_us(step), 0)
        # Two streams: dropping the jitter (as shrinking does) keeps the shuffled tie order.
        # Made only for the orders that draw from it (seeding a Random costs more than a short run's steps).
        self._rng: random.Random | None = random.Random(seed) if tie_break in ("shuffle", "pct") else None
        self._seed = seed
        self._lateness: random.Random | None = None  # made on first use: most schedules have no jitter
        self._seq = 0
        # pct: the calls (by creation number) whose priority drops below every other's at a change point.
        self._changes = _change_points(self._rng, depth) if self._rng is not None and tie_break == "pct" else {}
        self.on_escape = on_escape
        #: Told ``("set" | "fire" | "cancel", call)`` for every delayed call, when set (the runner's timer events).
        self.on_timer: Callable[[str, _FaultDelayedCall], None] | None = None
        self.created: list[_FaultDelayedCall] = []
        self.fired = 0
        self.drift = 0.0

    @classmethod
    def for_policy(cls, policy: ClockPolicy) -> FaultClock:
        """The clock a schedule's ``ClockPolicy`` describes."""
        clock = cls(policy.tie_break, policy.seed, depth=policy.depth)
        clock.jitter_us = policy.jitter_ms * 1000
        clock.step_us = policy.step_ms * 1000
        return clock

    # -- IReactorTime -------------------------------------------------------

    @property
    def rightNow(self) -> float:
        """Monotonic virtual time in seconds, as ``task.Clock`` code reads it."""
        return self.now_us / MICRO

    @rightNow.setter
    def rightNow(self, value: float) -> None:
        self.now_us = to_us(value)

    def seconds(self) -> float:
        """The wall-clock reading: monotonic virtual time plus any jumps.

        Plus a drift (``self.drift``) that grows by ``drift_step`` for every
        call run: a real clock moves on while the reactor works, so a call due
        on a boundary never reads a hair before it, and a reading taken in a
        later call is always larger than one taken in an earlier call (unless
        the wall clock jumped back). Without the drift, float arithmetic
        on exact virtual times (``LoopingCall`` computes
        ``interval - (now - start) % interval``) can come out one ulp short
        of a boundary and reschedule the call at the same instant for ever.
        """
        return (self.now_us + self.skew_us) / MICRO + self.drift

    def monotonic(self) -> float:
        """Virtual time that only moves forward; delayed calls are due on it."""
        return self.now_us / MICRO

    def callLater(self, delay: float, callable: Callable[..., Any], *args: object, **kw: object) -> _FaultDelayedCall:
        call = self._new_call(delay, callable, args, kw)
        on_timer = self.on_timer
        if on_timer is not None:
            on_timer("set", call)
        return call

    def call_quietly(self, delay: float, callable: Callable[..., Any], *args: object) -> _FaultDelayedCall:
        """``callLater`` for the harness's own calls (a job settling after its duration): the same call,
        numbered, ordered, late and due alike, but ``on_timer`` is told nothing of it, neither its
        setting, nor its firing, nor its cancelling (the runner's timer events leave jobs' calls out,
        and a run sets about 8 of them: telling the recorder only for it to look and ignore each was
        most of their cost)."""
        call = self._new_call(delay, callable, args, _NO_KEYWORDS)
        call.quiet = True
        return call

    def _new_call(self, delay: float, callable: Callable[..., Any], args: tuple[object, ...], kw: dict[str, object]) -> _FaultDelayedCall:
        """A new call to ``callable`` in ``delay`` seconds, numbered, given its tie-break key and lateness, armed.

        The call is made as ``_FaultDelayedCall(self, callable, args, kw)`` makes it, without the class
        call entering ``__init__`` from C (a run makes about 10); its lateness is set on it even when 0,
        so that ``next_wake_us`` reads an attribute of the call rather than of its class.
        """
        call: _FaultDelayedCall = _new_delayed_call(_FaultDelayedCall)
        call.func, call.args, call.kw = callable, args, kw
        call.clock = self
        if call.debug:
            call.creator = format_stack()[:-1]
        self._seq = seq = self._seq + 1
        call.seq = seq
        order = self.tie_break
        if order == "fifo":
            call.key = seq
        elif order == "lifo":
            call.key = -seq
        elif seq in self._changes:
            call.key = self._changes[seq]
        else:
            if self._rng is None:  # the order was changed to one that draws after the clock was made
                self._rng = random.Random(self._seed)
            call.key = self._rng.random()
        jitter = self.jitter_us
        if jitter:
            lateness = self._lateness
            if lateness is None:
                lateness = self._lateness = random.Random(f"lateness:{self._seed}")  # seeding from a string hashes it: not free
            if type(jitter) is int and jitter > 0 and type(lateness) is random.Random:
                # lateness.randint(0, jitter), the same draw from the same stream without its three Python
                # calls (randint, randrange, _randbelow; a run with jitter draws about 8): randint(0, n) is
                # _randbelow(n + 1), getrandbits of the width's bit length until the draw is below the width.
                # (tests/test_clock_lateness_draw.py holds it to randint over many seeds and bounds.)
                width = jitter + 1
                bits = width.bit_length()
                late = lateness.getrandbits(bits)
                while late >= width:
                    late = lateness.getrandbits(bits)
                call.late_us = late
            else:
                call.late_us = lateness.randint(0, jitter)
        else:
            call.late_us = 0
        # Whole microseconds of delay (to_us), so that callLater(0.2) at 0.1s is due at exactly 0.3s.
        delay_us = round(delay * MICRO)
        self._arm(call, self.now_us + delay_us if delay_us > 0 else self.now_us)
        self.created.append(call)
        return call

    # task.Clock declares list[DelayedCall]; a list is invariant, so narrowing it is unsound in general,
    # but only this class adds to it, and every call it adds is one of ours.
    calls: list[_FaultDelayedCall]  # type: ignore[assignment]

    def getDelayedCalls(self) -> list[_FaultDelayedCall]:
        return list(self.calls)

    # -- the one place each: arm, rearm, disarm, fire -------------------------

    def _arm(self, call: _FaultDelayedCall, due_us: int) -> None:
        """Schedule a new call at ``due_us``."""
        call.due_us = due_us
        call.stamp = self._seq
        self.calls.append(call)

    def _rearm(self, call: _FaultDelayedCall, due_us: int) -> None:
        """Move a pending call (``reset``/``delay``) to ``due_us``; it keeps its tie-break key and lateness."""
        self._seq += 1
        call.due_us = due_us
        call.stamp = self._seq
        if self.on_timer is not None and not call.quiet:
            self.on_timer("reset", call)

    def _disarm(self, call: DelayedCall) -> None:
        """A pending call is cancelled (Twisted marks it cancelled right after)."""
        # Twisted types the canceller's argument as its own DelayedCall; this canceller is given only to ours.
        ours = cast(_FaultDelayedCall, call)
        self.calls.remove(ours)
        if self.on_timer is not None and not ours.quiet:
            self.on_timer("cancel", ours)

    def _fire(self, call: _FaultDelayedCall) -> None:
        """Run one due call; an exception it raises goes to ``on_escape``."""
        self.calls.remove(call)
        call.called = 1
        self.fired += 1
        reading = (self.now_us + self.skew_us) / MICRO
        # drift_step(reading), without its call for the readings of every run but a days-long one
        self.drift += DRIFT_PER_CALL if -FLAT_DRIFT_BELOW < reading < FLAT_DRIFT_BELOW else drift_step(reading)
        on_timer = self.on_timer
        if on_timer is not None and not call.quiet:
            on_timer("fire", call)
        try:
            kw = call.kw
            if type(kw) is dict and not kw:  # nearly every call: no keywords to copy into a new dict for the call
                call.func(*call.args)
            else:
                call.func(*call.args, **kw)
        except Exception as exc:  # a reactor logs and goes on
            if self.on_escape is None:
                raise
            self.on_escape(call, exc)

    # -- driving ------------------------------------------------------------

    def jump(self, delta: float) -> None:
        """Move the wall clock by ``delta`` seconds (negative jumps backwards)."""
        self.jump_us(to_us(delta))

    def jump_us(self, delta_us: int) -> None:
        """Move the wall clock by ``delta_us`` microseconds."""
        self.skew_us += delta_us

    def next_due_us(self) -> int | None:
        """Monotonic time (microseconds) at which the earliest pending call is due, or None."""
        return min((c.due_us for c in self.calls), default=None)

    def next_due(self) -> float | None:
        """Monotonic time (seconds) at which the earliest pending call is due, or None."""
        due = self.next_due_us()
        return None if due is None else due / MICRO

    def next_wake_us(self) -> int | None:
        """When the reactor next wakes, or None if nothing is pending: the earliest time a
        pending call is due plus its own lateness, rounded up to a stride boundary.
        Never before the earliest due time, so the wake always runs a call."""
        wake = None
        for call in self.calls:  # a plain loop: called before every step and wake, over a few calls
            due = call.due_us + call.late_us
            if wake is None or due < wake:
                wake = due
        if wake is None:
            return None
        step = self.step_us
        if step:
            wake = -(-wake // step) * step
        now = self.now_us
        return wake if wake > now else now

    def advance(self, amount: float) -> None:
        """Move monotonic time forward by ``amount`` seconds and run every call now due."""
        self.wake(self.now_us + max(to_us(amount), 0))

    def advance_to(self, when: float) -> None:
        """Move monotonic time to ``when`` seconds (never backwards) and run every call now due."""
        self.wake(to_us(when))

    def run_until(self, when_us: int, checkpoint: Callable[[], None] = lambda: None, rounds: int | None = None) -> int:
        """The reactor loop up to ``when_us``: wake whenever the policy says (``next_wake_us``)
        until the next wake is past ``when_us``, then move time to ``when_us``.

        A call due by ``when_us`` whose wake comes later stays pending: the
        reactor is still asleep at ``when_us``. Every wake runs at least the
        call it woke for and wakes strictly later than the previous one, so the
        loop always ends. ``checkpoint`` is called before each wake.

        ``rounds`` (None: all) pauses the wake at ``when_us`` itself after that
        many rounds (0: before any), as a real reactor handles I/O between two
        passes of ``runUntilCurrent``; the next ``run_until`` or ``drain`` runs
        the rest, at the next wake ``next_wake_us`` gives: the same instant
        when some call still due is overdue by its own lateness (always without
        jitter), else later (a ``callLater(0)`` made in the paused wake, with a
        lateness drawn, waits for it: up to a whole stride; review 7, finding 2).
        Changing that would change the traces of saved failures. Returns how
        many calls that pause left due (0: none, the order is as without ``rounds``).
        """
        while True:
            checkpoint()
            wake = self.next_wake_us()
            if wake is None or wake > when_us:
                break
            if rounds is not None and wake == when_us:
                return self.wake(wake, rounds)
            self.wake(wake)
        if when_us > self.now_us:
            self.now_us = when_us
        return 0

    def drain(self, horizon_us: int, checkpoint: Callable[[], None] = lambda: None) -> None:
        """The reactor loop until nothing is pending or the next wake is past ``horizon_us``."""
        while True:
            checkpoint()
            wake = self.next_wake_us()
            if wake is None or wake > horizon_us:
                return
            self.wake(wake)

    def run_due(self) -> None:
        """Run every call due now (``wake`` at the current time)."""
        self.wake(self.now_us)

    def wake(self, when_us: int, rounds: int | None = None) -> int:
        """The reactor wakes at ``when_us`` (never moving backwards): run every call due by
        then, in due order, ties by the tie-break policy, in rounds; calls armed
        or rearmed during a round wait for the next one.

        ``rounds`` stops after that many rounds; returns how many calls it left due then (0 otherwise)."""
        if when_us > self.now_us:
            self.now_us = when_us
        now = self.now_us
        for done in range(MAX_ROUNDS_PER_INSTANT):
            due = [c for c in self.calls if c.due_us <= now]
            if not due:
                return 0
            if done == rounds:
                return len(due)
            if len(due) == 1:  # the common case: one call due, nothing to order or to see rearmed first
                call = due[0]
                if not (call.cancelled or call.called):
                    self._fire(call)
                continue
            due.sort(key=_order)
            for call, stamp in [(c, c.stamp) for c in due]:
                if call.stamp == stamp and not (call.cancelled or call.called):
                    self._fire(call)
        raise Livelock(f"more than {MAX_ROUNDS_PER_INSTANT} rounds of calls at t={now / MICRO}s")


def drift_step(reading: float) -> float:
    """How much ``seconds()`` moves on for a call run at ``reading``: enough to change the float."""
    return max(DRIFT_PER_CALL, DRIFT_ULPS * math.ulp(reading))


#: The calls among which ``pct`` places its change points (PCT's k, the steps of a run).
PCT_HORIZON = 64


def _change_points(rng: random.Random, depth: int) -> dict[int, float]:
    """PCT's ``depth - 1`` priority change points: creation numbers mapped to their low priorities.

    Every other call gets a random priority in [0, 1); the i-th change point's
    call gets 1 + i, so at its instant it runs after every other call due then
    (the later change point lower still), as PCT lowers the running thread's
    priority below all others at each change point. A bug that needs ``depth``
    ordering constraints is then hit with probability at least about
    1 / (n * k^(depth - 1)) per run, for n calls due together, not 1 / n!.
    """
    points = rng.sample(range(1, PCT_HORIZON + 1), depth - 1)
    return {point: 1.0 + index for index, point in enumerate(points)}


def _order(call: _FaultDelayedCall) -> tuple[int, float]:
    return (call.due_us, call.key)
