"""The example database, shared: a directory for one machine, Redis for many.

Hypothesis saves every failing example to its example database and tries the
saved ones first in every later search of the same test. A campaign keys
that data by target, so a failure found by one worker, CI job or host is the
first schedule every other one tries. Where the data lives is a *location*:

- a directory (the CLI's default is ``.hypothesis/harness``):
  ``DirectoryBasedExampleDatabase``; every worker on the machine shares it,
  and concurrent writers are safe because each example is its own file,
  written atomically;
- a Redis URL (``redis://host:port/db``, ``rediss://`` for TLS,
  ``unix:///path/to/redis.sock``): Hypothesis's ``RedisExampleDatabase``,
  shared by every host that reaches the server. It needs the ``redis``
  package (``pip install 'twisted-fault-harness[redis]'``). Keys are
  ``harness:<key>:...``; Hypothesis lets an entry expire when no campaign
  has touched it for 8 days.

Both are Hypothesis's own backends behind its ``ExampleDatabase``
interface: the harness only chooses one and namespaces it.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterable
from typing import Any

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from harness.errors import UsageError
from harness.guard.private_api import key_folder

#: URL schemes that name a Redis server rather than a directory.
REDIS_SCHEMES = ("redis", "rediss", "unix")

#: Prefix of every key the harness writes to a Redis database.
REDIS_PREFIX = "harness:"


def is_redis(location: str) -> bool:
    """Whether ``location`` is a Redis URL (else it is a directory)."""
    scheme, separator, _ = location.partition("://")
    return bool(separator) and scheme.lower() in REDIS_SCHEMES


def _scrub(text: str, url: str) -> str:
    """``text`` (an error from the Redis client), or a placeholder when the URL holds credentials.

    Client errors quote pieces of a URL they could not parse (a password cut
    at ``#`` passed as the port): with credentials in the URL, none of it is shown.
    """
    rest = url.partition("://")[2]
    return "details hidden: the URL holds a password" if "@" in rest else text


def display(location: str | None) -> str | None:
    """``location`` fit for logs and reports: a Redis URL's password is masked.

    Whatever the URL holds (a password with ``#``, ``?``, ``/`` or spaces, a
    netloc that does not parse): everything between ``://`` and the last
    ``@`` of the authority is credentials, and only the user name is kept.
    """
    if location is None or not is_redis(location):
        return location
    scheme, _, rest = location.partition("://")
    at = rest.rfind("@")
    if at < 0:
        return location
    credentials, host = rest[:at], rest[at + 1 :]
    user, colon, _ = credentials.partition(":")
    return f"{scheme}://{user}:***@{host}" if colon else f"{scheme}://***@{host}"


def check(location: str) -> None:
    """Fail now, with one line saying what to do, if ``location`` cannot serve as an example database.

    A directory must not be a file; a Redis URL needs the ``redis`` package
    and a server that answers.
    """
    if not is_redis(location):
        if os.path.exists(location) and not os.path.isdir(location):
            raise UsageError(f"example database {location!r} is not a directory; give a directory or a redis:// URL")
        return
    client = _client(location)
    from redis.exceptions import RedisError

    try:
        client.ping()
    except RedisError as exc:
        raise UsageError(
            f"example database {display(location)}: cannot reach Redis ({_scrub(str(exc), location)}); "
            "start redis-server, check the URL, or use a directory"
        ) from None


#: The largest example read from a database directory: Hypothesis's are a few kilobytes.
MAX_EXAMPLE_BYTES = 1024 * 1024


class SafeDirectoryDatabase(DirectoryBasedExampleDatabase):
    """Hypothesis's directory database, reading only regular files of sane size.

    The directory is shared (by workers, CI jobs, anyone who can write
    there): an entry that is a FIFO would block the campaign forever, a link
    to ``/dev/zero`` would read until memory runs out. Such entries are
    skipped, as Hypothesis skips entries it cannot read.
    """

    def fetch(self, key: bytes) -> Iterable[bytes]:
        folder = key_folder(self, key)
        if folder is None:  # a Hypothesis without the private method (tests/test_private_api.py says so)
            yield from super().fetch(key)
            return
        try:
            names = os.listdir(folder)
        except (OSError, ValueError):
            return
        for name in names:
            value = _read_example(os.path.join(folder, name))
            if value is not None:
                yield value


def _read_example(path: str) -> bytes | None:
    """The bytes of the regular file ``path`` if it is at most ``MAX_EXAMPLE_BYTES``, else None (never blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_EXAMPLE_BYTES:
            return None
        data = os.read(fd, MAX_EXAMPLE_BYTES + 1)
        return data if len(data) <= MAX_EXAMPLE_BYTES else None
    except OSError:
        return None
    finally:
        os.close(fd)


def open_database(location: str, key: str) -> ExampleDatabase:
    """The example database at ``location``, namespaced by ``key`` (a directory under it, or a key prefix)."""
    if not is_redis(location):
        return SafeDirectoryDatabase(os.path.join(location, key))
    from hypothesis.extra.redis import RedisExampleDatabase

    return RedisExampleDatabase(_client(location), key_prefix=f"{REDIS_PREFIX}{key}:".encode())


@functools.lru_cache(maxsize=None)
def _client(url: str) -> Any:
    """One Redis client (and so one connection pool) per URL per process; connects lazily."""
    try:
        import redis
    except ImportError:
        raise UsageError(
            f"example database {display(url)} needs the redis package: "
            "pip install 'twisted-fault-harness[redis]'"
        ) from None
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=30)
    except ValueError as exc:
        raise UsageError(f"example database {display(url)}: not a usable Redis URL ({_scrub(str(exc), url)})") from None
