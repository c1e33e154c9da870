"""Periodic subjects that take their function at construction: ``build(clock, work)``."""

from __future__ import annotations

from twisted.internet import task

from harness import CampaignConfig, JobSpec, Schedule, Target, check, run_campaign, run_schedule
from harness.model.schedule import Start, Stop


class Ticker:
    """Calls its function every 100ms from ``start()``; the function is given at construction."""

    def __init__(self, clock, work) -> None:
        self.loop = task.LoopingCall(work)
        self.loop.clock = clock

    def start(self):
        return self.loop.start(0.1, now=True)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()


class DeafTicker(Ticker):
    def stop(self) -> None:
        pass  # bug: the loop goes on after stop()


TICKER = Target(build=lambda clock, work: Ticker(clock, work), kind="periodic", interval_ms=100)


def test_a_two_parameter_build_gets_the_schedules_work_and_start_takes_none() -> None:
    assert TICKER.takes_work and not Target(build=lambda clock: None, kind="periodic", interval_ms=100).takes_work
    run = run_schedule(TICKER, Schedule((Start(0, 0, JobSpec("succeed", 10)), Stop(250))))
    starts = [e.t_us // 1000 for e in run.trace if e.kind == "job.start"]
    assert starts == [0, 100, 200] and check(run) == []


def test_a_ticker_that_ignores_stop_is_caught() -> None:
    deaf = Target(build=lambda clock, work: DeafTicker(clock, work), kind="periodic", interval_ms=100)
    names = [v.invariant for v in check(run_schedule(deaf, Schedule((Start(0, 0, JobSpec("succeed", 10)), Stop(250)))))]
    assert "time.after_stop" in names


def test_a_ticker_built_with_its_work_passes_a_campaign(tmp_path) -> None:
    config = CampaignConfig(seed=7, max_examples=150, report_dir=str(tmp_path), database=None, regressions=None)
    result = run_campaign(TICKER, "tests.test_build_with_work:TICKER", config)
    assert [f.record.message for f in result.findings] == []
