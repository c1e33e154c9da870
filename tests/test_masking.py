"""Memory addresses are masked also when a truncated repr cut them, or moved the cut (``harness.run.describe``).

reprlib and pytest shorten a long repr by keeping a fixed number of characters of each side
(``s[:i] + "..." + s[-j:]``). The cut can fall inside an address (``<tests.t...x7f3a4b5c6d7e>``,
``...c950>``): the half left must be masked like a whole one. And where addresses differ in
length (another platform, a heap address beside an arena's), the cut falls elsewhere in the text
and what is kept shifts: only what no address length moves may stay. A trace must be the same in
every process.
"""

from __future__ import annotations

import os
import reprlib
import subprocess
import sys
from pathlib import Path

import pytest
from _pytest._io.saferepr import saferepr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from twisted.internet import defer, task
from twisted.python.failure import Failure

from harness.run.describe import describe, describe_error, mask_addresses

ROOT = Path(__file__).resolve().parent.parent


class Holder:
    pass


def _ellipsize(s: str, maxsize: int) -> str:
    """The middle cut of pytest's ``saferepr`` and of ``reprlib.Repr.repr_instance`` (one formula)."""
    if len(s) <= maxsize:
        return s
    i = max(0, (maxsize - 3) // 2)
    j = max(0, maxsize - 3 - i)
    return s[:i] + "..." + s[len(s) - j :]


def _forms(one: object, other: object) -> list[tuple[str, str]]:
    """Each form a cut repr takes, made for two objects of the same type at different addresses."""
    made = []
    for value in (one, other):
        clock = task.Clock()
        waiting, chained = defer.Deferred(), defer.Deferred()
        chained.callback(None)
        chained.addCallback(lambda _: waiting)
        fired = defer.succeed(value)
        shortish = reprlib.Repr()
        shortish.maxstring = 40
        made.append([
            reprlib.repr(value),  # maxother 30: '<tests.test_masking.Holder...x7f3a4b5c6d7e>'
            reprlib.repr([value] * 2),
            shortish.repr(f"the pool holds {value!r} still"),
            saferepr(value, maxsize=30),  # pytest's comparison lines: about 30 characters a side
            saferepr({"held": value, "n": 1}, maxsize=30),  # a short tail: 'c950>, ...'
            saferepr([value] * 8, maxsize=240),  # pytest's assertion rewriting
            f"assert {saferepr(value, maxsize=30)} == {saferepr(value, maxsize=30)}",
            saferepr(fired, maxsize=60),  # a Deferred's repr holds its result's
            saferepr(chained, maxsize=50),  # '... waiting on Deferred at 0x...'
            repr(Failure(AssertionError(f"kept {value!r}"))),
            saferepr(clock.callLater(1, print, value), maxsize=70),  # a DelayedCall's repr
            describe([value] * 12, 80),
        ])
        fired.addErrback(lambda _: None)
    return list(zip(*made))


def test_every_form_of_a_cut_repr_masks_to_the_same_text_for_two_addresses() -> None:
    first, second = Holder(), Holder()
    for one, other in _forms(first, second):
        assert one != other or "0x" not in one.replace("0x?", ""), one  # two addresses, or masked already
        assert mask_addresses(one) == mask_addresses(other), (one, other)
        assert "0x?" in mask_addresses(one) or "..." not in one, one


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("<tests.test_m.Hold...x7f3a4b5c6d7e>", "<tests.test_m.Hold...0x?>"),  # reprlib, pytest at 30 characters
        ("{'held': <tes...c590>, 'n': 1}", "{'held': <tes...0x?>, 'n': 1}"),  # a tail of 4 digits
        ("<a.Foo object at 0x7f3a...4b5c6d7e>", "<a.Foo object at 0x?...0x?>"),  # the cut inside the address
        ("<DelayedCall 0x7f...5c6d7e [1.0s] called=0>", "<DelayedCall 0x?...0x? [1.0s] called=0>"),
        ("<cell at 0x7f...a1: int object at 0x7f3a4b5c6d7e>", "<cell at 0x?...0x?>"),
        ("assert <tests.t...x7f3a4b5c6d7e> == <tests.t...x7f3a4b5c6d7f>", "assert <tests.t...0x?...0x?>"),  # pytest: two cuts
        ("[1, 2, ...]", "[1, 2, ...]"),  # an elision of items: nothing moves
        ("[<Foo at 0x1>, <Foo at 0x2>, ...]", "[<Foo at 0x?>, <Foo at 0x?>, ...]"),
        ("cut here...", "cut here..."),
        ("<Foo at 0x7f3a4b5c6d7e> then...", "<Foo at 0x?> then..."),  # the harness's own cut, made after masking
        ("WAIT...  0XAB", "WAIT...  0XAB"),
        ("0x7FFE12AB34CD", "0x?"),
    ],
)
def test_crafted_texts(text: str, masked: str) -> None:
    assert mask_addresses(text) == masked


def test_a_cut_keeps_only_what_no_address_length_moves() -> None:
    """The head up to the end of its first address, the tail from its last: the rest shifts with lengths."""
    short = _ellipsize("[<a.Foo object at 0x1a2b3c4>, <a.Foo object at 0x1a2b3c5>, <a.Foo object at 0x1a2b3c6>]", 60)
    long = _ellipsize(
        "[<a.Foo object at 0x7f3a4b5c6d7e>, <a.Foo object at 0x7f3a4b5c6d7f>, <a.Foo object at 0x7f3a4b5c6d80>]", 60
    )
    assert short != long and mask_addresses(short) == mask_addresses(long) == "[<a.Foo object at 0x?...0x?>]"


_FOO = st.sampled_from(["<a.Foo object at 0x{}>", "<Deferred at 0x{} current result: None>", "<function f at 0x{}>"])
_HEX = st.text("0123456789abcdef", min_size=1, max_size=16)


@settings(max_examples=300, deadline=None)
@given(
    shapes=st.lists(_FOO, min_size=1, max_size=5),
    first=st.lists(_HEX, min_size=5, max_size=5),
    second=st.lists(_HEX, min_size=5, max_size=5),
    maxsize=st.integers(4, 200),
    around=st.sampled_from([("", ""), ("kept: ", " (3 jobs)"), ("assert ", " == []")]),
    listed=st.booleans(),
)
def test_a_cut_repr_masks_alike_whatever_the_addresses_and_their_lengths(shapes, first, second, maxsize, around, listed) -> None:
    def whole(addresses: list[str]) -> str:
        reprs = [shape.format(address) for shape, address in zip(shapes, addresses)]
        return "[" + ", ".join(reprs) + "]" if listed else reprs[0]

    def text(addresses: list[str]) -> str:
        return around[0] + _ellipsize(whole(addresses), maxsize) + around[1]

    # A repr cut in one process and not in the other (its length between the two) cannot be
    # reconciled: one holds what the other lost. Only that boundary is left out.
    assume((len(whole(first)) > maxsize) == (len(whole(second)) > maxsize))
    assert mask_addresses(text(first)) == mask_addresses(text(second)), (text(first), text(second))


def test_describe_and_describe_error_use_it() -> None:
    one, other = Holder(), Holder()
    assert describe_error(AssertionError(saferepr(one, maxsize=30))) == describe_error(AssertionError(saferepr(other, maxsize=30)))
    assert describe(reprlib.repr(one)) == describe(reprlib.repr(other))


_PROPERTY = '''
import os
from harness import JobSpec, Schedule, Submit, Target, check, run_schedule
from scenarios.pools import SemaphorePool


class Holder:
    pass


def nothing_held(run):
    held = {"held": Holder(), "n": 1}
    assert held == {}, f"the pool still holds {held!r}"


def same_holder(run):
    assert Holder() == Holder()


def holders_released(run):
    assert [Holder() for _ in range(9)] == []


target = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, invariants=(nothing_held, same_holder, holders_released))


def test_write_trace():
    run = run_schedule(target, Schedule((Submit(0, 0, JobSpec()),)))
    messages = [f"{v.invariant} {v.message}" for v in check(run) if v.invariant.startswith("user.")]
    with open(os.environ["TRACE_OUT"], "w") as out:
        out.write("\\n".join(run.trace.lines() + messages))
'''


def test_a_user_invariant_with_pytests_cut_reprs_gives_the_same_trace_in_two_processes(tmp_path) -> None:
    """pytest rewrites the invariant's asserts (its module is a test module): the messages hold its cut reprs.

    The trace records what the plain statements say (``harness.run.rewritten``); the violations'
    messages, printed and saved in the failure file, hold pytest's explanations too.
    """
    (tmp_path / "test_held.py").write_text(_PROPERTY)
    traces = []
    for n in range(2):
        out = tmp_path / f"trace{n}.txt"
        env = {**os.environ, "TRACE_OUT": str(out), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "test_held.py"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        traces.append(out.read_bytes())
    lines = traces[0].decode().splitlines()
    fails = [line for line in lines if " user.fail " in line]
    assert [line.partition(" -1.0 ")[2] for line in fails] == [
        "nothing_held: the pool still holds {'held': <test_held.Holder object at 0x?>, 'n': 1}",
        "same_holder: assertion failed",
        "holders_released: assertion failed",
    ]
    messages = [line for line in lines if line.startswith("user.")]
    assert len(messages) == 3 and all("0x?" in line for line in messages), messages
    # each with pytest's explanation: after the message, or alone where the assert has none
    assert all("\\nassert " in line or line.split(" ", 1)[1].startswith("assert ") for line in messages), messages
    assert any("..." in line for line in messages), messages  # pytest did cut a repr
    assert traces[0] == traces[1]


def test_a_long_line_of_many_cuts_is_masked_in_time_linear_in_its_length() -> None:
    # An error or invariant message is masked whole (never cut first): each ``...`` of a line was tested by
    # copying the text on each side of it, so a 2 MB line of 400,000 of them took about 30 s (in a run,
    # under its 10 s limit: a hang blamed on the target). The same text, masked as before, in well under that.
    import time

    line = "<A at 0x7f00>" + "x...y" * 400_000
    started = time.process_time()
    masked = mask_addresses(line)
    assert time.process_time() - started < 5.0
    assert masked == "<A at 0x?" + "...yx" * 399_999 + "...y"  # the head up to its address; no other address
    assert mask_addresses("<A at 0x7f00>" + "x...y" * 3) == "<A at 0x?...yx...yx...y"


def test_a_cut_landing_between_two_items_is_a_cut_not_an_elision() -> None:
    """A middle cut may fall exactly on ", " on both sides and look like numpy's ``[0, 1, ..., 9]``; with
    other address lengths the same repr is cut inside an item. Both must mask alike (Hypothesis found it)."""
    inside = "[<function f at 0x0>, <a....>, <a.Foo object at 0x0>]"
    between = "[<function f at 0x0000>, ..., <a.Foo object at 0x00>]"
    assert mask_addresses(inside) == mask_addresses(between) == "[<function f at 0x?...0x?>]"
