"""Escapes from virtual time: the global reactor and real sleeps, refused while a run is going on.

A subject must schedule through the clock its target was built with. One
that calls the global reactor instead (``reactor.callLater``,
``deferLater(reactor, ...)``, a ``LoopingCall`` whose ``clock`` was never
set, the global ``Cooperator``) or sleeps for real escapes the harness: its
calls never fire under the fault clock, and the run's verdict means nothing.

While a run is going on, ``EscapeGuard`` replaces those entry points (on the
global reactor object and in the ``time`` module) with ones that record the
first escape and raise ``Escaped`` (a ``BaseException``, so ``except
Exception`` in the target does not hide it); the runner turns it into a
``TargetError`` whose message says how to inject the clock. A target declaring
``global_reactor="lend"`` has the reactor's time methods (``LENT_METHODS``:
``callLater``, ``seconds``, ``getDelayedCalls``, ``callWhenRunning``) lent
instead: while its run is armed they act on the run's clock (``arm(clock)``),
and the rest stay refused; so are the ``time`` module's clocks called from the
target's code (``harness.guard.lent_time``). A reactor method taken before the guard was
installed (``callLater = reactor.callLater`` in a module imported first) is
a bound method the patch on the reactor never reaches: such module globals,
and such attributes of the classes defined in the target's modules (``class C:
later = reactor.callLater``; ``harness.guard.class_sites``), are patched for the run
too, refused or lent as the reactor's own. Everything is
restored when the run ends, however it ends. Calls from other threads pass
through untouched, and so does every call while no run is armed: a
campaign installs the patches once around all its runs
(``harness.run.session``) and arms them for each run only.

The process is guarded the same way: ``os._exit`` (a subject must never
exit the process) and ``os.fork`` (a forked child would go on to run the
campaign's own code) are refused too, and so are real timers
(``signal.alarm``, ``signal.setitimer``): they escape virtual time, a
pending one outlives the run and fires later inside another run or the
campaign's own code, and ``ITIMER_REAL`` is the watchdog's during a run. So is
anything that would disarm the watchdog, whose ``SIGALRM`` ends a run that
hangs: ``signal.signal(SIGALRM, ...)`` (a target that ignores it and then
spins would never be stopped), ``siginterrupt``, ``pthread_sigmask`` blocking
it, ``sigwait`` and its kin waiting for it; and, while a campaign handles them
(``harness.guard.signals``), the same calls on SIGINT and SIGTERM, which stop
it gracefully (a target that ignored SIGTERM in its runs would lose a CI
cancel, and the campaign's summary with it). Given another signal they pass
(its handler is put back when the run ends). A name bound at import
(``from time import sleep``, ``from os import _exit``) is the same function
under another name: every module's global that holds one of the refused
functions is patched for the run as well (the modules are scanned again
only when new ones were imported). A run that moved the working directory
or changed a signal handler (``os.chdir``, ``signal(SIGINT, SIG_IGN)``,
the watchdog's ``SIGALRM``) has both put back when it ends, and so has one that replaced the ``time`` module's
clocks (``time.monotonic = ...``: the campaign's budget and timings read them); a process forked out of a run anyway (by C
code) exits the moment it reaches the guard again, so a child never runs
the campaign's code.

Importing ``twisted.internet.reactor`` installs the default reactor if none
is installed yet; the guard does that on the first run, after the target's
module was imported, so a target that installs a reactor of its own at
import time keeps it.
"""

from __future__ import annotations

import contextlib
import importlib
import operator
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from types import MethodType, TracebackType
from typing import Any, NamedTuple, NoReturn

from harness.guard import class_sites, lent_time, signals
from harness.guard.forks import FORKS

try:  # CPython's C module behind ``signal``: the same handlers, without ``signal``'s enum conversion of each
    _signal: Any = importlib.import_module("_signal")
except ImportError:  # another Python: the public functions do the same, a little slower
    _signal = signal

_INJECT = (
    "pass the clock given to build(clock) to your code instead of using the global reactor "
    "(e.g. deferLater(clock, ...), LoopingCall.clock = clock)"
)

#: How the refusal of a method the run's clock can stand in for ends: the option that lends it.
_OR_LEND = "; or, for code written on the global reactor, declare Target(global_reactor='lend') to lend it the run's clock"

#: The global reactor's methods a run must not call, and the fix for each.
REACTOR_METHODS: dict[str, str] = {
    "callLater": _INJECT + _OR_LEND,
    "callWhenRunning": _INJECT + _OR_LEND,
    "seconds": "read the time from the clock given to build(clock) (clock.seconds()), not the global reactor" + _OR_LEND,
    "getDelayedCalls": "ask the clock given to build(clock) for its calls (clock.getDelayedCalls())" + _OR_LEND,
    "run": "never run the reactor inside a target: the harness drives the clock given to build(clock)",
    "stop": "never stop the reactor inside a target: the harness drives the clock given to build(clock)",
    "callFromThread": "threads run outside virtual time: call it on the clock given to build(clock) (clock.callLater(0, f))",
    "callInThread": "threads run outside virtual time: give the target a synchronous stand-in for the threaded work",
    "listenTCP": "a target must not open real sockets: give it a fake transport",
    "connectTCP": "a target must not open real sockets: give it a fake transport",
    "listenUDP": "a target must not open real sockets: give it a fake transport",
    "spawnProcess": "a target must not spawn processes: give it a fake",
}



def _when_running(clock: Any, callable: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """``reactor.callWhenRunning`` on a lent reactor: the harness is running it, so the call is made now (as a
    running reactor makes it), and returns None as a running reactor's does."""
    callable(*args, **kwargs)


#: The reactor methods a target's ``global_reactor="lend"`` lends to the run's clock while a run is armed, each
#: as a function of (the clock, the call's arguments); every other one of ``REACTOR_METHODS`` stays refused.
LENT_METHODS: dict[str, Callable[..., Any]] = {
    "callLater": lambda clock, /, *args, **kwargs: clock.callLater(*args, **kwargs),
    "seconds": lambda clock: clock.seconds(),
    "getDelayedCalls": lambda clock: clock.getDelayedCalls(),
    "callWhenRunning": _when_running,
}

#: Functions of the ``time`` module a run must not call, and the fix for each.
TIME_FUNCTIONS: dict[str, str] = {
    "sleep": "wait with clock.callLater or deferLater(clock, seconds) instead of sleeping for real",
}


_REAL_TIMER = (
    "a real timer fires in wall-clock time, after the run or inside another, and SIGALRM is the harness's "
    "watchdog: schedule with clock.callLater(seconds, f) on the clock given to build(clock) instead"
)

_WATCHDOG = (
    "SIGALRM is the harness's watchdog, the wall-clock limit that ends a run that hangs, and a run must not "
    "replace its handler, block it or wait for it: leave SIGALRM to the harness and schedule with "
    "clock.callLater(seconds, f) on the clock given to build(clock)"
)
_STOPPING = (
    "SIGINT and SIGTERM stop the campaign (Ctrl-C, a CI system cancelling the job: what was found is saved and "
    "reported), and a run must not replace their handlers, block them or wait for them: leave them to the harness"
)

_BLOCKING: tuple[int, ...] = tuple(getattr(signal, name) for name in ("SIG_BLOCK", "SIG_SETMASK") if hasattr(signal, name))

#: The ``signal`` functions that disarm the harness's stops when given SIGALRM, or SIGINT or SIGTERM while a
#: campaign handles them (the handler replaced or made to restart system calls, the signal blocked or waited
#: for), each as (function, the argument naming the signal or signal set: position and keyword, whether it is
#: a set, the ``how`` values that block).
_SIGNAL_FUNCTIONS: dict[str, tuple[Callable[..., Any] | None, int, str, bool, tuple[int, ...]]] = {
    "signal.signal": (getattr(signal, "signal", None), 0, "signalnum", False, ()),
    "_signal.signal": (getattr(_signal, "signal", None), 0, "signalnum", False, ()),
    "signal.siginterrupt": (getattr(signal, "siginterrupt", None), 0, "signalnum", False, ()),
    "signal.pthread_sigmask": (getattr(signal, "pthread_sigmask", None), 1, "mask", True, _BLOCKING),
    "_signal.pthread_sigmask": (getattr(_signal, "pthread_sigmask", None), 1, "mask", True, _BLOCKING),
    "signal.sigwait": (getattr(signal, "sigwait", None), 0, "sigset", True, ()),
    "_signal.sigwait": (getattr(_signal, "sigwait", None), 0, "sigset", True, ()),
    "signal.sigwaitinfo": (getattr(signal, "sigwaitinfo", None), 0, "sigset", True, ()),
    "signal.sigtimedwait": (getattr(signal, "sigtimedwait", None), 0, "sigset", True, ()),
}
_SIGALRM: int | None = int(signal.SIGALRM) if hasattr(signal, "SIGALRM") else None

#: Functions of the process a run must not call, wherever they are bound, and the fix for each.
PROCESS_FUNCTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "time.sleep": (time.sleep, TIME_FUNCTIONS["sleep"]),
    "os._exit": (os._exit, "a subject must never exit the process: raise an exception or return a failed Deferred"),
    "os.fork": (os.fork, "a subject must not fork: the child would run the harness's campaign; give it a fake"),
    # Real timers: a pending one outlives the run (it fires in a later run or in the campaign's own code),
    # and setting or clearing ITIMER_REAL replaces the watchdog's timer of the run.
    **{
        f"signal.{name}": (getattr(signal, name), _REAL_TIMER)
        for name in ("alarm", "setitimer")
        if hasattr(signal, name)
    },
    # Disarming the watchdog or a campaign's stop signals (only when given one of them: ``disarmed``).
    **{
        label: (function, _WATCHDOG)
        for label, (function, *_) in _SIGNAL_FUNCTIONS.items()
        if function is not None and _SIGALRM is not None
    },
}


def disarmed(label: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int | None, tuple[Any, ...], dict[str, Any]]:
    """The signal a call of ``_SIGNAL_FUNCTIONS[label]`` inside a run would take from the harness (None: none),
    and the arguments to pass on (a signal set given as an iterator is read once, and passed on as a tuple).

    SIGALRM is always the harness's (the watchdog), SIGINT and SIGTERM while a campaign handles them
    (``harness.guard.signals.handled``); another signal's handler may change: it is put back when the run ends.
    """
    _, position, keyword, is_set, blocking = _SIGNAL_FUNCTIONS[label]
    if len(args) > position:
        value = args[position]
    elif keyword in kwargs:
        value = kwargs[keyword]
    else:
        return None, args, kwargs  # (the original raises its own TypeError)
    guarded = signals.handled() | {_SIGALRM}
    try:
        if not is_set:
            return next((signum for signum in guarded if signum == value), None), args, kwargs
        if not isinstance(value, (set, frozenset, list, tuple, range)):
            value = tuple(value)
            if len(args) > position:
                args = (*args[:position], value, *args[position + 1 :])
            else:
                kwargs = {**kwargs, keyword: value}
        named = next((signum for signum in guarded if any(signum == each for each in value)), None)
        if named is not None and blocking:
            how = args[0] if args else kwargs.get("how")
            if not any(how == blocks for blocks in blocking):
                named = None
        return named, args, kwargs
    except Exception:  # a value the original refuses itself
        return None, args, kwargs


#: Modules whose globals are never patched: the guard's own, the watchdog's, which sets the run's real timer and
#: SIGALRM's handler, and those that set the handlers of the signals that stop a campaign (with the originals).
_UNGUARDED_MODULES = frozenset({__name__, "harness.guard.watchdog", "harness.guard.signals", "harness.guard.supervise"})

#: Signals whose handlers a run may not keep changed (SIGALRM's is the watchdog's while a session lasts).
RESTORED_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGPIPE", "SIGCHLD", "SIGALRM")
    if hasattr(signal, name)
)

#: The ``time`` module's clocks, put back after a run that replaced them (the campaign times itself with them).
RESTORED_CLOCKS: tuple[str, ...] = ("monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time", "time_ns")

#: Where the refused functions are bound: (module dict, name, label); rebuilt when modules are imported.
_sites: list[tuple[dict[str, Any], str, str]] = []
_scanned_modules: tuple[int, object] = (-1, None)
#: The wrappers bound in place of a refused function now (id -> label): a scan made while they are bound
#: (``arm`` after an import, a nested guard) counts their sites, which hold the original again once the guard
#: is uninstalled; missing them, the cached scan would leave every later guard of the process unpatched there.
_bound_wrappers: dict[int, str] = {}
#: The label of a site bound to a ``functools.partial`` of a refused function or reactor method, before its label.
_PARTIAL = "partial of "


def _module_globals() -> Iterator[tuple[dict[str, Any], str, Any]]:
    """(namespace, name, value) of every global of every loaded module the guard watches."""
    for name, module in list(sys.modules.items()):
        if name in _UNGUARDED_MODULES:
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        try:
            items = list(namespace.items())
        except RuntimeError:  # changed by another thread while read
            continue
        for key, value in items:
            yield namespace, key, value


def _loaded() -> tuple[int, object]:
    """What changes when a module is imported or run again: how many are loaded, and the last one (its name
    and module).

    ``importlib.reload`` moves the module it runs again to the end of ``sys.modules``, so it changes
    the last one unless that module was the last already (that reload goes unseen: a known hole).
    """
    modules = sys.modules
    name, module = next(reversed(modules.items()), (None, None))
    return len(modules), (name, id(module))  # (an id: no comparing a module object, whatever its __eq__)


def _binding_sites(reactor: Any = None) -> list[tuple[Any, str, str]]:
    """Every module global bound to a refused process function (``time.sleep``, ``from time import sleep``...),
    and, given the global ``reactor``, to one of its ``REACTOR_METHODS`` taken before the guard was installed
    (``callLater = reactor.callLater`` at import: a bound method, which the patch on the reactor never reaches);
    in the target's modules (``lent_time.lent_to``: not the standard library's, Twisted's, the harness's...),
    every one bound to a clock a run may lend (``lent_time.LENT_CLOCKS``, ``from time import monotonic``), and
    every attribute bound to any of them in a class defined at a module's top level (``class C: later =
    reactor.callLater``; ``harness.guard.class_sites``). Each as (owner, name, label): the owner is the module's
    namespace (a dict), or the class."""
    global _scanned_modules
    loaded = _loaded()
    if loaded == _scanned_modules:
        return _sites
    by_id = {id(function): label for label, (function, _) in PROCESS_FUNCTIONS.items()}
    by_id.update(_bound_wrappers)
    by_id_lent = {**lent_time.labels_by_id(), **by_id}  # (in the target's modules: the clocks a run may lend too)
    time_namespace = vars(time)

    found: list[tuple[Any, str, str]] = []
    module: dict[str, Any] | None = None
    table, name, targets = by_id, None, False
    for namespace, key, value in _module_globals():  # (a loop over every global of the process: kept tight)
        if namespace is not module:
            module, name = namespace, namespace.get("__name__")
            targets = namespace is not time_namespace and lent_time.lent_to(name)  # the target's code
            table = by_id_lent if targets else by_id
        kind = type(value)
        label = table.get(id(value)) if kind is not MethodType else _label_of(value, table, reactor)
        if label is None and kind is partial:  # SLEEP = partial(time.sleep, 1), made at import
            inner = _label_of(value.func, table, reactor)
            label = None if inner is None else _PARTIAL + inner
        if label is not None:
            if isinstance(key, str):
                found.append((namespace, key, label))
        elif targets and issubclass(kind, type) and vars(value).get("__module__") == name:  # a class defined there
            for attribute, held in class_sites.candidates(value):
                label = _label_of(held, table, reactor)
                if label is not None:
                    found.append((value, attribute, label))
    _sites[:] = found
    _scanned_modules = loaded
    return _sites


def _forget_wrapper(wrapper: int) -> None:
    """The wrapper with this id is no longer bound anywhere (``_bound_wrappers``)."""
    _bound_wrappers.pop(wrapper, None)


def _label_of(value: Any, by_id: dict[int, str], reactor: Any) -> str | None:
    """The label of a refused function (by id, in ``by_id``) or of a bound method of the global ``reactor``
    among ``REACTOR_METHODS`` that ``value`` is; None if it is neither."""
    label = by_id.get(id(value))
    if label is None and type(value) is MethodType and reactor is not None and value.__self__ is reactor:
        name = value.__name__
        label = f"reactor.{name}" if name in REACTOR_METHODS else None
    return label


#: The clocks of ``RESTORED_CLOCKS`` this platform has, and one C call that reads them all as a tuple.
_CLOCK_NAMES: tuple[str, ...] = tuple(name for name in RESTORED_CLOCKS if hasattr(time, name))
_read_clocks: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*_CLOCK_NAMES)  # (six names: a tuple)
#: ``RESTORED_SIGNALS`` as plain numbers, and the C module's ``getsignal``.
_SIGNUMS: tuple[int, ...] = tuple(int(signum) for signum in RESTORED_SIGNALS)
_getsignal: Callable[[int], Any] = _signal.getsignal
#: The C module's ``signal`` as imported: the guard patches the public ones (``_SIGNAL_FUNCTIONS``).
_set_handler = signals.set_handler


class _Kept(NamedTuple):
    """The process state a run began with, put back when it ends (``EscapeGuard._keep_process_state``)."""

    cwd: bytes | None
    umask: int
    recursion: int
    clocks: tuple[Any, ...]
    #: One per ``_SIGNUMS``; None off the main thread (nothing is put back there).
    handlers: tuple[Any, ...] | None


def _put_back_process_state(kept: _Kept) -> None:
    """Put back what a run changed of ``kept``: each value is compared by identity, and only one that
    differs is set again (the umask is set every time: reading it is setting it)."""
    os.umask(kept.umask)
    if sys.getrecursionlimit() != kept.recursion:
        sys.setrecursionlimit(kept.recursion)
    try:
        clocks: tuple[Any, ...] | None = _read_clocks(time)
    except AttributeError:  # the run deleted one
        clocks = None
    if clocks is None or any(map(operator.is_not, clocks, kept.clocks)):
        for name, clock in zip(_CLOCK_NAMES, kept.clocks):
            if clock is not None and getattr(time, name, None) is not clock:
                setattr(time, name, clock)
    handlers = kept.handlers
    if handlers is not None:
        now = tuple(map(_getsignal, _SIGNUMS))
        if any(map(operator.is_not, now, handlers)):
            for signum, handler, current in zip(_SIGNUMS, handlers, now):
                if handler is not None and current is not handler:
                    _set_handler(signum, handler)
    cwd = kept.cwd
    if cwd is not None:
        try:
            if os.getcwdb() != cwd:
                os.chdir(cwd)
        except OSError:
            os.chdir(cwd)


class Escaped(BaseException):
    """Raised in the target's code when it calls the global reactor or sleeps for real during a run."""


class EscapeGuard:
    """A context manager that refuses the global reactor and real sleeps to the current thread.

    ``escaped`` is the first refused call (``"reactor.callLater"``) or None;
    ``explanation`` says how to fix it. ``check()`` raises ``Escaped`` once
    something escaped, for code that polls.

    Entering it installs the patches and arms them; leaving it disarms and
    removes them. A campaign that runs many schedules installs once
    (``install``) and arms only for each run (``arm``, ``disarm``): the
    patched functions pass every call through to the original while the
    guard is not armed, so the campaign's own code between runs is never
    refused (``harness.run.session``).
    """

    def __init__(self) -> None:
        self.escaped: str | None = None
        self.explanation = ""
        #: True while a run is going on: only then is anything refused.
        self.armed = False
        self.installed = False
        self._thread = threading.get_ident()
        self._pid = os.getpid()
        #: ``FORKS[0]`` when ``_pid`` was read: the pid is read again only in a process forked since.
        self._forks = FORKS[0]
        self._streams: dict[str, Any] = {}
        self._restore: list[Callable[[], None]] = []
        #: The process state the armed run began with (``_keep_process_state``), put back by ``disarm``.
        self._kept: _Kept | None = None
        self._modules = -1
        #: Every wrapper this guard made, by id: (wrapper, the function it stands for), and the loaded modules
        #: when it was installed (``_loaded``): a module imported while installed (a target's lazy import)
        #: binds the wrappers (``from time import sleep``), which ``uninstall`` puts back to the originals.
        self._wrappers: dict[int, tuple[Any, Any]] = {}
        self._loaded_at_install: tuple[int, object] = (-1, None)
        #: The global reactor while installed, and the patch of each of its methods (by name).
        self._reactor: Any = None
        self._reactor_patches: dict[str, Callable[..., Any]] = {}
        #: The clock the armed run lends the global reactor's time methods to (``LENT_METHODS``), or None:
        #: they are refused (``Target(global_reactor="lend")``; ``harness.run.runner``).
        self.lent: Any = None
        #: The stand-ins of the ``time`` module's clocks, by label, once a run lent them (``_lend_time``).
        self._lent_clocks: dict[str, lent_time.LentClock] = {}

    def __enter__(self) -> EscapeGuard:
        self.install()
        try:
            self.arm()
        except BaseException:
            self.uninstall()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.disarm()
        finally:
            self.uninstall()

    def install(self) -> None:
        """Patch the refused functions (they pass calls through until ``arm``); undone by ``uninstall``."""
        self._thread = threading.get_ident()
        self._pid, self._forks = os.getpid(), FORKS[0]
        self._loaded_at_install = _loaded()
        try:
            reactor = self._reactor = _global_reactor()
            for name, fix in REACTOR_METHODS.items():
                self._patch(reactor, name, f"reactor.{name}", fix, LENT_METHODS.get(name))
            for name, fix in TIME_FUNCTIONS.items():
                self._patch(time, name, f"time.{name}", fix)
            self._patch_sites()
        except BaseException:
            self._undo()
            raise
        self.installed = True

    def uninstall(self) -> None:
        """Put back every function ``install`` patched (a forked child leaves at once instead)."""
        self._leave_if_forked()
        self.armed = False
        self.installed = False
        self._undo()
        self._unbind_late_imports()

    def _unbind_late_imports(self) -> None:
        """Put the originals back where a module imported while this guard was installed bound its wrappers.

        Left there, such a module would keep a dead guard's wrapper, which refuses nothing: in the next
        session of the process (the pytest plugin's next test) its ``sleep`` would escape unnoticed, since the
        scan for bindings looks for the original functions. Every module is looked at, only when the
        loaded modules changed (``_loaded``: most sessions import nothing, and pay two cheap reads).
        """
        wrappers, self._wrappers = self._wrappers, {}
        if not wrappers or _loaded() == self._loaded_at_install:
            return
        for namespace, key, value in _module_globals():
            entry = wrappers.get(id(value))
            if entry is not None and entry[0] is value:
                namespace[key] = entry[1]
            elif type(value) is partial and (entry := wrappers.get(id(value.func))) is not None and entry[0] is value.func:
                namespace[key] = partial(entry[1], *value.args, **value.keywords)  # partial(sleep, 1) made in a run
            elif class_sites.defined_in(value, namespace):  # (``class C: now = time.monotonic``, defined meanwhile)
                for attribute, held in class_sites.candidates(value, functions=True):
                    entry = wrappers.get(id(held))
                    if entry is not None and entry[0] is held and vars(value).get(attribute) is held:
                        with contextlib.suppress(TypeError, AttributeError):
                            type.__setattr__(value, attribute, entry[1])

    def arm(self, lend: Any = None) -> None:
        """A run begins: refuse from now on, and remember what ``disarm`` puts back (cwd, signal handlers).

        ``lend``: the run's clock, to which the global reactor's ``LENT_METHODS`` are lent until ``disarm``
        (a target declaring ``global_reactor="lend"``); None, the default: they are refused like the rest."""
        self.escaped = None
        self.explanation = ""
        self.lent = lend
        self._thread = threading.get_ident()
        if FORKS[0] != self._forks:  # installed in the process this one was forked from (through Python)
            self._pid, self._forks = os.getpid(), FORKS[0]
        self._streams = {"stdout": sys.stdout, "stderr": sys.stderr}
        if self.installed and len(sys.modules) != self._modules:  # modules imported since: names they bound are patched too
            self._patch_sites()  # (only by an installed guard: nothing else would ever undo the patches)
        if lend is not None and self.installed and not self._lent_clocks:
            self._lend_time()  # (before the clocks are kept: the run begins with the stand-ins)
        self._kept = self._keep_process_state()
        self.armed = True

    def disarm(self) -> None:
        """The run is over: refuse nothing more, and put back the working directory and signal handlers."""
        self._leave_if_forked()
        self.armed = False
        self.lent = None
        kept, self._kept = self._kept, None
        if kept is not None:
            _put_back_process_state(kept)

    def refuse(self, called: str, why: str) -> NoReturn:
        """Refuse what the target just did (``called``, ``why`` says the fix): the first refusal of a run is
        kept, so that the runner ends the run with it at its next check even when the target's code catches
        the ``Escaped`` raised here (a Deferred's callback, a timer: Twisted turns it into a ``Failure``)."""
        if self.escaped is None:
            self.escaped, self.explanation = called, why
        raise Escaped(called)

    def check(self) -> None:
        self._leave_if_forked()
        if self.escaped is not None:
            raise Escaped(self.escaped)

    def check_streams(self) -> None:
        """Raise ``Escaped`` if the run closed or replaced ``sys.stdout`` or ``sys.stderr``; put working ones back.

        The harness prints its report there after the run: a target that closed them would
        otherwise make the harness fail where it reports the target's failure.
        """
        for name, fd in (("stdout", 1), ("stderr", 2)):
            original = self._streams.get(name)
            if original is None or (getattr(sys, name) is original and not getattr(original, "closed", False)):
                continue
            if getattr(original, "closed", False):
                original = open(  # noqa: SIM115 - the process's stream, kept open
                    fd, "w", encoding=getattr(original, "encoding", None) or "utf-8",
                    errors=getattr(original, "errors", None) or "strict", closefd=False, buffering=1,
                )
            setattr(sys, name, original)
            if self.escaped is None:
                self.escaped = f"sys.{name}.close" if original is not self._streams[name] else f"sys.{name} = ..."
                self.explanation = f"a subject must not close or replace sys.{name}: the harness reports through it"
        # (``check`` without its fork test: the runner calls ``disarm`` next, whatever happens, which makes it)
        if self.escaped is not None:
            raise Escaped(self.escaped)

    def _leave_if_forked(self) -> None:
        """A process forked out of the run (by code the patches missed) ends here, before any campaign code."""
        if self.armed and os.getpid() != self._pid:
            PROCESS_FUNCTIONS["os._exit"][0](0)

    def _keep_process_state(self) -> _Kept:
        """What ``disarm`` puts back when the run ends: the working directory, signal handlers, clocks, umask and
        recursion limit the target may change (a umask of 0o777 left by a run stops the failure from being
        saved; a lowered recursion limit makes later runs differ, reported as nondeterminism).

        Read once a run each: the clocks and the signal handlers as one tuple each (C calls over a fixed
        list, no dict or enum made), compared with ``is`` when the run ends, and only what differs is
        put back (``_put_back_process_state``); the working directory and umask cost one system call or
        two each way and are read and put back every run.
        """
        try:
            cwd: bytes | None = os.getcwdb()  # (bytes: half the cost of decoding the path every run)
        except OSError:
            cwd = None
        umask = os.umask(0o022)
        os.umask(umask)
        try:
            clocks: tuple[Any, ...] | None = _read_clocks(time)
        except AttributeError:  # a clock the platform has was deleted (between runs): kept name by name
            clocks = None
        return _Kept(
            cwd,
            umask,
            sys.getrecursionlimit(),
            clocks if clocks is not None else tuple(getattr(time, name, None) for name in _CLOCK_NAMES),
            # Handlers only where Python handles signals; the C module's getsignal: no enum made for each.
            tuple(map(_getsignal, _SIGNUMS)) if threading.main_thread().ident == self._thread else None,
        )

    def _patch_sites(self) -> None:
        lent_clocks = self._lent_clocks
        for owner, key, label in _binding_sites(self._reactor):
            if label.startswith(_PARTIAL):
                self._patch_partial(owner, key, label[len(_PARTIAL):])
            elif label in lent_time.LABELS:
                if lent_clocks:  # (bound once a run lends the clocks: ``_lend_time``)
                    clock = lent_clocks[label]
                    if _held(owner, key) is clock.original:
                        self._bind(owner, key, clock, clock.original, label)
            else:
                self._patch_site(owner, key, label)
        self._modules = len(sys.modules)

    def _patch_site(self, owner: Any, key: str, label: str) -> None:
        """Bind ``owner.key`` (a module's global or a class's attribute), bound to the refused function or
        reactor method ``label``, to the guard's stand-in until ``uninstall``."""
        if label.startswith("reactor."):
            self._patch_bound_method(owner, key, label[len("reactor."):])
        else:
            self._patch_global(owner, key, label)

    def _patch_partial(self, owner: Any, key: str, label: str) -> None:
        """Bind ``owner.key``, a ``functools.partial`` of the refused function or reactor method ``label``
        made before the guard was installed (``SLEEP = partial(time.sleep, 1)``, ``LATER = partial(reactor.callLater,
        0)``), to the same partial of the guard's stand-in until ``uninstall``: the partial holds the original,
        which no patch reaches (audit 11: a lent target's timers went to the real reactor, a run's sleep passed)."""
        original = _held(owner, key)
        if type(original) is not partial:
            return
        held = {key: original.func}
        if label in lent_time.LABELS:  # a partial of a clock: lent (once a run lends them), never refused (audit 12)
            clock = self._lent_clocks.get(label)
            if clock is None or original.func is not clock.original:
                return
            held[key] = clock
        else:
            self._patch_site(held, key, label)
        if held[key] is original.func:
            return
        stand_in = partial(held[key], *original.args, **original.keywords)
        self._bind(owner, key, stand_in, original, _PARTIAL + label)

    def _lend_time(self) -> None:
        """A run lends its clock for the first time since ``install``: patch the ``time`` module's clocks
        (``lent_time.LENT_CLOCKS``) and the names they are bound to in the target's code, until ``uninstall``.
        Each stand-in reads the real clock unless this guard is armed with a clock to lend, in its thread."""
        guard = self

        def lent() -> Any:
            return guard.lent if guard.armed and threading.get_ident() == guard._thread else None

        self._lent_clocks = {label: lent_time.LentClock(name, lent) for label, name in lent_time.LABELS.items()}
        namespace = vars(time)
        for label, clock in self._lent_clocks.items():
            self._wrappers[id(clock)] = (clock, clock.original)  # (a module imported meanwhile binds it)
            if namespace.get(clock.name) is clock.original:
                self._bind(namespace, clock.name, clock, clock.original, label)
        self._patch_sites()

    def _patch_bound_method(self, owner: Any, key: str, name: str) -> None:
        """Bind ``owner.key`` (a module's global or a class's attribute), the global reactor's ``name`` method
        taken before the guard was installed, to the guard's patch of that method (refused or lent as the
        reactor's own is), until ``uninstall``."""
        original = _held(owner, key)
        patched = self._reactor_patches.get(name)
        if patched is None or type(original) is not MethodType or original.__self__ is not self._reactor:
            return
        self._bind(owner, key, patched, original, f"reactor.{name}")

    def _bind(self, owner: Any, key: str, wrapper: Any, original: Any, label: str) -> None:
        """Bind ``owner[key]`` (a module's namespace) or ``owner.key`` (a class: ``class_sites.bind``) to ``wrapper``
        (counted in ``_bound_wrappers`` under ``label``) until ``uninstall`` puts ``original`` back, unless
        something else was bound there since."""
        if isinstance(owner, dict):
            owner[key] = wrapper

            def restore() -> None:
                _bound_wrappers.pop(id(wrapper), None)
                if owner.get(key) is wrapper:
                    owner[key] = original
        else:
            before = class_sites.bind(owner, key, wrapper)
            if before is None:
                return

            def restore() -> None:
                _bound_wrappers.pop(id(wrapper), None)
                class_sites.unbind(owner, key, wrapper, before)

        _bound_wrappers[id(wrapper)] = label
        self._restore.append(restore)

    def _patch_global(self, owner: Any, key: str, label: str) -> None:
        original, fix = PROCESS_FUNCTIONS[label]
        if _held(owner, key) is not original:
            return
        guard = self
        conditional = label in _SIGNAL_FUNCTIONS

        def refused(*args: Any, **kwargs: Any) -> Any:
            if not guard.armed or threading.get_ident() != guard._thread or os.getpid() != guard._pid:
                return original(*args, **kwargs)
            called, why = label, fix
            if conditional:
                signum, args, kwargs = disarmed(label, args, kwargs)
                if signum is None:
                    return original(*args, **kwargs)
                called = f"{label} on {signal.Signals(signum).name}"
                why = _WATCHDOG if signum == _SIGALRM else _STOPPING
            guard.refuse(called, why)

        self._wrappers[id(refused)] = (refused, original)
        self._bind(owner, key, refused, original, label)

    def _patch(self, owner: Any, name: str, label: str, fix: str, lend: Callable[..., Any] | None = None) -> None:
        """Replace ``owner.name`` with a function refusing it in an armed run; with ``lend`` (a reactor method
        of ``LENT_METHODS``), one calling ``lend(self.lent, ...)`` instead while a run lends it a clock."""
        original = getattr(owner, name, None)
        if original is None:
            return
        had_own = name in vars(owner)
        guard = self

        def refused(*args: Any, **kwargs: Any) -> Any:
            if not guard.armed or threading.get_ident() != guard._thread:
                return original(*args, **kwargs)
            if lend is not None:
                clock = guard.lent
                if clock is not None:
                    return lend(clock, *args, **kwargs)
            guard.refuse(label, fix)

        setattr(owner, name, refused)
        self._wrappers[id(refused)] = (refused, original)
        if owner is self._reactor:
            self._reactor_patches[name] = refused
        if label in PROCESS_FUNCTIONS or owner is self._reactor:
            # A module imported while installed binds this patch (``from time import sleep`` between two runs):
            # the next arm's scan must count that site, which holds the original again after ``uninstall``
            # (``_unbind_late_imports``), or every later session with nothing imported leaves it unguarded.
            _bound_wrappers[id(refused)] = label
            self._restore.append(partial(_forget_wrapper, id(refused)))
        if had_own:
            self._restore.append(lambda: setattr(owner, name, original))
        else:
            self._restore.append(lambda: delattr(owner, name))

    def _undo(self) -> None:
        while self._restore:
            self._restore.pop()()
        self._reactor_patches = {}
        self._lent_clocks = {}


def _held(owner: Any, key: str) -> Any:
    """What a binding site holds: ``owner[key]`` for a module's namespace, the attribute of a class."""
    return owner.get(key) if isinstance(owner, dict) else class_sites.held(owner, key)


def _global_reactor() -> Any:
    from twisted.internet import reactor

    return reactor
