"""Splitting one campaign into pieces: shards across CI jobs or hosts, workers across cores.

A campaign is its target, its seed S and its budgets. ``--shard I/N``
(1-based: ``1/4`` to ``4/4``) makes a process run the I-th of N shards, and
``--workers W`` splits a shard over W processes. Every piece, (shard,
worker), searches with a seed of its own and takes its share of
``--max-examples``:

- its seed is derived by hashing (S, shard, worker) into 52 bits (exact in
  any JSON reader), except that shard 1, worker 0 searches with S itself:
  one process, one shard is exactly the plain campaign. A campaign searches
  its round 0 with its seed and each later round r with a seed hashed from
  (seed, r) (``round_seed``), so distinct seeds never share a round (seed + r
  made seed N's second round seed N+1's first). (Plain offsets such as
  ``S + worker * 2**32`` are not safe either: Python's ``Random`` gives seed 2
  and seed 2 + 2**32 the same stream.)
- ``--max-examples`` is the total: split as evenly as whole numbers allow
  (shares differ by at most one and add up to the total), first across
  shards, then across a shard's workers.
- ``--budget`` is wall-clock time, the same for every piece: N shards of a
  60 s campaign each run for 60 s, side by side.

So the same ``--seed`` and ``--shard I/N`` give the same search every time,
and the N shards together search exactly what one campaign of that size
is split into.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from harness.errors import UsageError

#: The most workers one shard may have.
MAX_WORKERS = 4096

#: Bits in a derived seed: JSON readers that parse numbers as doubles keep every one exactly.
SEED_BITS = 52


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (1-based) of ``count`` shards of one campaign."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise UsageError(f"shard must be I/N with 1 <= I <= N, such as 2/4; got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` -> ``Shard(2, 4)``; anything else is a one-line ``UsageError``."""
        index, slash, count = text.partition("/")
        try:
            if not slash:
                raise ValueError
            return cls(int(index), int(count))
        except ValueError:
            raise UsageError(f"--shard expects I/N, such as 2/4 (shards are numbered from 1); got {text!r}") from None
        except UsageError:
            raise UsageError(f"--shard {text}: I must be between 1 and N, such as 2/4 (shards are numbered from 1)") from None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def share(self, total: int | None) -> int | None:
        """This shard's part of ``total`` examples (None: no example budget)."""
        return share(total, self.count, self.index - 1)


def piece_seed(seed: int, shard: Shard, worker: int) -> int:
    """The seed that worker ``worker`` (0-based) of ``shard`` searches with, for campaign seed ``seed``."""
    if not 0 <= worker < MAX_WORKERS:
        raise ValueError(f"worker must be between 0 and {MAX_WORKERS - 1}, got {worker}")
    if shard.index == 1 and worker == 0:
        return seed
    return _hashed(f"harness piece: seed {seed}, shard {shard.index}/{shard.count}, worker {worker}")


def round_seed(seed: int, round_index: int) -> int:
    """The seed of a campaign's round ``round_index`` (0-based): the campaign's own for round 0."""
    if round_index == 0:
        return seed
    return _hashed(f"harness round: seed {seed}, round {round_index}")


def _hashed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big") >> (256 - SEED_BITS)


def share(total: int | None, parts: int, index: int) -> int | None:
    """Part ``index`` (0-based) of ``total`` split into ``parts`` whole shares that add up to it."""
    if total is None:
        return None
    return total // parts + (1 if index < total % parts else 0)
