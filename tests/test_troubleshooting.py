"""The troubleshooting page (docs/troubleshooting.md) is built from the messages the harness really prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import robust_targets
from harness import HarnessError, JobSpec, Schedule, Submit, Target, load_target, run_schedule
from harness.store.failure_file import load

PAGE = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"
ONE = Schedule((Submit(0, 0, JobSpec("succeed", 10)),))
THREE = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(10, 1, JobSpec("succeed", 10)), Submit(20, 2)))


def _message(action) -> str:
    try:
        action()
    except HarnessError as exc:
        return str(exc)
    raise AssertionError("no error")


def _bad_file(tmp_path: Path, content: object) -> str:
    path = tmp_path / "x.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return _message(lambda: load(path))


def _run(target: Target, schedule: Schedule = ONE, timeout_s: float = 0.2):
    return lambda: run_schedule(target, schedule, timeout_s=timeout_s)


#: For each case: how to get the real message, and the fragments of it the page must quote.
CASES = {
    "hang": (_run(robust_targets.spinning, THREE), ["target hung in step ", ") at virtual time ", "ms: it did not return within the "]),
    # A livelock is detected by counting rounds, not by time: a generous limit keeps a loaded machine from calling it a hang.
    "livelock": (_run(robust_targets.livelock, THREE, timeout_s=30.0), ["target livelocked ", "scheduled calls kept scheduling more calls for the same instant"]),
    "build hang": (_run(robust_targets.spinning_build), ["the target's build(clock) never returned: "]),
    "reactor": (
        _run(robust_targets.defer_later),
        ["the target called reactor.callLater in step 1 (submit job 0) at virtual time 0ms, escaping virtual time; "
         "pass the clock given to build(clock) to your code instead of using the global reactor "
         "(e.g. deferLater(clock, ...), LoopingCall.clock = clock); or, for code written on the global reactor, "
         "declare Target(global_reactor='lend') to lend it the run's clock"],
    ),
    "sleep": (_run(robust_targets.sleeping), ["the target called time.sleep in ", "; wait with clock.callLater or deferLater(clock, seconds) instead of sleeping for real"]),
    "build": (_run(robust_targets.failing_build), ["the target's build(clock) raised ValueError: "]),
    "stop": (_run(robust_targets.bad_stop), ["the subject's stop() raised "]),
    "exit": (_run(robust_targets.exiting), ["the target raised SystemExit(3) in build(clock) "]),
    "error name": (
        _run(robust_targets.counting, Schedule((Submit(0, 2, JobSpec("fail", 0, "Boom")),))),
        ["job 2 injects 'Boom', which is neither a built-in error nor one the target declares ("],
    ),
    "json": (lambda tmp: _bad_file(tmp, '{"format": "harn'), ["is not valid JSON (", "; it may be truncated"]),
    "newer": (
        lambda tmp: _bad_file(tmp, {"format": "harness-failure", "version": 2}),
        ["has format version 2; this harness reads versions 1 to 1 (it was written by a newer harness: upgrade to read it)"],
    ),
    "target string": (lambda tmp: _message(lambda: load_target("pkg.module")), ["must look like 'package.module:attribute'"]),
    "not a target": (lambda tmp: _message(lambda: load_target("os:system")), ["'os:system' is a builtin_function_or_method, not a harness.Target"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_message_is_quoted_in_the_troubleshooting_page(case, tmp_path) -> None:
    produce, fragments = CASES[case]
    message = produce(tmp_path) if case in ("json", "newer", "target string", "not a target") else _message(produce)
    section = PAGE.read_text()
    for fragment in fragments:
        assert fragment in message, message
        assert fragment in section, fragment


def test_nondeterminism_message_is_in_the_troubleshooting_page() -> None:
    from harness.search.verdict import NONDETERMINISTIC_FIX

    section = PAGE.read_text()
    assert "is nondeterministic: the same schedule gave two different traces, first differing at event" in section
    assert NONDETERMINISTIC_FIX.split(" (")[0] in section


def test_the_saved_nondeterministic_schedule_is_in_the_troubleshooting_page(tmp_path, monkeypatch) -> None:
    from harness import CampaignConfig, NondeterministicTarget, run_campaign

    monkeypatch.chdir(tmp_path)
    with pytest.raises(NondeterministicTarget) as caught:
        run_campaign(robust_targets.counting, "robust_targets:counting", CampaignConfig(seed=1, report_dir="reports"))
    ending = str(caught.value).split("; ")[-1]
    assert ending.startswith("the schedule is saved: watch the two runs part with harness replay reports/nondeterministic/")
    assert ending.rsplit("/", 1)[0] + "/<id>.json" in PAGE.read_text()
