"""``@fuzz``: turn a target into a pytest test in one line.

The decorated function is only a name and a docstring for the test: its body
is never run, the target's invariants are the test. The plugin runs a
campaign with the session's seed and budget, and on a violation fails the
test with the minimal timeline, the saved failure file, the replay command
and the pytest line that reruns just this test with the same seed.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from harness.model.trace import counted
from harness.search.stop_reasons import StopReason
from harness.search.campaign import CampaignConfig, run_campaign
from harness.errors import HarnessError
from harness.model.target import Target
from harness.pytest.report import InvariantViolated, failure_message, rerun_line, rerun_nodeid
from harness.pytest.settings import parse_budget, parse_examples, settings_of
from harness.pytest.targets import resolve_target

#: Attribute under which a ``@fuzz`` test carries its ``FuzzTest``.
FUZZ_ATTRIBUTE = "harness_fuzz"


@dataclass
class FuzzTest:
    """The target of one ``@fuzz`` test, named and loaded once, at collection."""

    target: Target | str
    spec: str | None = None
    loaded: Target | None = None
    #: The test's own size (``@fuzz(target, max_examples=..., budget=...)``), None where not given.
    max_examples: int | None = None
    budget_s: float | None = None

    def resolve(self) -> tuple[str, Target]:
        """The target's string and object; raises ``TargetError`` naming the target."""
        if self.spec is None or self.loaded is None:
            self.spec, self.loaded = resolve_target(self.target)
        return self.spec, self.loaded


def fuzz(
    target: Target | str, *, max_examples: int | None = None, budget: float | None = None
) -> Callable[[Callable[[], Any]], Callable[..., None]]:
    """Make the decorated, argument-less function a test that fuzzes ``target``.

    ``target`` is a ``'package.module:attribute'`` string or a module-level
    ``harness.Target``. Example::

        from harness.pytest import fuzz

        @fuzz("mypkg.harness_targets:pool")
        def test_pool_keeps_its_limit():
            "The pool never runs more than 3 jobs, whatever the schedule."

    ``max_examples`` and ``budget`` (seconds) give this test its own size,
    replacing the ini settings as a ``harness_slow`` marker's do (the
    command line and such a marker still win), without marking it slow:
    ``@fuzz("mypkg.harness_targets:pool", max_examples=200)``. Mark it
    ``@pytest.mark.harness_slow(budget=300)`` for a long campaign.
    """
    if not isinstance(target, (str, Target)):
        raise TypeError(
            f"@fuzz takes a target string 'package.module:attribute' or a harness.Target, "
            f"got {type(target).__name__} {target!r}"
        )
    own_examples = _own_size(target, "max_examples", max_examples, parse_examples)
    own_budget = _own_size(target, "budget", budget, parse_budget)

    def decorate(func: Callable[[], Any]) -> Callable[..., None]:
        if not callable(func):
            raise TypeError(f"@fuzz({target!r}) decorates a test function, got {func!r}")
        if inspect.signature(func).parameters:
            raise TypeError(
                f"@fuzz test {func.__name__} must take no arguments: its body is not run, the target's invariants "
                "are the test; use the harness_runner fixture for hand-written properties"
            )
        fuzz_test = FuzzTest(target, max_examples=own_examples, budget_s=own_budget)

        def test(request: pytest.FixtureRequest) -> None:
            __tracebackhide__ = True
            run_fuzz_test(request, fuzz_test)

        test.__name__ = func.__name__
        test.__qualname__ = func.__qualname__
        test.__doc__ = func.__doc__
        test.__module__ = func.__module__
        # pytest reads marks from an attribute that a function's type does not declare:
        test.pytestmark = [*getattr(func, "pytestmark", []), pytest.mark.harness_fuzz(target)]  # type: ignore[attr-defined]
        setattr(test, FUZZ_ATTRIBUTE, fuzz_test)
        return test

    return decorate


def _own_size(target: Target | str, key: str, value: Any, parse: Callable[[str], Any]) -> Any:
    """A size given to ``@fuzz``, checked as the settings are (a bool is no count); None stays None."""
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise argparse.ArgumentTypeError(f"expected a number, got {value!r}")
        return parse(str(value))
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"@fuzz({target!r}, {key}={value!r}): {exc}") from None


def run_fuzz_test(request: pytest.FixtureRequest, fuzz_test: FuzzTest) -> None:
    """Run the campaign of one ``@fuzz`` test and fail it on the first violation found."""
    __tracebackhide__ = True
    config = request.config
    settings = settings_of(config)
    node = request.node
    stopped: HarnessError | None = None
    try:
        spec, target = fuzz_test.resolve()
        max_examples, budget = settings.limits(
            node.get_closest_marker("harness_slow"), own=(fuzz_test.max_examples, fuzz_test.budget_s)
        )
        result = run_campaign(
            target,
            spec,
            CampaignConfig(
                max_examples=max_examples,
                budget_s=budget,
                seed=settings.seed,
                report_dir=str(settings.report_dir),
                max_failures=1,
            ),
        )
    except HarnessError as exc:
        # A failure found before the error (a file that could not be saved) is still the test's report.
        if not getattr(exc.result, "findings", None):
            pytest.fail(f"harness: {exc}", pytrace=False)
        stopped, result = exc, exc.result
    if result.stopped_by == StopReason.INTERRUPT:
        raise KeyboardInterrupt
    node.user_properties.extend(
        [("harness_target", spec), ("harness_seed", result.seed), ("harness_examples", result.examples)]
    )
    node.add_report_section(
        "call",
        "harness",
        f"{spec}: {counted(result.examples, 'example')} in {result.elapsed_s:.1f}s with seed {result.seed}; "
        f"stopped by {result.stopped_by}",
    )
    if not result.findings:
        return
    finding = result.findings[0]
    start = config.invocation_params.dir
    rerun = rerun_line(
        rerun_nodeid(config, node.nodeid), ["--harness-seed", str(result.seed), *settings.rerun_args]
    )
    not_saved = f"{stopped}" if stopped is not None and finding.path is None else ""
    # A regression file a campaign replayed is its path, read and not written: "saved:" only for a file written.
    label = "regression file" if finding.source == "regression" else "saved"
    text = failure_message(
        finding.record, path=finding.path, start=start, rerun=rerun, not_saved=not_saved, path_label=label
    )
    if stopped is not None and not not_saved:
        text += f"\nharness: then {stopped}"
    raise InvariantViolated(text, finding.record, finding.path)

