"""Work-submission scenarios: the reference subjects keep every promise, each buggy one is caught by its invariant.

Three layers, from cheapest to broadest:

* a hand-written minimal schedule per bug, which must break exactly the
  expected invariant first, and which every reference subject must pass;
* a campaign per reference subject (200 examples by default, 1,000 marked
  slow), which must find nothing;
* a campaign per buggy subject, which must name the expected invariant
  within a bounded number of examples.
"""

from __future__ import annotations

import importlib

from harness import Call, ClockPolicy, JobSpec, Schedule, Submit, check, load_target, run_schedule
from harness.model.schedule import Cancel

from zoo_checks import Zoo, name_id

#: The scenario modules of the work-submission half of the zoo.
MODULES = (
    "pools",
    "lock",
    "cooperator",
    "queue_workers",
    "priority",
    "semaphore",
    "gather",
    "next_tick",
    "cancel",
    "error_paths",
    "cooldown_gate",
    "graceful",
)
SCENARIOS = tuple(s for name in MODULES for s in importlib.import_module(f"scenarios.{name}").SCENARIOS)
ZOO = Zoo.of(SCENARIOS, ids=name_id)
CORRECT, BUGGY = ZOO.correct, ZOO.buggy

#: Campaign seed and example budget for each buggy scenario. Each budget is well above the
#: examples needed to find the bug with the expected invariant, measured over seeds 1 to 5.
DETECTION_SEED = 3
DETECTION_BUDGET = 1_500


def _ms(kind: str, after_ms: int = 10) -> JobSpec:
    return JobSpec(kind, after_ms if kind in ("succeed", "fail") else 0)


#: For each buggy scenario, a smallest schedule that shows its bug.
MINIMAL = {
    "scenarios.pools:double_release_pool": Schedule(
        (Submit(0, 0, _ms("succeed", 20)), Submit(0, 1, _ms("fail")), Submit(0, 2, _ms("succeed")), Submit(0, 3, _ms("succeed")))
    ),
    "scenarios.semaphore:cancel_leak_pool": Schedule(
        (Submit(0, 0, _ms("succeed")), Submit(0, 1, _ms("succeed")), Cancel(0, 1), Submit(0, 2, _ms("succeed")))
    ),
    "scenarios.semaphore:failure_leak_pool": Schedule(
        (Submit(0, 0, _ms("fail")), Submit(0, 1, _ms("fail")), Submit(0, 2, _ms("succeed")))
    ),
    "scenarios.gather:gather_throttle": Schedule(
        (Submit(0, 0, _ms("succeed")), Submit(0, 1, _ms("succeed")), Submit(0, 2, _ms("succeed")))
    ),
    "scenarios.next_tick:next_tick_fifo": Schedule(
        # Both admissions are due at 0ms; the reactor wakes late, after both submits, and the lifo
        # tie-break runs job 1's first.
        (Submit(0, 0, _ms("succeed")), Submit(0, 1, _ms("succeed"))), ClockPolicy(tie_break="lifo", jitter_ms=5)
    ),
    "scenarios.next_tick:next_tick_raises": Schedule((Submit(0, 0, _ms("raise")),)),
    "scenarios.next_tick:next_tick_delivery_pool": Schedule((Submit(0, 0, _ms("succeed")), Cancel(0, 0))),
    "scenarios.cancel:detaching_pool": Schedule((Submit(0, 0, _ms("succeed")), Cancel(0, 0))),
    "scenarios.cancel:cooperative_cancel_pool": Schedule((Submit(0, 0, _ms("succeed")), Cancel(0, 0))),
    "scenarios.cancel:ticket_pool": Schedule((Submit(0, 0, _ms("immediate")), Cancel(0, 0))),
    "scenarios.error_paths:swallowing_pool": Schedule((Submit(0, 0, _ms("fail")),)),
    "scenarios.error_paths:tee_pool": Schedule((Submit(0, 0, _ms("fail")),)),
    "scenarios.error_paths:bookkeeping_pool": Schedule((Submit(0, 0, _ms("fail")),)),
    "scenarios.queue_workers:no_skip_queue_workers": Schedule(
        (Submit(0, 0, _ms("succeed")), Submit(0, 1, _ms("succeed")), Cancel(0, 1))
    ),
    "scenarios.priority:min_heap_priority_pool": Schedule(
        (Submit(0, 0, _ms("succeed"), 0), Submit(0, 1, _ms("succeed"), 1), Submit(0, 2, _ms("succeed"), 0))
    ),
    "scenarios.priority:idle_flag_scheduler": Schedule(
        (Submit(0, 0, _ms("immediate"), 1), Submit(0, 1, _ms("succeed"), 0))
    ),
    "scenarios.cooperator:dead_worker_pool": Schedule(
        (Submit(0, 0, _ms("fail")), Submit(0, 1, _ms("fail")), Submit(0, 2, _ms("succeed")))
    ),
    # Two failures in a row (the gate reopened between them), then a job long after the cooldown: refused.
    "scenarios.cooldown_gate:sticky_gate": Schedule(
        (Submit(0, 0, _ms("fail")), Submit(200, 1, _ms("fail")), Submit(400, 2, _ms("succeed")))
    ),
    # The job ends at 10 ms; the teardown stop() of the idle pool waits for another that never comes.
    "scenarios.graceful:idle_stop_pool": Schedule((Submit(0, 0, _ms("succeed")),)),
    # Asked after the job ended: the waiter waits for another job that never comes.
    "scenarios.graceful:idle_waiter_pool": Schedule((Submit(0, 0, _ms("succeed")), Call(20, "when_idle"))),
}


def test_every_buggy_scenario_has_a_minimal_schedule() -> None:
    assert set(MINIMAL) == {s.target for s in BUGGY}


def test_the_zoo_covers_every_invariant_of_its_families() -> None:
    from harness.invariants import INVARIANTS

    from test_scenarios_keyed import BUGGY as KEYED_BUGGY

    families = ("concurrency", "cancellation", "errors", "completion", "sharing")
    wanted = {inv.name for inv in INVARIANTS if inv.name.split(".")[0] in families}
    assert wanted <= {s.expect for s in BUGGY + KEYED_BUGGY}
    assert len(CORRECT) >= 5 and len(BUGGY) >= 11


test_minimal_schedule_breaks_the_expected_invariant_first = ZOO.breaks_first(MINIMAL)
test_reference_subject_passes_every_minimal_schedule = ZOO.passes(MINIMAL)
test_reference_subject_passes_a_campaign = ZOO.clean(seed=20, examples=200)
test_reference_subject_passes_1000_examples = ZOO.clean(seed=1000, examples=1000, slow=True)
#: The saved schedule is shrunk to at most six operations and still breaks the same invariant when replayed.
test_buggy_subject_is_caught_by_its_invariant = ZOO.caught(
    seeds=DETECTION_SEED, examples=DETECTION_BUDGET, also=False, max_ops=6, replayed=True)


def test_a_serial_subject_on_a_stalled_reactor_is_not_called_deadlocked() -> None:
    # Four 10 ms jobs one after another, each completion fired up to a 5 s stride late: the last
    # finishes at 20 s. The run must drain that long rather than call the last job stranded.
    schedule = Schedule(tuple(Submit(0, job, _ms("succeed")) for job in range(4)), ClockPolicy(step_ms=5_000))
    run = run_schedule(load_target("scenarios.lock:lock_resource"), schedule)
    assert check(run) == []
    assert sum(1 for event in run.trace if event.kind == "result") == 4
