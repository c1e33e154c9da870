"""Keeping a seeded search a function of its seed: Hypothesis's local constants switched off.

Recent Hypothesis versions mix into generation the literals (numbers,
strings) found in every "local" module loaded in the process, meaning any
module that is not the standard library or an installed package: the
harness itself when installed with ``pip install -e``, the user's targets,
any module a test wrote to a temporary directory. Which schedules a seed
produces then depends on which modules happen to be imported: a worker
process, the command line and a test suite each import a different set, and
adding a module to the harness changes every seeded search. A campaign's
promise, the same seed and target give the same search, needs that off.

There is no public setting for it, so ``without_local_constants`` swaps the
private function that collects them for one that returns nothing, for the
duration of a search, and drops the cache built from them. On a Hypothesis
without the feature (or whose internals moved) it does nothing: generation
there does not read local modules, or the harness's tests that pin seeds
will say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def without_local_constants() -> Iterator[None]:
    """Within the block, Hypothesis generates as if no local module were loaded."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a Hypothesis laid out otherwise
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    constants = getattr(providers, "Constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if original is None or constants is None:
        yield
        return
    empty = constants()

    def no_local_constants() -> Any:
        return empty

    _clear(cache)
    providers._get_local_constants = no_local_constants
    try:
        yield
    finally:
        providers._get_local_constants = original
        _clear(cache)


def _clear(cache: Any) -> None:
    """Forget the permitted constants computed with (or without) the local ones."""
    inner: object = getattr(cache, "cache", None)
    if hasattr(inner, "clear"):
        inner.clear()
