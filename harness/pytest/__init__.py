"""The harness in a pytest suite; the plugin itself is ``harness.pytest_plugin``, active once installed."""

from .settings import HarnessSettings

__all__ = ["HarnessSettings"]
