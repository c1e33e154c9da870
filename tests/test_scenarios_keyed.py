"""Keyed, shared and stateful scenarios: each reference subject keeps its promises, each buggy one is caught.

As for the work-submission zoo: a hand-written minimal schedule per bug that
breaks exactly the expected invariant first and that every reference subject
of the module passes; a campaign per reference subject that finds nothing
(200 examples, 5,000 marked slow); and for every buggy subject, campaigns on
seeds 1 to 5 that each name the expected invariant.
"""

from __future__ import annotations

import importlib

from harness import JobSpec, Schedule, Submit, Target
from harness.model.schedule import Call, Cancel

from zoo_checks import Zoo, name_id

MODULES = ("keyed_lock", "single_flight", "batching", "breaker")
SCENARIOS = tuple(s for name in MODULES for s in importlib.import_module(f"scenarios.{name}").SCENARIOS)
ZOO = Zoo.of(SCENARIOS, ids=name_id)
CORRECT, BUGGY = ZOO.correct, ZOO.buggy
#: Examples each detection campaign may spend; each bug is found in far fewer on seeds 1 to 5.
DETECTION_BUDGET = 1_000


def _ms(kind: str = "succeed", after_ms: int = 10) -> JobSpec:
    return JobSpec(kind, after_ms if kind in ("succeed", "fail") else 0)


MINIMAL = {
    "scenarios.keyed_lock:early_drop_keyed_lock": Schedule((Submit(0, 0, _ms()), Submit(0, 1, _ms()), Submit(15, 2, _ms()))),
    "scenarios.keyed_lock:queue_keyed_lock": Schedule(
        (Submit(0, 0, _ms()), Submit(0, 1, _ms()), Cancel(0, 1), Submit(0, 2, _ms()))
    ),
    "scenarios.single_flight:leader_holds_work_flight": Schedule((Submit(0, 0, _ms()), Submit(0, 1, _ms()), Cancel(5, 0))),
    "scenarios.single_flight:abandoning_flight": Schedule((Submit(0, 0, _ms()), Submit(0, 1, _ms()), Cancel(5, 0))),
    "scenarios.single_flight:owner_cancels_flight": Schedule((Submit(0, 0, _ms()), Submit(0, 1, _ms()), Cancel(5, 0))),
    "scenarios.single_flight:caches_failures_flight": Schedule((Submit(0, 0, _ms("fail")), Submit(20, 1, _ms()))),
    "scenarios.batching:flag_cancel_queue": Schedule((Submit(0, 0, _ms()), Cancel(0, 0))),
    "scenarios.batching:in_order_queue": Schedule((Submit(0, 0, _ms("succeed", 20)), Submit(0, 1, _ms()), Call(0, "flush"))),
    "scenarios.batching:empty_flush_queue": Schedule((Call(0, "flush"),)),
    # Two failures open the breaker; 100ms later two calls come together: only one may be the trial.
    "scenarios.breaker:open_gate_breaker": Schedule(
        (Submit(0, 0, _ms("fail")), Submit(0, 1, _ms("fail")), Submit(110, 2, _ms()), Submit(110, 3, _ms()))
    ),
    "scenarios.breaker:swallowing_trial_breaker": Schedule((Call(0, "trip"), Submit(100, 0, _ms("fail")))),
}


def test_every_buggy_scenario_has_a_minimal_schedule() -> None:
    assert set(MINIMAL) == {s.target for s in BUGGY}


test_minimal_schedule_breaks_the_expected_invariant_first = ZOO.breaks_first(MINIMAL)
test_reference_subject_passes_the_minimal_schedules_of_its_module = ZOO.passes(MINIMAL, same_module=True)
test_reference_subject_passes_a_campaign = ZOO.clean(seed=20, examples=200, counted=False)


def _draws_hangs_and_raising_cancellers(target: Target) -> None:
    menu = target.default_menu()
    assert "hang" in menu.job_kinds and menu.canceller_raises == bool(target.cancellable)


test_reference_subject_passes_2500_examples = ZOO.clean(
    seed=5000, examples=2500, slow=True, given=_draws_hangs_and_raising_cancellers)
test_buggy_subject_is_caught_by_its_invariant_on_seeds_1_to_5 = ZOO.caught(
    seeds=range(1, 6), examples=DETECTION_BUDGET, also=False)
