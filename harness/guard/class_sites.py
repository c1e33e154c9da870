"""Class attributes holding a function the guard stands in for, taken before the guard was installed.

``class Poller: later = reactor.callLater`` (or ``now = time.monotonic``) in a
module imported before the run binds the real function under the class's
name, where the patch of ``reactor.callLater`` (or of ``time.monotonic``)
never reaches, as ``from time import sleep`` binds it in a module's globals.
The guard scans the classes defined at the top level of each of the target's
modules (not the standard library's, Twisted's or the harness's:
``harness.guard.lent_time.KEPT_REAL``; ``harness.guard.escapes._binding_sites``)
and binds its stand-ins there for the run, each as a
``staticmethod`` so that an instance calls it as it called the function
(``self.later(1, f)``: neither a bound method nor a builtin takes ``self``).

Not reached: attributes of classes defined inside functions or other classes,
and the attributes of instances made before the run (``self._later =
reactor.callLater`` in an ``__init__``): an object is found only by walking
the heap, which the guard does not do.
"""

from __future__ import annotations

from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

from harness.guard.lent_time import LentClock


def defined_in(value: Any, namespace: dict[str, Any]) -> bool:
    """Whether ``value``, a global of the module whose namespace is ``namespace``, is a class defined there."""
    return issubclass(type(value), type) and vars(value).get("__module__") == namespace.get("__name__")


#: The kinds of value a function bound before the guard was installed has: a reactor's bound method, a builtin
#: (``time.sleep``, ``time.monotonic``), or a staticmethod of one; and a ``LentClock`` (bound meanwhile).
_BOUND_TYPES: frozenset[type] = frozenset({MethodType, BuiltinFunctionType, staticmethod, LentClock})
_OR_FUNCTIONS: frozenset[type] = _BOUND_TYPES | {FunctionType}


def candidates(cls: type, functions: bool = False) -> list[tuple[str, Any]]:
    """(name, value) of each attribute ``cls`` itself holds that may be a function bound under another name (a
    staticmethod's function in place of it); ``functions``: plain functions too (a guard's stand-in, bound by a
    class defined while it was installed), else they are skipped at a glance, most attributes being methods
    (a scan looks at every attribute of every class of the process: about 30,000)."""
    kinds = _OR_FUNCTIONS if functions else _BOUND_TYPES
    return [
        (key, value.__func__ if type(value) is staticmethod else value)
        for key, value in list(vars(cls).items())
        if type(value) in kinds and type(key) is str
    ]


def held(cls: type, key: str) -> Any:
    """What ``cls`` itself holds under ``key`` (a staticmethod's function in place of it), or None."""
    value = vars(cls).get(key)
    return value.__func__ if isinstance(value, staticmethod) else value


def bind(cls: type, key: str, stand_in: Any) -> Any:
    """Set ``cls.key`` to ``stand_in`` as a staticmethod; return what it held before (to give to ``unbind``), or
    None when the class refuses it (a built-in or an extension's type)."""
    before = vars(cls).get(key)
    try:
        type.__setattr__(cls, key, staticmethod(stand_in))
    except (TypeError, AttributeError):
        return None
    return before


def unbind(cls: type, key: str, stand_in: Any, before: Any) -> None:
    """Put ``before`` back in ``cls.key`` unless something other than ``stand_in`` was bound there since."""
    value = vars(cls).get(key)
    if isinstance(value, staticmethod) and value.__func__ is stand_in:
        type.__setattr__(cls, key, before)
