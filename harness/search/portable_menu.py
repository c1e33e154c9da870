"""A campaign's menu as it crosses to a worker process: its operations by name, rebuilt from the target there.

A ``Menu``'s operations carry Hypothesis strategies, which cannot be pickled,
so ``run_workers`` cannot send a menu to its ``spawn`` workers as it is. What
crosses instead is the menu without its operations' strategies plus the
operations' names; each worker loads the target itself and takes the
strategies from it (``rebuilt``). That is exact only for operations whose
strategies are the target's own (its default menu's, or its declared
operations' where the menu narrows them: each name crosses with which it
was); any other (an ad-hoc operation, or the target's name with other
strategies) cannot be rebuilt, and ``portable`` refuses it before a worker
starts, naming the operation and the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from harness.model.menu import Menu
from harness.model.operations import Operation
from harness.model.target import Target


@dataclass(frozen=True)
class PortableMenu:
    """A menu that pickles: every field but the operations, and the operations' names, in order; ``declared``
    the positions of those drawn from the target's declared operation where its default menu narrows it."""

    menu: Menu
    operations: tuple[str, ...]
    declared: frozenset[int] = frozenset()

    def rebuilt(self, target: Target) -> Menu:
        """The menu sent, its operations' strategies taken from ``target`` (the worker's own load of it)."""
        own, declared = own_operations(target), _declared_operations(target)
        return replace(self.menu, operations=tuple(
            (name, declared[name] if i in self.declared else own[name]) for i, name in enumerate(self.operations)))


def own_operations(target: Target) -> dict[str, tuple[Any, ...]]:
    """The argument strategies a worker can rebuild by name: the target's declared operations',
    overridden by its default menu's (a target may narrow an operation's arguments in its menu)."""
    own = _declared_operations(target)
    own.update(target.default_menu().operations)
    return own


def _declared_operations(target: Target) -> dict[str, tuple[Any, ...]]:
    """The argument strategies of the target's declared operations, as declared (before its menu's)."""
    return {name: op.args if isinstance(op, Operation) else () for name, op in target.operations.items()}


def portable(menu: Menu, target: Target) -> PortableMenu:
    """``menu`` as it can cross to a worker; ``ValueError`` (one line) for an operation a worker cannot rebuild."""
    own, declared = own_operations(target), _declared_operations(target)
    from_declared: set[int] = set()
    for i, (name, args) in enumerate(menu.operations):
        if name in own and own[name] != args and declared.get(name) == args:
            from_declared.add(i)  # the operation as declared, where the target's menu narrows it (audit 13)
            continue
        if name not in own or own[name] != args:
            problem = "is not one of the target's operations" if name not in own else (
                "draws its arguments from other strategies than the target's own")
            raise ValueError(
                f"the menu's operation {name!r} {problem}, so worker processes cannot rebuild it (strategies cannot "
                f"be pickled; each worker takes them from the target it loads): declare it in the target's "
                f"operations (or its menu), or run with one worker"
            )
    return PortableMenu(replace(menu, operations=()), tuple(name for name, _ in menu.operations),
                        frozenset(from_declared))
