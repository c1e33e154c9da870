"""A target's menu: derived from its promises, changed field by field independently of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import CampaignConfig, Menu, Target, TargetError, load_target, run_campaign
from harness.invariants import INVARIANTS
from scenarios.pools import SemaphorePool


def _pool(**kw) -> Target:
    return Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, **kw)


def test_derived_menu_follows_the_promises() -> None:
    assert _pool().default_menu() == Menu.derived(_pool())
    assert Menu.derived(_pool()).canceller_raises and Menu.derived(_pool()).cancels
    quiet = _pool(cancellable=False)
    assert not quiet.default_menu().canceller_raises and not quiet.default_menu().cancels


def test_keyword_overrides_change_only_the_named_fields() -> None:
    kinds = ("succeed", "fail", "raise", "hang")
    target = _pool(cancellable=False, menu={"canceller_raises": True, "job_kinds": kinds})
    menu = target.default_menu()
    assert menu == Menu.derived(_pool(cancellable=False)).with_(canceller_raises=True, job_kinds=kinds)
    assert menu.canceller_raises and not menu.cancels and menu.job_kinds == kinds
    assert isinstance(target.menu, Menu)  # resolved once, at construction


def test_a_whole_menu_is_used_as_given() -> None:
    mine = Menu(max_ops=3, jumps=False)
    assert _pool(menu=mine).default_menu() is mine


@pytest.mark.parametrize(
    "menu, words",
    [
        ({"no_such_field": 1}, "no field 'no_such_field'"),
        ({"job_kinds": ("explode",)}, "job_kinds"),
        ("everything", "must be a harness.Menu or a dict"),
    ],
)
def test_bad_menu_overrides_are_one_line_target_errors(menu, words) -> None:
    with pytest.raises(TargetError, match=words):
        _pool(menu=menu)


def test_with_names_the_unknown_field() -> None:
    with pytest.raises(ValueError, match="no field 'stopz'.*max_ops"):
        Menu().with_(stopz=True)


def test_every_menu_field_is_documented() -> None:
    doc = Menu.__doc__ or ""
    page = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "faults.md").read_text(encoding="utf-8")
    for name in Menu.__dataclass_fields__:
        assert f"``{name}``" in doc, name
        assert f"`{name}`" in page, name


def test_the_clock_policy_values_drawn_are_documented() -> None:
    """Review 4, finding 9: the strides and jitters drawn are written out (a grace or timeout is chosen
    against them), and the page and the docstring follow the defaults when they change."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "faults.md").read_text(encoding="utf-8")
    row = next(line for line in page.splitlines() if line.startswith("| `tie_breaks`, `steps_ms`, `jitters_ms` |"))
    menu = Menu()
    for values in (menu.tie_breaks, menu.steps_ms, menu.jitters_ms):
        assert f"`{values!r}`".replace("'", '"') in row, (values, row)
    doc = " ".join((Menu.__doc__ or "").split())
    assert "(fifo, lifo, shuffle)" in doc and "(0, 10, 100, 1,000, 5,000 ms" in doc and "(0, 5, 50 ms)" in doc
    assert menu.tie_breaks == ("fifo", "lifo", "shuffle")
    assert menu.steps_ms == (0, 10, 100, 1_000, 5_000) and menu.jitters_ms == (0, 5, 50)


def test_timeout_wrapper_meets_raising_cancellers_without_cancellation_checks(tmp_path) -> None:
    """The timeout wrapper of docs/reference/faults.md: hostile cancellers generated, no cancellation invariant switched on, no false alarm."""
    spec = "scenarios.timeout:timeout_wrapper"
    target = load_target(spec)
    assert target.default_menu().canceller_raises and not target.default_menu().cancels
    assert not [inv.name for inv in INVARIANTS if inv.name.startswith("cancellation.") and inv.applies(target)]
    hostile = []

    def count(schedule, run) -> None:
        hostile.extend(e for e in run.trace if e.kind == "job.cancel" and e.detail == "canceller raised")

    config = CampaignConfig(seed=5, max_examples=200, report_dir=str(tmp_path), database=None, regressions=None)
    result = run_campaign(target, spec, config, on_run=count)
    assert [f.record.message for f in result.findings] == []
    assert hostile, "no timeout met a raising canceller: the menu override did not take"


def test_a_custom_submit_gets_priority_0_unless_priorities_are_generated() -> None:
    """docs/reference/target.md: a custom submit always gets the priority; it is 0 unless order="priority" or the menu has priorities."""
    from harness import run_schedule
    from harness.search.strategies import schedules

    seen: list[int] = []

    def submit(subject, job, priority):
        seen.append(priority)
        return subject.submit(job)

    from hypothesis import given, settings

    def play(target: Target) -> None:
        @settings(max_examples=30, database=None, derandomize=True)
        @given(schedules(target.default_menu()))
        def each(schedule) -> None:
            run_schedule(target, schedule)

        each()

    plain = _pool(submit=submit)
    assert plain.default_menu().priorities == 0
    play(plain)
    assert seen and set(seen) == {0}
    seen.clear()
    play(_pool(submit=submit, menu={"priorities": 3}))
    assert set(seen) > {0}
