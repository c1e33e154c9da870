"""The harness in a pytest suite: ``@fuzz`` turns a target into a test, fixtures serve hand-written properties.

The plugin itself (options, markers, fixtures, regression files as tests) is
``harness.pytest_plugin``, active once the package is installed. Import from
here what a test module names::

    from harness.pytest import fuzz

    @fuzz("mypkg.harness_targets:pool")
    def test_pool_keeps_its_limit():
        "The pool never runs more than 3 jobs, whatever the schedule."
"""

from .fixtures import HarnessRunner
from .fuzz import fuzz
from .report import InvariantViolated
from .settings import HarnessSettings

__all__ = ["HarnessRunner", "HarnessSettings", "InvariantViolated", "fuzz"]
