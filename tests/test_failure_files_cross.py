"""A failure file saved by ``harness fuzz`` replays exactly under the pytest plugin, and the reverse.

pytest rewrites the ``assert`` statements of test modules and of a plugin's distribution (from a
wheel, the bundled ``scenarios``; here ``pytest.register_assert_rewrite`` does what that
installation does), and the failing ones' messages carry its explanation; the harness records
what the plain statement says, so the trace is the same either way (``harness.run.rewritten``).
End to end, as a user meets it, in subprocesses: the CLI in plain Python (nothing rewritten), then
one pytest session that fuzzes the same targets with ``@fuzz`` and replays the CLI's files from
``harness-regressions/``, then ``harness replay`` of the files pytest saved. Before the fix each
replay said "reproduced, but the trace diverged from the saved one".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Targets in a test module (rewritten under pytest): an invariant's assert with a message, a bare one,
#: and a subject whose bare asserts fail a caller's Deferred and a reactor call.
TARGETS = '''
import os

from twisted.internet import defer

from harness import Target
from scenarios.pools import SemaphorePool


def at_most_two(run):
    starts = [e for e in run.trace if e.kind == "job.start"]
    assert len(starts) <= 2, f"{len(starts)} starts"


def at_most_one(run):
    assert len([e for e in run.trace if e.kind == "job.start"]) <= 1


def worded(run):
    """Its message says what the environment says: a message changed since the file was saved."""
    starts = [e for e in run.trace if e.kind == "job.start"]
    assert len(starts) <= 2, f"{len(starts)} starts {os.environ.get('WORDS', 'now')}"


class Checky:
    def __init__(self, clock):
        self.clock = clock

    def submit(self, job):
        self.clock.callLater(0.01, self._tick)
        return defer.maybeDeferred(job).addCallback(self._check)

    @staticmethod
    def _check(result):
        assert (
            result is None
        )
        return result

    def _tick(self):
        assert not self.clock, ("tick", 1)


counted = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, invariants=(at_most_two,))
bare = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, invariants=(at_most_one,))
checky = Target(build=Checky)
changed = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, invariants=(worded,))
'''

#: The bundled scenario whose invariant's assert (with a message) fails, and a seed that finds it quickly.
SCENARIO = "scenarios.breaker:open_gate_breaker"
TARGETS_NAMED = ["test_mine:counted", "test_mine:bare", "test_mine:checky", SCENARIO]

FUZZ_TESTS = "from harness.pytest import fuzz\n" + "".join(
    f'\n\n@fuzz("{name}", max_examples=300)\ndef test_{n}():\n    """fuzz {name}"""\n' for n, name in enumerate(TARGETS_NAMED)
)

CLI_FUZZ = """
import sys
from harness.cli.main import main
assert "_pytest.assertion.rewrite" not in sys.modules
for target in sys.argv[1:]:
    main(["fuzz", target, "--seed", "1", "--max-examples", "300", "--report-dir", "cli", "--regressions", "none"])
"""

CLI_REPLAY = """
import sys
from harness.cli.main import main
for path in sys.argv[1:]:
    main(["replay", path])
"""


def _run(tmp_path: Path, *argv: str, **environ: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for name in ("PYTEST_ADDOPTS", "WORDS"):
        env.pop(name, None)
    env.update(environ)
    done = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    return done.stdout + done.stderr


def _traces(directory: Path) -> dict[str, list[list[object]]]:
    return {path.name: json.loads(path.read_text())["trace"] for path in sorted(directory.glob("*.json"))}


def test_files_replay_exactly_across_the_cli_and_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(TARGETS)
    (tmp_path / "test_fuzz_mine.py").write_text(FUZZ_TESTS)
    (tmp_path / "conftest.py").write_text('import pytest\n\npytest.register_assert_rewrite("scenarios")\n')

    out = _run(tmp_path, "-c", CLI_FUZZ, *TARGETS_NAMED, "test_mine:changed", WORDS="as saved")
    (changed,) = [path for path in (tmp_path / "cli" / "failures").glob("*.json") if json.loads(path.read_text())["target"] == "test_mine:changed"]
    shutil.copytree(tmp_path / "cli" / "failures", tmp_path / "harness-regressions")
    changed.unlink()
    cli = _traces(tmp_path / "cli" / "failures")
    assert len(cli) == len(TARGETS_NAMED), out

    out = _run(tmp_path, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "--harness-seed", "1",
               "--harness-report-dir", "pytest", "test_fuzz_mine.py", "harness-regressions")
    # pytest did rewrite them (the explanation is printed with the message, not recorded in the trace) ...
    assert "FAIL user.at_most_two: 3 starts\\nassert 3 <= 2" in out, out
    assert "FAIL user.at_most_one: assert 2 <= 1" in out, out
    assert "beside job 2\\nassert not {2}" in out, out
    # ... each file the CLI saved reproduced exactly, and pytest saved the same traces (read in the failures'
    # reports: with CI set, pytest's short summary repeats each message whole)
    reports = out.partition("short test summary info")[0]
    assert reports.count("reproduced exactly: the bug this regression file records is back") == len(TARGETS_NAMED), out
    assert _traces(tmp_path / "pytest" / "failures") == cli
    # ... but a message that really changed still diverges, naming both lines
    (diverged,) = [line for line in reports.splitlines() if "diverged" in line]
    assert "3 starts as saved' then '" in diverged and "3 starts now' (saved, then now)" in diverged, diverged

    out = _run(tmp_path, "-c", CLI_REPLAY, *sorted(str(p) for p in (tmp_path / "pytest" / "failures").glob("*.json")))
    assert out.count("reproduced exactly (trace hash") == len(TARGETS_NAMED), out
    assert "diverged" not in out, out
