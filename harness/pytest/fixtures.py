"""Fixtures for hand-written properties: the fault clock and the runner.

``harness_runner`` is session-scoped on purpose: Hypothesis refuses
function-scoped fixtures under ``@given`` (they would be shared by every
example), and the runner holds nothing per example. It makes a fresh clock
or a fresh run whenever asked. ``harness_clock`` is a fresh ``FaultClock``
per test, for plain tests that drive a subject by hand.

Example::

    from hypothesis import given
    from harness import schedules

    @given(schedules())
    def test_pool(harness_runner, schedule):
        run = harness_runner.run("mypkg.harness_targets:pool", schedule)
        harness_runner.assert_ok(run)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.guard.private_api import final_replay
from harness.store import failure_file
from harness.run.clock import FaultClock
from harness.store.failure_file import FailureRecord
from harness.invariants import Violation, check
from harness.run.runner import Run, run_schedule
from harness.model.schedule import Schedule
from harness.model.target import Target
from harness.pytest.report import InvariantViolated, failure_message, rerun_line, rerun_nodeid
from harness.pytest.settings import HarnessSettings, settings_of
from harness.pytest.targets import resolve_target, spec_of

#: The test item running now, kept current by the plugin, for the rerun line.
CURRENT_ITEM = pytest.StashKey["pytest.Item | None"]()


@dataclass(repr=False)
class HarnessRunner:
    """Runs schedules against targets and turns violations into readable test failures.

    ``assert_ok`` saves a failure file only for the failure a test finally
    reports: under Hypothesis, only in its last replay of the minimal
    example, so shrinking does not litter the report directory.
    """

    settings: HarnessSettings
    config: pytest.Config
    _targets: dict[str, Target] = field(default_factory=dict)
    #: id(target) -> (target, its module:attr); holding the target keeps its id from being reused.
    _specs: dict[int, tuple[Target, str | None]] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Hypothesis prints the fixture in a falsifying example: keep it one short line.
        return f"HarnessRunner(seed={self.settings.seed})"

    @property
    def seed(self) -> int:
        """The session seed (the same in every xdist worker)."""
        return self.settings.seed

    def clock(self, tie_break: str = "fifo", seed: int = 0) -> FaultClock:
        """A fresh ``FaultClock``; call it once per example."""
        return FaultClock(tie_break, seed)

    def target(self, target: Target | str) -> Target:
        """``target`` as a ``Target``, loading (once) a ``module:attr`` string."""
        if isinstance(target, Target):
            return target
        if target not in self._targets:
            loaded = self._targets[target] = resolve_target(target)[1]
            self._specs[id(loaded)] = (loaded, target)
        return self._targets[target]

    def run(self, target: Target | str, schedule: Schedule) -> Run:
        """Play ``schedule`` against a fresh subject of ``target``."""
        return run_schedule(self.target(target), schedule)

    def check(self, run: Run) -> list[Violation]:
        """Every invariant violation in ``run``."""
        return check(run)

    def assert_ok(self, run: Run) -> None:
        """Raise ``InvariantViolated`` (an ``AssertionError``) naming the first broken invariant, with the timeline."""
        __tracebackhide__ = True
        violations = check(run)
        if not violations:
            return
        violation = violations[0]
        spec = self._spec(run.target)
        record = FailureRecord.of_run(spec or "<unnamed target>", run, violation)
        path: Path | None = None
        not_saved = ""
        if spec is None:
            not_saved = "the target is not a module-level attribute; pass it as 'package.module:attribute' to save it"
        elif final_replay():
            path = failure_file.save(record, self.settings.report_dir / "failures")
        raise InvariantViolated(
            failure_message(
                record,
                path=path,
                start=self.config.invocation_params.dir,
                rerun=self._rerun(),
                schedule_label="",
                not_saved=not_saved,
            ),
            record,
            path,
        )

    def _spec(self, target: Target) -> str | None:
        """The target's ``module:attr`` (for the failure file), found once per target."""
        if id(target) not in self._specs:
            self._specs[id(target)] = (target, spec_of(target))
        return self._specs[id(target)][1]

    def _rerun(self) -> str | None:
        item = self.config.stash.get(CURRENT_ITEM, None)
        if item is None:
            return None
        args = []
        hypothesis_seed = self.config.getoption("hypothesis_seed", None)
        if hypothesis_seed is not None:
            args = [f"--hypothesis-seed={hypothesis_seed}"]
        return rerun_line(rerun_nodeid(self.config, item.nodeid), args)


@pytest.fixture(scope="session")
def harness_runner(pytestconfig: pytest.Config) -> HarnessRunner:
    """Runs schedules against targets; ``assert_ok(run)`` fails the test naming the invariant, with the timeline."""
    return HarnessRunner(settings_of(pytestconfig), pytestconfig)


@pytest.fixture
def harness_clock() -> FaultClock:
    """A fresh ``FaultClock`` (an ``IReactorTime``) for one test; ties run in insertion order."""
    return FaultClock()
