"""What the outside-user review tests share (tests/test_review_targets.py, round 1, and
tests/test_review_round2.py): a bounded, reproducible campaign on a target, the test id of a
target, and the skip for targets that need the thirdparty extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
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


#: The checkout's root: where the subprocesses below run.
ROOT = Path(__file__).resolve().parent.parent


def assert_twin_caught(spec: str, invariant: str, tmp_path: Any, max_ops: int = 4) -> None:
    """A twin of the third-party test bed: a seed-11 campaign of 3,000 examples finds it with
    ``invariant`` alone, shrinks it to ``max_ops`` operations at most, and ``harness replay``
    reproduces the saved failure exactly."""
    result = campaign(spec, seed=11, examples=3000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == [invariant]
    [finding] = result.findings
    assert finding.shrunk and finding.path is not None
    assert len(json.loads(Path(finding.path).read_text())["schedule"]["ops"]) <= max_ops
    proc = subprocess.run([sys.executable, "-m", "harness.cli.main", "replay", str(finding.path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert "reproduced exactly" in proc.stdout, proc.stdout + proc.stderr


def assert_listed_without(module: str, prefix: str, target: str) -> None:
    """Without ``module`` installed (``sys.modules[module] = None``), ``harness list`` still lists
    the targets under ``prefix`` (none ``available``), listing them imports nothing of it, and
    loading ``target`` fails with one line saying what to install."""
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from harness.cli.main import main\n"
        "from harness import TargetError, load_target\n"
        "from scenarios.thirdparty import SCENARIOS, available\n"
        "assert main(['list']) == 0\n"
        f"assert not any(available(s) for s in SCENARIOS if s.target.startswith({prefix + ':'!r}))\n"
        "try:\n"
        f"    load_target({target!r})\n"
        "except TargetError as exc:\n"
        "    print('ERROR', exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert target in proc.stdout
    error = proc.stdout.splitlines()[-1]
    assert error.startswith("ERROR ") and "pip install -e '.[thirdparty]'" in error
    assert "Traceback" not in proc.stderr
    listing = f"import sys; from scenarios import CATALOG; assert {module!r} not in sys.modules; print(len(CATALOG))"
    proc = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
