"""Which lines and arcs of the target's own code a run executes: the guided search's coverage feedback.

``ArcTracer`` is a ``sys.settrace`` tracer that looks only at frames whose
code lives in the target's package (``target_source``: the top-level package
or module of the target's spec; the HTML report's coverage measures the
narrower package holding the target's module). The global trace function returns None for every other frame
(the harness, Twisted, the standard library), so those frames get no line
events; a target frame records each arc ``(file, from line, to line)`` it
takes, a function's entry arc coming from minus its first line and its exit
going to it, as coverage.py numbers them. Lines need no set of their own: a
line run is the end of an arc.

Cost: on Python 3.11 any trace function slows every frame (every call
reaches the global trace function), about 2x on the harness's own code, and
each traced line costs a Python call; so only the first
``CALLS_PER_FUNCTION`` calls of each target function in a run are traced,
tracing stops after ``CALLS_PER_RUN`` calls of the target's functions, and
the search watches only some examples (``harness.search.coverage_feedback``).

The tracer never competes with another one: if a trace function is already
installed when ``watching()`` starts (pytest-cov, ``coverage run``, the
HTML report's ``CoverageProbe``, a debugger), it stands aside and records
nothing, so the other tool keeps every line; otherwise it installs itself and
restores what was there (None) when the block ends, even on an exception.
It reads no clock and changes nothing the run sees, so traces are the same
with and without it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, Callable

#: An arc: (file number, from line, to line); negative lines are a function's entry or exit.
Arc = tuple[int, int, int]

_Tracer = Callable[[FrameType, str, Any], Any]

#: Calls of one function traced per watched block; later calls run untraced. A ticker's
#: callback runs thousands of times in a long run, nearly always along the same arcs, and
#: tracing every call made such runs several times slower.
CALLS_PER_FUNCTION = 16
#: Calls of the target's functions after which a watched block stops tracing altogether. Every
#: call of the harness and Twisted still reaches the global trace function (to be told no),
#: which made a long run (a ticker stalled over thousands of ticks) 9x slower; counting the
#: target's own calls, which its deterministic trace fixes, keeps the cut deterministic.
CALLS_PER_RUN = 1_000


def target_source(target_spec: str) -> tuple[str, list[Path]] | None:
    """The name and the files or directories of the target's top-level package or module.

    None when it cannot be found; loading the target will then say why.
    Nothing is imported but, for a dotted name, nothing either: only the
    top-level name is looked up.
    """
    module = target_spec.partition(":")[0]
    top = module.split(".", 1)[0]
    if not top:
        return None
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as load_target does
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return top, [Path(location).resolve() for location in spec.submodule_search_locations]
    if spec.origin and spec.origin.endswith(".py"):
        return top, [Path(spec.origin).resolve()]
    return None


class ArcTracer:
    """Records the arcs that code under ``paths`` (directories or ``.py`` files) takes inside ``watching()``.

    Only the first ``calls_per_function`` calls of each function in a block
    are traced, and tracing stops after ``calls_per_run`` calls of the
    target's functions (caps on the cost of long runs; an arc first taken
    later goes unseen). ``arcs`` holds the arcs of the last watched block (cleared when the next
    one starts); ``active`` says whether that block was traced at all (False
    when another trace function was installed).
    """

    def __init__(
        self, paths: Sequence[Path], calls_per_function: int = CALLS_PER_FUNCTION, calls_per_run: int = CALLS_PER_RUN
    ) -> None:
        self.dirs = tuple(str(p) + os.sep for p in paths if p.is_dir())
        self.calls_per_function = calls_per_function
        self.calls_per_run = calls_per_run
        self._target_calls = 0
        self._calls: dict[CodeType, int] = {}  # calls of each function traced in this block
        self.files = frozenset(str(p) for p in paths if not p.is_dir())
        self.arcs: set[Arc] = set()
        self.active = False
        self._numbers: dict[str, int | None] = {}  # co_filename -> file number, None when not the target's
        self._names: dict[str, int] = {}

    @classmethod
    def of(cls, target_spec: str) -> ArcTracer | None:
        """A tracer of the target's package, or None when its source cannot be found."""
        found = target_source(target_spec)
        return cls(found[1]) if found is not None else None

    @contextmanager
    def watching(self) -> Iterator[ArcTracer]:
        """Trace the target's code while the block runs, unless another tracer is installed."""
        self.arcs = set()
        self._calls = {}
        self._target_calls = 0
        previous = sys.gettrace()
        self.active = previous is None
        if not self.active:
            yield self
            return
        sys.settrace(self._call)
        try:
            yield self
        finally:
            sys.settrace(previous)

    def _number(self, filename: str) -> int | None:
        """The file's number if it is the target's code (decided once per file name), else None."""
        path = os.path.abspath(filename)
        number = None
        if path in self.files or path.startswith(self.dirs):
            number = self._names.setdefault(path, len(self._names))
        self._numbers[filename] = number
        return number

    def _call(self, frame: FrameType, event: str, arg: Any) -> _Tracer | None:
        """The global trace function: a local tracer for the target's frames, None for all others."""
        code = frame.f_code
        filename = code.co_filename
        number = self._numbers[filename] if filename in self._numbers else self._number(filename)
        if number is None:
            return None
        self._target_calls += 1
        if self._target_calls > self.calls_per_run:
            sys.settrace(None)  # a long run: stop paying for every call of the harness and Twisted too
            return None
        calls = self._calls.get(code, 0)
        if calls >= self.calls_per_function:
            return None
        self._calls[code] = calls + 1
        arcs = self.arcs
        entry = -code.co_firstlineno
        last = entry

        def local(frame: FrameType, event: str, arg: Any) -> _Tracer:
            nonlocal last
            if event == "line":
                line = frame.f_lineno
                arcs.add((number, last, line))
                last = line
            elif event == "return":
                arcs.add((number, last, entry))
            return local

        return local
