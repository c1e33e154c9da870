"""Parallel campaigns: worker processes fuzz one target side by side, with one merged result.

``run_workers`` runs one shard of a campaign (the whole campaign unless a
``Shard`` says otherwise) on ``workers`` processes. The parent replays the
regression corpus once, then starts the workers; each runs ``run_campaign``
with a seed and a share of ``max_examples`` of its own (see
``harness.search.shard``), the whole budget (counted from when it has loaded the
target: its start-up is not), and the same example
database, so what one worker saved the others' next rounds replay first.

- **First failure wins.** Each failure a worker saves is sent to the parent
  at once. The parent keeps the first failure of each invariant, up to
  ``max_failures``; once that many are kept it asks every worker to stop.
  With ``max_failures=1`` (the default) the others are stopped as soon as
  one worker starts shrinking, so the machine's other cores do not race it
  to the same bug. A failure that arrives too late (the same invariant
  again, or one too many) is dropped and its file deleted.
- **Crash isolation.** A worker that dies (``os._exit`` in the target, a
  segfault, the OOM killer) is reported, "worker 1 crashed with exit code
  3", and the others go on; what they find is kept. A campaign whose only
  news is a crash is an error (exit 2), not clean.
- **Stopping.** The parent polls ``stop_requested`` (its ``StopSignals``)
  and passes the request on. Workers also stop on their own SIGINT or
  SIGTERM (Ctrl-C reaches the whole process group) and when the parent
  dies. A worker stopped by a signal the parent was not sent is reported
  as crashed ("worker 1 crashed with signal SIGTERM"): the campaign is not
  "interrupted", the others run to their budget and their findings are kept. If the parent is interrupted again, workers still running after
  ``ABORT_GRACE_S`` are killed.

Workers are started with the ``spawn`` method: a fresh interpreter each, no
Twisted or Hypothesis state inherited from the parent. That costs a few
tenths of a second per worker, in parallel, once per campaign. Each worker
loads the target from its string and finds ``HARNESS_WORKER`` (its index)
in its environment. Messages between the processes are pickled (our own
processes only); failures travel as the paths of their JSON failure files,
which the parent loads and replays to report them. A campaign's menu crosses
with its operations by name (Hypothesis strategies do not pickle): each worker
rebuilds their strategies from the target it loads (``harness.search.portable_menu``).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue as queue_module
import signal
from harness.guard import clocks as time  # bound at import: a target cannot replace them
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from harness.search import corpus
from harness.store import failure_file
from harness.search.campaign import (
    CampaignConfig,
    CampaignResult,
    Finding,
    campaign_seed,
    check_config,
    enough,
    example_limit,
    keep_regression,
    masked_invariants,
    replay_corpus,
    run_campaign,
    stopped_by_error,
)
from harness.errors import HarnessError
from harness.invariants import Violation
from harness.search.portable_menu import PortableMenu, portable
from harness.search.shard import MAX_WORKERS, Shard, piece_seed, share
from harness.search.stop_reasons import StopReason
from harness.guard.signals import StopSignals, explaining, grace_s
from harness.model.target import Target, load_target
from harness.model.known import known

if TYPE_CHECKING:
    from harness.search.exercised import Tally

#: The fields of a ``Finding`` that say when it was found; a worker sends them with the failure.
TIMING = ("detected_after_s", "examples_to_detect", "shrink_s")

#: How workers are started (see the module docstring).
START_METHOD: Final = "spawn"

#: Seconds between the parent's looks at its workers: messages, progress, stop requests.
POLL_S = 0.05

#: Seconds that workers get to stop by themselves before they are killed, after an abort or an error.
ABORT_GRACE_S = grace_s(5.0)

#: Environment variable holding a worker's index (0-based) inside the worker process.
WORKER_ENV = "HARNESS_WORKER"

#: Why a merged campaign stopped, most telling first: the first reason any worker gives.
_REASON_ORDER = (StopReason.INTERRUPT, StopReason.MAX_FAILURES, StopReason.BUDGET, StopReason.MAX_EXAMPLES, StopReason.EXHAUSTED)


@dataclass
class WorkerReport:
    """What one worker did: its seed, how far it got, and why it stopped or how it died.

    ``stopped_by`` is None for a worker that never reported back;
    ``crashed`` then says how it died (``"exit code 3"``, ``"signal SIGSEGV"``).
    """

    index: int
    seed: int
    examples: int = 0
    shrink_runs: int = 0
    elapsed_s: float = 0.0
    stopped_by: StopReason | None = None
    crashed: str | None = None

    def describe_crash(self) -> str:
        return f"worker {self.index} crashed with {self.crashed}"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seed": self.seed,
            "examples": self.examples,
            "shrink_runs": self.shrink_runs,
            "elapsed_seconds": round(self.elapsed_s, 3),
            "stopped_by": self.stopped_by,
            "crashed": self.crashed,
        }


@dataclass
class ParallelResult(CampaignResult):
    """A ``CampaignResult`` merged from several workers (or one shard): ``seed`` is the campaign's.

    ``examples`` and ``shrink_runs`` add up the workers' (a crashed worker's
    examples as far as the parent saw them); ``elapsed_s`` is the parent's
    wall-clock time; ``findings`` are the failures kept, in the order they
    arrived; ``shard`` is the shard this result covers.
    """

    workers: list[WorkerReport] = field(default_factory=list)
    shard: Shard | None = None

    @property
    def crashed(self) -> list[WorkerReport]:
        return [report for report in self.workers if report.crashed is not None]


def worker_reports(result: CampaignResult) -> list[WorkerReport]:
    """The workers behind ``result``: one, the campaign itself, unless it was run by ``run_workers``."""
    if isinstance(result, ParallelResult):
        return result.workers
    report = WorkerReport(0, result.seed, result.examples, result.shrink_runs, result.elapsed_s, result.stopped_by)
    return [report]


def cpu_count() -> int:
    """The cores this process may run on (``--workers auto``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_workers(
    target: Target,
    target_spec: str,
    config: CampaignConfig,
    workers: int,
    shard: Shard | None = None,
    on_example: Callable[[CampaignResult], None] | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    on_crash: Callable[[WorkerReport], None] | None = None,
    stop_requested: Callable[[], bool] | None = None,
    exercised: Tally | None = None,
) -> ParallelResult:
    """Run ``shard`` of the campaign (default: all of it) on ``workers`` processes; merge what they find.

    ``config`` describes the whole campaign: ``max_examples`` is the total
    over every shard and worker, ``budget_s`` the wall-clock time of each
    worker's search (less the parent's corpus replay), counted once the worker
    has loaded the target: its start-up, like a one-process campaign's import
    of the target, is not counted.
    With fewer examples than workers, fewer workers start; with one, the
    campaign runs in this process. The callbacks are as for
    ``run_campaign``; ``on_example`` is called a few times a second with the
    running totals, and ``on_crash`` when a worker dies. ``exercised``, if
    given, gets the counts of what every search example exercised (each
    worker tallies its own; they are added up here). A ``HarnessError``
    in any worker (a target that cannot be built, a nondeterministic one)
    stops them all and is raised here, carrying the merged result so far as
    ``error.result``. A ``config.menu`` with an operation the target does not
    declare (with those strategies) is refused with a ``ValueError`` before
    any worker starts, unless one worker runs it here: workers rebuild the
    menu's operations from the target they load.
    """
    shard = shard or Shard()
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    check_config(config)
    seed = campaign_seed(config)
    total = example_limit(config)
    mine = shard.share(total)
    if mine is not None and mine < 1:
        raise ValueError(f"{total} examples leave shard {shard} none: use at most {total} shards")
    count = workers if mine is None else min(workers, mine)
    if count == 1:
        piece = replace(config, seed=piece_seed(seed, shard, 0), max_examples=mine)
        try:
            alone = run_campaign(target, target_spec, piece, on_example, on_finding, stop_requested, exercised)
        except HarnessError as exc:
            exc.result = _as_parallel(exc.result, seed, shard)
            raise
        return _as_parallel(alone, seed, shard)
    pieces = [
        replace(
            config,
            seed=piece_seed(seed, shard, index),
            max_examples=share(mine, count, index),
            regressions=None,
            save_regressions=False,
        )
        for index in range(count)
    ]
    parallel = _Parallel(target, target_spec, config, seed, shard, pieces, on_example, on_finding, on_crash, exercised)
    return parallel.run(stop_requested or (lambda: False))


def _as_parallel(alone: CampaignResult, seed: int, shard: Shard) -> ParallelResult:
    """A one-process campaign's result as the result of the shard it ran."""
    merged = ParallelResult(**{f.name: getattr(alone, f.name) for f in fields(alone)})
    merged.seed, merged.shard = seed, shard
    merged.workers = worker_reports(alone)
    return merged


class _Parallel:
    """The parent's side of a parallel campaign: start, watch, stop and merge the workers."""

    def __init__(
        self,
        target: Target,
        spec: str,
        config: CampaignConfig,
        seed: int,
        shard: Shard,
        pieces: list[CampaignConfig],
        on_example: Callable[[CampaignResult], None] | None,
        on_finding: Callable[[Finding], None] | None,
        on_crash: Callable[[WorkerReport], None] | None,
        exercised: Tally | None = None,
    ) -> None:
        # What crosses to the workers must pickle: the menu's operations go by name (refused here, before any
        # worker starts, if a worker cannot rebuild them from the target it loads).
        self.menu: PortableMenu | None = portable(config.menu, target) if config.menu is not None else None
        self.target = target
        self.exercised = exercised
        self.spec = spec
        self.config = config
        self.pieces = pieces
        self.on_example = on_example
        self.on_finding = on_finding
        self.on_crash = on_crash
        self.result = ParallelResult(target=spec, seed=seed, shard=shard)
        # Every piece has its seed (piece_seed above).
        self.result.workers = [WorkerReport(index, known(piece.seed)) for index, piece in enumerate(pieces)]
        self.winner: int | None = None  # the worker left to shrink while the others stop (one failure wanted)
        self.held: dict[str, dict[str, Any]] = {}  # unshrunk failures waiting for a shrunk one (see _received)
        self.stop_reason: StopReason | None = None
        self.error: BaseException | None = None
        self.reported: set[int] = set()  # workers that sent "done" or "error"
        self.killed: set[int] = set()
        self.signalled: dict[int, str] = {}  # workers a signal stopped that the parent was not sent
        self.started = time.monotonic()
        self.wall_started = time.time()
        context = multiprocessing.get_context(START_METHOD)
        self.context = context
        n = len(pieces)
        self.counts = context.RawArray("q", n)
        self.shrinking = context.RawArray("b", n)
        self.stops = context.RawArray("b", n)
        #: Set by a worker once it has loaded the target and begins its campaign (``_starting``).
        self.begun = context.RawArray("b", n)
        self.queue: Any = context.Queue()
        self.processes: list[Any] = []

    # -- the run -------------------------------------------------------------

    def run(self, stop_requested: Callable[[], bool]) -> ParallelResult:
        result = self.result
        try:
            self._replay_regressions(stop_requested)
            if self.stop_reason is None and stop_requested():  # before any worker started (a stop during start-up)
                self.stop_reason = StopReason.INTERRUPT
            if self.stop_reason is None and not enough(self.config, result):
                with explaining(self._starting):
                    self._start()
                    self._watch(stop_requested)
            elif self.stop_reason is None:
                self.stop_reason = StopReason.MAX_FAILURES
        except KeyboardInterrupt:  # a second signal: stop at once, keep what arrived
            self.stop_reason = StopReason.INTERRUPT
        finally:
            self._shutdown(ABORT_GRACE_S if self.error is None else 0.0)
        if self.error is None:
            self._settle_held()
        self._merge()
        if self.error is not None:
            stopped_by_error(result, self.error)
            raise self.error
        return result

    def _replay_regressions(self, stop_requested: Callable[[], bool]) -> None:
        """The regression corpus, replayed once here rather than once per worker (as a campaign does)."""
        try:
            for replay, finding in replay_corpus(self.target, self.spec, self.config, stop_requested):
                self.result.regressions.append(replay)
                if finding is not None:
                    self._keep(finding)
        except KeyboardInterrupt:
            self.stop_reason = StopReason.INTERRUPT

    def _start(self) -> None:
        ignore = masked_invariants(self.config, self.result)
        # The budget counts the corpus replay above and each worker's search, not its start-up (a fresh interpreter
        # importing the harness and the target: seconds under load), as a one-process campaign's counts neither the
        # harness's import nor the target's load: each worker's ``run_campaign`` gets what the replay left.
        budget = self.config.budget_s
        left = max(budget - (time.monotonic() - self.started), 0.001) if budget is not None else None
        for index, piece in enumerate(self.pieces):
            process = self.context.Process(
                target=_worker_main,
                name=f"harness-worker-{index}",
                args=(index, self.spec, replace(piece, ignore=ignore, menu=None, budget_s=left), os.getpid(),
                      self.queue, self.counts, self.shrinking, self.stops, self.exercised is not None, self.begun,
                      self.menu),
                daemon=True,
            )
            process.start()
            self.processes.append(process)

    def _watch(self, stop_requested: Callable[[], bool]) -> None:
        while True:
            self._drain(POLL_S)
            if self.error is not None:
                return
            if stop_requested() and self.stop_reason is None:
                self._stop_all(StopReason.INTERRUPT)
            self._stop_others_while_one_shrinks()
            self._progress()
            if not any(process.is_alive() for process in self.processes):
                self._drain(0.0)
                return

    def _starting(self) -> str | None:
        """What a stop waits on when workers have not begun (still importing the harness and the target: seconds
        under load, review 8 finding 7), for the note of a stop not honoured in time; None when every worker began."""
        starting = [i for i, p in enumerate(self.processes) if not self.begun[i] and p.is_alive()]
        if not starting:
            return None
        if not any(self.begun):
            return "its workers were still starting, loading the target: no run had begun"
        return f"worker{'s' if len(starting) > 1 else ''} {', '.join(map(str, starting))} still starting, or a run that hangs?"

    def _shutdown(self, grace: float) -> None:
        """Ask every worker still running to stop, wait up to ``grace`` seconds, then kill the rest."""
        if not self.processes:
            return
        self._stop_all(self.stop_reason or StopReason.INTERRUPT, record=False)
        deadline = time.monotonic() + grace
        while any(p.is_alive() for p in self.processes) and time.monotonic() < deadline:
            self._drain(POLL_S)
        for index, process in enumerate(self.processes):
            if process.is_alive():
                self.killed.add(index)
                process.kill()
        for process in self.processes:
            process.join()
        self._drain(0.0)
        self.queue.close()
        self.queue.join_thread()

    # -- messages ------------------------------------------------------------

    def _drain(self, timeout: float) -> None:
        """Handle every message waiting (waiting up to ``timeout`` for the first)."""
        while True:
            try:
                kind, index, payload = self.queue.get(timeout=timeout) if timeout > 0 else self.queue.get_nowait()
            except queue_module.Empty:
                return
            except (EOFError, OSError):
                return
            timeout = 0.0
            if kind == "found":
                self._received(index, payload)
            elif kind == "done":
                self.reported.add(index)
                report = self.result.workers[index]
                report.examples = payload["examples"]
                report.shrink_runs = payload["shrink_runs"]
                report.elapsed_s = payload["elapsed_s"]
                report.stopped_by = StopReason(payload["stopped_by"])
                if payload.get("signal") is not None:
                    self.signalled[index] = payload["signal"]
                if self.exercised is not None and payload.get("exercised") is not None:
                    self.exercised.absorb(payload["exercised"])
            elif kind == "error":
                self.reported.add(index)
                if self.error is None:
                    self.error = payload if isinstance(payload, HarnessError) else RuntimeError(
                        f"worker {index} failed:\n{payload}"
                    )
                    self._stop_all(StopReason.INTERRUPT, record=False)

    def _received(self, index: int, data: dict[str, Any]) -> None:
        """A worker saved a failure: keep it if its invariant is new and there is room, else drop it."""
        path = Path(data["path"]) if data["path"] is not None else None
        if self._unwanted(data["invariant"]):
            self._drop(path)
            return
        if not data["shrunk"] and self.stops[index] and self.stop_reason is None and data["path"] is not None:
            # Two workers found a failure at once and this one was told to stop, so it saved its
            # schedule unshrunk: the other's shrunk one is the one to keep. Held until the end in case
            # it never comes (that worker crashed, or found another invariant). One that could not be
            # saved is kept at once: the error that follows it stops the campaign before held ones settle.
            if data["invariant"] in self.held:
                self._drop(path)
            else:
                self.held[data["invariant"]] = data
            return
        self._take(data)

    def _unwanted(self, invariant: str) -> bool:
        """A failure arrived too late: its invariant is already kept (or ignored), or enough are."""
        return invariant in masked_invariants(self.config, self.result) or enough(self.config, self.result)

    def _drop(self, path: Path | None) -> None:
        """Delete a failure file this campaign wrote, unless a kept or held failure is that same file.

        A file's name is its target and schedule, so two workers that fail on the same schedule
        (the example database's, replayed first by each) write the same file.
        """
        if path is None:
            return
        kept = {finding.path for finding in self.result.findings}
        kept |= {Path(data["path"]) for data in self.held.values() if data["path"] is not None}
        if path not in kept and _made_since(path, self.wall_started):
            path.unlink(missing_ok=True)

    def _settle_held(self) -> None:
        """Keep the unshrunk failures held back whose invariant no worker sent shrunk; drop the rest."""
        while self.held:
            data = self.held.pop(next(iter(self.held)))
            if self._unwanted(data["invariant"]):
                self._drop(Path(data["path"]) if data["path"] is not None else None)
            else:
                self._take(data)

    def _take(self, data: dict[str, Any]) -> None:
        """Keep a failure a worker sent: load it and replay it here for the report."""
        path = Path(data["path"]) if data["path"] is not None else None
        # A failure the worker could not save comes whole (the error that stopped it says why).
        record = failure_file.load(path) if path is not None else failure_file.FailureRecord.from_json(data["record"])
        # Replayed here for the report: the worker already checked that its trace is deterministic.
        replay = corpus.replay(self.target, path, record, self.config.example_timeout_s)
        violation = replay.violation or Violation(record.invariant, record.message, record.marked)
        finding = Finding(record, replay.run, violation, path=path, shrunk=data["shrunk"], cut_short=data.get("cut_short", ""))
        for name in TIMING:
            setattr(finding, name, data.get(name))
        keep_regression(finding, self.config)
        self._keep(finding)

    def _keep(self, finding: Finding) -> None:
        self.result.findings.append(finding)
        if self.on_finding is not None:
            self.on_finding(finding)
        if enough(self.config, self.result) and self.stop_reason is None:
            self._stop_all(StopReason.MAX_FAILURES)

    # -- stopping ------------------------------------------------------------

    def _stop_all(self, reason: StopReason, record: bool = True) -> None:
        if record and self.stop_reason is None:
            self.stop_reason = reason
        for index in range(len(self.stops)):
            self.stops[index] = 1

    def _stop_others_while_one_shrinks(self) -> None:
        """With one failure wanted, the first worker to find one wins: the others stop now."""
        if self.config.max_failures != 1 or self.result.findings or self.stop_reason is not None:
            return
        if self.winner is None:
            # The first worker seen shrinking stays the winner: choosing again (the lowest index shrinking)
            # could pick one already told to stop, and then every worker is stopped before any shrinks.
            self.winner = next((index for index in range(len(self.shrinking)) if self.shrinking[index]), None)
        if self.winner is not None:
            for index in range(len(self.stops)):
                if index != self.winner:
                    self.stops[index] = 1

    # -- reporting -----------------------------------------------------------

    def _progress(self) -> None:
        self.result.examples = sum(self.counts)
        self.result.shrinking = any(self.shrinking)
        if self.on_example is not None:
            self.on_example(self.result)

    def _merge(self) -> None:
        result = self.result
        for index, process in enumerate(self.processes):
            report = result.workers[index]
            if index in self.signalled and self.stop_reason is None:
                # A signal sent to this worker alone (the parent, not interrupted, ran on): the worker was
                # lost, as if it had crashed; it does not make the whole campaign "interrupted".
                report.crashed = f"signal {self.signalled[index]}"
                if self.on_crash is not None:
                    self.on_crash(report)
            if index not in self.reported:
                report.examples = self.counts[index]
                if index not in self.killed:
                    report.crashed = _describe_exit(process.exitcode)
                    if self.on_crash is not None:
                        self.on_crash(report)
                else:
                    report.stopped_by = StopReason.INTERRUPT
        result.examples = sum(report.examples for report in result.workers)
        result.shrink_runs = sum(report.shrink_runs for report in result.workers)
        result.shrinking = False
        result.elapsed_s = time.monotonic() - self.started
        reasons = {report.stopped_by for report in result.workers if report.stopped_by is not None and not report.crashed}
        if self.stop_reason is not None:
            result.stopped_by = self.stop_reason
        elif reasons:
            result.stopped_by = next(reason for reason in _REASON_ORDER if reason in reasons)
        else:
            result.stopped_by = StopReason.CRASH
        for report in result.workers[len(self.processes) :]:  # never started: the corpus ended the campaign
            report.stopped_by = result.stopped_by


def _made_since(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime >= since - 1.0
    except OSError:
        return False


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


# -- the worker's side ---------------------------------------------------------


def _worker_main(
    index: int,
    spec: str,
    config: CampaignConfig,
    parent: int,
    queue: Any,
    counts: Any,
    shrinking: Any,
    stops: Any,
    tally: bool = False,
    begun: Any = None,
    menu: PortableMenu | None = None,
) -> None:
    """One worker process: run the campaign piece, send each failure at once and a summary at the end.

    ``config`` comes without its menu, which crosses as ``menu`` (its operations by name: strategies do not
    pickle) and is rebuilt here from the target this worker loads. Its ``budget_s`` counts from when the
    campaign starts, the target loaded (see ``_Parallel._start``).
    """
    os.environ[WORKER_ENV] = str(index)
    with StopSignals() as signals:

        def stop_requested() -> bool:
            return bool(stops[index]) or signals.requested() or os.getppid() != parent

        def on_example(result: CampaignResult) -> None:
            counts[index] = result.examples
            shrinking[index] = result.shrinking

        def on_finding(finding: Finding) -> None:
            shrinking[index] = 0
            message: dict[str, object] = {"path": finding.path and str(finding.path),
                                          "invariant": finding.violation.invariant, "shrunk": finding.shrunk,
                                          "cut_short": finding.cut_short}
            if finding.path is None:  # it could not be saved: sent whole, so the parent still reports it
                message["record"] = finding.record.to_json()
            message.update({name: getattr(finding, name) for name in TIMING})
            queue.put(("found", index, message))

        exercised: Tally | None = None
        try:
            target = load_target(spec)
            if menu is not None:
                config = replace(config, menu=menu.rebuilt(target))
            if tally:
                from harness.search.exercised import Tally  # not at the top: the report package imports this module

                exercised = Tally.for_target(target, config.menu)
            if begun is not None:
                begun[index] = 1
            result = run_campaign(target, spec, config, on_example, on_finding, stop_requested, exercised)
        except KeyboardInterrupt:  # a second signal before the campaign began
            result = CampaignResult(target=spec, seed=config.seed or 0, stopped_by=StopReason.INTERRUPT)
        except HarnessError as exc:
            queue.put(("error", index, portable_error(exc)))
            return
        except BaseException:
            queue.put(("error", index, traceback.format_exc()))
            return
    counts[index] = result.examples
    summary = {
        "examples": result.examples,
        "shrink_runs": result.shrink_runs,
        "elapsed_s": result.elapsed_s,
        "stopped_by": result.stopped_by,
        "exercised": exercised.to_json() if exercised is not None else None,
        # A signal that stopped this worker while the parent had not asked it to (see _Parallel._merge).
        "signal": signals.received if signals.requested() and not stops[index] else None,
    }
    queue.put(("done", index, summary))


def portable_error(error: HarnessError) -> HarnessError:
    """``error`` as it can cross to the parent: without the result it carries (its runs may hold
    whatever the target built, lambdas included), and as a plain ``HarnessError`` of the same message
    if even that cannot be pickled. Checked here, because a queue pickles in a background thread
    whose failures never reach the worker."""
    error.result = None
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return HarnessError(str(error))
    return error
