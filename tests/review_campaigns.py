"""What the outside-user review tests share (tests/test_review_targets.py, round 1, and
tests/test_review_round2.py): a bounded, reproducible campaign on a target, the test id of a
target, and the skip for targets that need the thirdparty extra."""

from __future__ import annotations

from typing import Any

import pytest

from harness import CampaignConfig, CampaignResult, Target, load_target, run_campaign

#: Modules whose targets import matrix-synapse.
SYNAPSE_MODULES = ("scenarios.thirdparty.synapse_prims", "scenarios.thirdparty.synapse_more")


def campaign(spec: str, seed: int, examples: int, tmp_path: Any, target: Target | None = None,
             max_failures: int = 1) -> CampaignResult:
    """A campaign that is a pure function of seed and target: no database, no regressions."""
    config = CampaignConfig(seed=seed, max_examples=examples, report_dir=str(tmp_path), database=None,
                            regressions=None, max_failures=max_failures)
    return run_campaign(target or load_target(spec), spec, config)


def spec_id(spec: str) -> str:
    """The test id of a target: its attribute name."""
    return spec.split(":")[1]


def needs_synapse(spec: str) -> None:
    """Skip a test of a Synapse target when the thirdparty extra is not installed."""
    if spec.startswith(SYNAPSE_MODULES):
        pytest.importorskip("synapse", reason="needs the thirdparty extra: pip install -e '.[thirdparty]'")
