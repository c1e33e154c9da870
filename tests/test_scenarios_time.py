"""The time and leaks zoo: every reference subject passes long campaigns, every buggy one is caught by its invariant."""

from __future__ import annotations

from harness import INVARIANTS
from scenarios import TIME_MODULES, zoo

from zoo_checks import Zoo

ZOO = Zoo.of(zoo(*TIME_MODULES))
CORRECT, BUGGY = ZOO.correct, ZOO.buggy

#: Examples a buggy subject must be caught within; the slowest to find takes a few hundred.
DETECT_WITHIN = 2_000


def test_the_zoo_covers_every_time_and_leaks_invariant() -> None:
    assert len(CORRECT) >= 4 and len(BUGGY) >= 9
    families = {inv.name for inv in INVARIANTS if inv.name.split(".")[0] in ("time", "leaks")}
    assert families <= {s.expect for s in BUGGY}
    assert {s.expect for s in BUGGY} <= {inv.name for inv in INVARIANTS}


test_reference_subject_passes_a_campaign = ZOO.clean(seed=200, examples=200)
test_reference_subject_passes_1000_examples = ZOO.clean(seed=1000, examples=1000, slow=True)
#: The first finding names ``expect`` exactly, shrunk to at most six operations.
test_buggy_subject_is_caught_by_its_invariant = ZOO.caught(
    seeds=1, examples=DETECT_WITHIN, also=False, shrunk=True, max_ops=6)
#: On every other seed too, as the one finding.
test_buggy_subject_is_caught_whatever_the_seed = ZOO.caught(
    seeds=[2, 3, 4, 5], examples=DETECT_WITHIN, slow=True, also=False, only=True)
