"""The harness in a pytest suite: ``@fuzz`` turns a target into a test, fixtures serve hand-written properties.

The plugin itself (options, markers, fixtures, regression files as tests) is
``harness.pytest.plugin``, active once the package is installed. Import from
here what a test module names::

    from harness.pytest import fuzz

    @fuzz("mypkg.harness_targets:pool")
    def test_pool_keeps_its_limit():
        "The pool never runs more than 3 jobs, whatever the schedule."

The top layer: may import every other layer of the package.
"""

from harness.pytest.fixtures import HarnessRunner
from harness.pytest.fuzz import fuzz
from harness.pytest.report import InvariantViolated
from harness.pytest.settings import HarnessSettings

__all__ = ["HarnessRunner", "HarnessSettings", "InvariantViolated", "fuzz"]
