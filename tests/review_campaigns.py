"""What the outside-user review tests share (tests/test_review_targets.py, round 1, and
tests/test_review_round2.py to round 6): a bounded, reproducible campaign on a target, the three
verdicts of a review round (a correct component clean, a twin caught alone, caught on another seed),
the test id of a target, and the skip for targets that need the thirdparty extra. Also the checks
every third-party test bed (``tests/test_thirdparty_buildbot.py``, ``..._scrapy.py``) makes: its skip
without the library, its catalogue entries, its rows on the scenarios page, loading it without the
library, and each twin caught, shrunk and replayed.

:func:`campaign` is the one reproducible campaign of the test suite: ``tests/zoo_checks.py`` and the
invariant-semantics tests (``tests/fault_campaigns.py``) run it too."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness import INVARIANTS, CampaignConfig, CampaignResult, Menu, Target, load_target, run_campaign
from harness.search.generate import DEFAULT_STRATEGY
from scenarios import CATALOG
from scenarios.thirdparty import SCENARIOS as THIRDPARTY
from scenarios.thirdparty import available, requires

#: Modules whose targets import matrix-synapse.
SYNAPSE_MODULES = ("scenarios.thirdparty.synapse_prims", "scenarios.thirdparty.synapse_more")


def campaign(spec: str, seed: int, examples: int, tmp_path: Any, target: Target | None = None,
             max_failures: int | None = 1, *, strategy: str = DEFAULT_STRATEGY,
             all_faults: bool = False) -> CampaignResult:
    """A campaign that is a pure function of its arguments: no database, no regressions.

    ``target``: the loaded target to run (else ``spec`` is loaded). ``max_failures``: it stops at that
    many findings (by default the first, as ``harness run`` does; None: one per invariant, so that every
    distinct alarm is counted). ``all_faults``: the target's menu with wall-clock jumps, every
    tie-break, stride and jitter on (as ``benchmarks/soak.py`` runs it)."""
    target = target or load_target(spec)
    menu = None
    if all_faults:
        full = Menu()
        menu = replace(target.default_menu(), jumps=True, tie_breaks=full.tie_breaks, steps_ms=full.steps_ms,
                       jitters_ms=full.jitters_ms)
    config = CampaignConfig(seed=seed, max_examples=examples, strategy=strategy, report_dir=str(tmp_path),
                            database=None, regressions=None, menu=menu,
                            max_failures=len(INVARIANTS) if max_failures is None else max_failures)
    return run_campaign(target, spec, config)


def assert_stays_clean(spec: str, tmp_path: Any, examples: int, seed: int = 1) -> None:
    """A correct component of a review round: a campaign of ``examples`` examples from ``seed`` runs
    them all, with no error and no alarm (the messages are shown if any)."""
    result = campaign(spec, seed=seed, examples=examples, tmp_path=tmp_path)
    assert result.error is None, result.error
    assert result.findings == [], [f.violation.message for f in result.findings]
    assert result.examples == examples, result.examples


def assert_caught_alone(spec: str, invariant: str, tmp_path: Any, examples: int = 3000) -> None:
    """A buggy twin of a review round: a seed-1 campaign of ``examples`` examples finds it with
    ``invariant`` alone, within them, shrinks it to the end and saves the failure file."""
    result = campaign(spec, seed=1, examples=examples, tmp_path=tmp_path)
    assert result.error is None, result.error
    found = [f.violation.invariant for f in result.findings]
    assert found == [invariant], f"{spec}: expected {invariant} alone, found {found}"
    [finding] = result.findings
    assert finding.shrunk and finding.path is not None and finding.path.exists(), (finding.shrunk, finding.path)
    assert finding.examples_to_detect is not None and finding.examples_to_detect <= examples, finding.examples_to_detect


def assert_caught_as(spec: str, accepted: set[str], tmp_path: Any, seed: int, examples: int = 3000) -> None:
    """A buggy twin of a review round, on another seed: the campaign's one finding names one of the
    ``accepted`` invariants (one bug may show as several true symptoms)."""
    result = campaign(spec, seed=seed, examples=examples, tmp_path=tmp_path)
    [finding] = result.findings
    assert finding.violation.invariant in accepted, f"{spec}: {finding.violation.invariant} not in {sorted(accepted)}"


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


def needs_extra(name: str, correct: tuple[str, ...]) -> pytest.MarkDecorator:
    """Skip a test of the third-party test bed unless every one of its ``correct`` targets can load
    (``name``, the library they wrap, is installed with the thirdparty extra)."""
    return pytest.mark.skipif(not all(available(s) for s in THIRDPARTY if s.target in correct),
                              reason=f"needs {name}, in the thirdparty extra: pip install -e '.[thirdparty]'")


def assert_listed_needing(correct: tuple[str, ...], names: list[str], package: str) -> None:
    """The test bed's ``correct`` targets are named ``names``, in that order, and each is in the
    catalog as a passing scenario of a ``package`` primitive that needs ``package`` installed."""
    assert [spec_id(spec) for spec in correct] == names
    listed = {s.target: s for s in CATALOG}
    for spec in correct:
        assert listed[spec].expect == "pass" and listed[spec].primitive.startswith(package)
        assert requires(listed[spec]) == package


def assert_tabled(correct: tuple[str, ...], twins: Iterable[str]) -> None:
    """docs/scenarios.md tables each of the test bed's ``correct`` targets (as ``module:name``
    under ``scenarios.thirdparty``) and each of its ``twins`` (by name)."""
    page = (ROOT / "docs" / "scenarios.md").read_text()
    for spec in correct:
        assert f"`{spec.removeprefix('scenarios.thirdparty.')}`" in page, spec
    for spec in twins:
        assert f"`{spec_id(spec)}`" in page, spec


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
