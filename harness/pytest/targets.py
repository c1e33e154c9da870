"""Naming targets: a failure file replays only what it can import, so every target needs a ``module:attr``.

Tests may hand the plugin a ``Target`` object instead of its string. That is
fine when the object is a module-level attribute somewhere: the plugin finds
the name and checks that loading it gives back the very same object. A target
built inside a function has no such name, and its failures could not be
replayed, so the plugin asks for the string instead of guessing.
"""

from __future__ import annotations

import sys
from types import ModuleType

from harness.errors import TargetError
from harness.model.target import Target, load_target


def _looks_like_test_module(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf.startswith("test_") or leaf.endswith("_test") or leaf == "conftest" or name == "__main__"


def _candidate_modules(target: Target) -> list[ModuleType]:
    """The module that defined ``build`` first, then library modules, then test modules."""
    modules = [m for m in list(sys.modules.values()) if isinstance(m, ModuleType)]
    home = sys.modules.get(getattr(target.build, "__module__", None) or "")
    modules.sort(key=lambda m: (m is not home, _looks_like_test_module(m.__name__)))
    return modules


def spec_of(target: Target) -> str | None:
    """The ``module:attr`` string that loads exactly ``target``, or None if it has none."""
    for module in _candidate_modules(target):
        try:
            names = [name for name, value in list(vars(module).items()) if value is target]
        except TypeError:
            continue
        for name in sorted(names, key=lambda n: (n.startswith("_"), n)):
            spec = f"{module.__name__}:{name}"
            try:
                if load_target(spec) is target:
                    return spec
            except TargetError:
                continue
    return None


def resolve_target(target: Target | str) -> tuple[str, Target]:
    """The string and the object for ``target``, given as either; ``TargetError`` if it has no string."""
    if isinstance(target, str):
        return target, load_target(target)
    if isinstance(target, Target):
        spec = spec_of(target)
        if spec is None:
            label = target.description or getattr(target.build, "__qualname__", "target")
            raise TargetError(
                f"the Target object {label!r} is not a module-level attribute "
                "of any imported module, so a failure file could not name it for replay; define it at module level "
                "or pass it as 'package.module:attribute'"
            )
        return spec, target
    raise TargetError(
        f"expected a target string 'package.module:attribute' or a harness.Target, "
        f"got {type(target).__name__} {target!r}"
    )
