"""A target's adapter mistakes are target errors (exit 2, one line), never the subject's violations."""

from __future__ import annotations

import sys
import textwrap

import pytest
from twisted.internet import defer

from harness import CampaignConfig, Target, TargetError, run_campaign
from harness.cli.main import main


class _Pool:
    """A subject whose submit itself raises TypeError for one kind of job: the subject's own bug."""

    def __init__(self, clock) -> None:
        self.clock = clock

    def submit(self, job, key):
        return defer.maybeDeferred(job)


class _Runner(_Pool):
    def run(self, key, job):
        return defer.maybeDeferred(job)


class _Broken(_Pool):
    def submit(self, job, key):
        return None + 1  # a TypeError inside the subject's own submit


def test_an_adapter_of_the_wrong_arity_is_refused_when_the_target_is_built() -> None:
    with pytest.raises(TargetError, match=r"Target submit is called as submit\(subject, job, priority\)"):
        Target(build=_Pool, keys=2, submit=lambda subject, job: subject.submit(job, job.key))
    with pytest.raises(TargetError, match=r"Target stop is called as stop\(subject\)"):
        Target(build=_Pool, stop=lambda: None)
    Target(build=_Pool, keys=2, submit=lambda subject, job, *rest: subject.submit(job, job.key))  # *args is fine


def _fuzz(tmp_path, body: str, monkeypatch, capsys) -> tuple[int, str]:
    (tmp_path / "adapted.py").write_text(textwrap.dedent(body))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    sys.modules.pop("adapted", None)
    code = main(["fuzz", "adapted:target", "--seed", "1", "--max-examples", "20", "--report-dir", str(tmp_path / "r")])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (  # a common mistake: a subject with no submit method, default adapter with keys
            """
            from harness import Target
            from tests_adapter_subject import Runner
            target = Target(build=Runner, keys=2)
            """,
            "the default submit calls subject.submit(job), but the subject (Runner) has no submit method",
        ),
        (  # the adapter calls the subject's method with the wrong arguments
            """
            from harness import Target
            from tests_adapter_subject import Pool
            target = Target(build=Pool, keys=2, submit=lambda subject, job, priority: subject.submit(job, job.key, 3))
            """,
            "the target's submit(subject, job, priority) adapter raised TypeError",
        ),
        (  # the adapter names a method the subject does not have
            """
            from harness import Target
            from tests_adapter_subject import Pool
            target = Target(build=Pool, keys=2, submit=lambda subject, job, priority: subject.get(job.key, job))
            """,
            "the target's submit(subject, job, priority) adapter raised AttributeError",
        ),
        (  # the default adapter's call does not fit the subject's submit
            """
            from harness import Target
            from tests_adapter_subject import Pool
            target = Target(build=Pool)
            """,
            "the default submit calls subject.submit(job), but Pool.submit does not accept that",
        ),
    ],
)
def test_adapter_mistakes_exit_2_in_one_line_naming_the_adapter(body, message, tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "tests_adapter_subject.py").write_text(
        "from twisted.internet import defer\n"
        "class Pool:\n"
        "    def __init__(self, clock):\n        self.clock = clock\n"
        "    def submit(self, job, key):\n        return defer.maybeDeferred(job)\n"
        "class Runner:\n"
        "    def __init__(self, clock):\n        self.clock = clock\n"
        "    def run(self, key, job):\n        return defer.maybeDeferred(job)\n"
    )
    sys.modules.pop("tests_adapter_subject", None)
    code, err = _fuzz(tmp_path, body, monkeypatch, capsys)
    assert code == 2, err
    assert err.startswith(f"harness: error: {message}") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))


def test_the_subjects_own_type_error_inside_submit_stays_its_bug(tmp_path) -> None:
    for adapter in (None, lambda subject, job, priority: subject.submit(job, job.key)):
        target = Target(build=_Broken, keys=2, submit=adapter)
        result = run_campaign(target, "adapter:broken", CampaignConfig(seed=1, max_examples=20, report_dir=str(tmp_path)))
        assert [f.violation.invariant for f in result.findings] == ["errors.propagate"]


def test_a_correct_adapted_subject_stays_clean(tmp_path) -> None:
    target = Target(build=_Runner, keys=2, submit=lambda subject, job, priority: subject.run(job.key, job))
    result = run_campaign(target, "adapter:lock", CampaignConfig(seed=1, max_examples=30, report_dir=str(tmp_path)))
    assert not result.findings
