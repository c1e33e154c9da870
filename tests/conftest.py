"""Shared test settings and services.

Bounded Hypothesis example counts keep the default suite fast. The ``redis_url``
fixture gives tests a real Redis server on loopback: the one named by
``HARNESS_TEST_REDIS`` (``.ci/run`` starts one and sets it; its database is
flushed before each test that uses it, so point it at a server for tests
only), else a ``redis-server`` started here on a free loopback port for the
session, else the test is skipped saying how to get one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

#: The shared verdict helpers' plain asserts show what they compared, as a test's own do (pytest rewrites
#: only test modules and conftest unless told); without it a failed zoo check said "AssertionError" alone.
pytest.register_assert_rewrite("zoo_checks", "review_campaigns")

settings.register_profile(
    "harness-tests", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "harness-tests"))

REDIS_HOW = "install redis-server (apt-get install redis-server) or set HARNESS_TEST_REDIS=redis://127.0.0.1:PORT/0"


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of a Redis server on loopback for this test session (see the module docstring)."""
    redis = pytest.importorskip("redis", reason="the redis package is missing: pip install -e '.[test]'")
    url = os.environ.get("HARNESS_TEST_REDIS")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(f"no Redis server for the shared-database tests: {REDIS_HOW}")
    port = _free_loopback_port()
    workdir = tempfile.mkdtemp(prefix="harness-redis-")
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"redis-server did not start on 127.0.0.1:{port}: {REDIS_HOW}")
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """A Redis URL whose database starts empty for this test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server
