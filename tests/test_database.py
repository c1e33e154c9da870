"""The example database: a directory or a Redis URL, shared by every process that fuzzes the target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store import database
from harness.cli.main import main
from harness.errors import UsageError

BUGGY = "scenarios.pools:double_release_pool"
CORRECT = "scenarios.pools:semaphore_pool"


def _fuzz_process(cwd: Path, *argv: str) -> dict:
    """``harness fuzz`` in a process of its own; returns its JSON summary."""
    out = cwd / f"summary-{len(list(cwd.glob('summary-*.json')))}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "fuzz", *argv, "--no-regressions", "--json", str(out)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(out.read_text())


def test_locations_are_directories_unless_they_are_redis_urls() -> None:
    assert not database.is_redis(".hypothesis/harness")
    assert not database.is_redis("redis-dir")
    assert database.is_redis("redis://127.0.0.1:6379/0")
    assert database.is_redis("rediss://cache.example:6380/1")
    assert database.is_redis("unix:///run/redis.sock")


def test_a_redis_password_never_reaches_a_log_or_report() -> None:
    assert database.display("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert database.display("redis://ci:s3cret@cache:6379/2") == "redis://ci:***@cache:6379/2"
    assert database.display("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert database.display("db") == "db" and database.display(None) is None


def test_a_directory_database_that_is_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "afile").write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        database.check(str(tmp_path / "afile"))


def test_an_unreachable_redis_is_a_one_line_error_before_the_campaign(capsys) -> None:
    from conftest import _free_loopback_port

    url = f"redis://127.0.0.1:{_free_loopback_port()}/0"  # nothing listens there
    assert main(["fuzz", CORRECT, "--seed", "1", "--max-examples", "5", "--database", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: example database {url}: cannot reach Redis") and err.count("\n") == 1


def test_a_failure_found_by_one_process_is_replayed_first_by_another_through_redis(redis_url, tmp_path) -> None:
    first = _fuzz_process(tmp_path, BUGGY, "--seed", "2", "--database", redis_url, "--report-dir", "a")
    assert first["database"] == redis_url and first["examples"] > 1
    (found,) = first["failures"]
    import redis

    keys = redis.Redis.from_url(redis_url).keys("*")
    assert keys and all(key.startswith(database.REDIS_PREFIX.encode()) for key in keys)

    second = _fuzz_process(tmp_path, BUGGY, "--seed", "77", "--database", redis_url, "--report-dir", "b")
    assert second["examples"] == 1  # the failure saved by the first process is the first schedule tried
    assert Path(second["failures"][0]["file"]).name == Path(found["file"]).name

    # Another target sharing the server does not replay it.
    other = _fuzz_process(tmp_path, CORRECT, "--seed", "77", "--max-examples", "20", "--database", redis_url)
    assert other["outcome"] == "clean"


def test_every_worker_replays_what_another_host_found_through_redis(redis_url, tmp_path) -> None:
    first = _fuzz_process(tmp_path, BUGGY, "--seed", "2", "--database", redis_url, "--report-dir", "a")
    (found,) = first["failures"]
    again = _fuzz_process(
        tmp_path, BUGGY, "--seed", "5", "--workers", "2", "--database", redis_url, "--report-dir", "b"
    )
    assert again["outcome"] == "failed" and len(again["workers"]) == 2
    assert again["examples"] <= 2  # each worker's first schedule is the one saved
    assert Path(again["failures"][0]["file"]).name == Path(found["file"]).name
