"""Which aggregator replica owns a node: rendezvous (highest random weight) hashing. Pure.

Each of N replicas owns the nodes whose weight is highest for its index, the weight being
a fixed hash (BLAKE2b, 8 bytes) of the UTF-8 node id and the replica index. So:
- the owner is the same in every process, on every Python version and machine (Python's own
  `hash()` of a str is salted per process and must not be used);
- going from N to N+1 replicas moves only the nodes the new replica wins (about 1/(N+1) of
  them), each from its old owner to the new one, never between old replicas; a modulo hash
  would move about N/(N+1) of all nodes. Fewer moved nodes means fewer windows and alert
  tracks handed over in a rolling restart (docs/cluster/replicas.md);
- it costs N hashes per node, done once per node id (`Replica` caches the verdicts).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Final

# Far more than one host or broker needs; a typo ("0/1000000") is a configuration error.
MAX_REPLICAS: Final = 1024
_SPEC = re.compile(r"^\s*([0-9]+)\s*/\s*([0-9]+)\s*$")


class ReplicaSpecError(ValueError):
    """An "i/N" replica setting that does not parse, or names no replica."""


def weight(node: str, index: int) -> int:
    digest = hashlib.blake2b(
        node.encode("utf-8"), digest_size=8, person=b"envnet-replica", salt=index.to_bytes(16)
    ).digest()
    return int.from_bytes(digest, "big")


def owner(node: str, count: int) -> int:
    """The index (0 <= index < count) of the replica that owns `node`."""
    if count < 1:
        raise ReplicaSpecError(f"replica count must be at least 1, got {count}")
    if count == 1:
        return 0
    # Ties (a 64-bit collision) go to the lower index: still one owner, deterministic.
    return max(range(count), key=lambda index: (weight(node, index), -index))


@dataclass(frozen=True, slots=True)
class Replica:
    """Replica `index` of `count`: agg.toml [cluster] replica = "index/count"."""

    index: int
    count: int
    _verdicts: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_REPLICAS:
            raise ReplicaSpecError(
                f"replica count must be between 1 and {MAX_REPLICAS}, got {self.count}"
            )
        if not 0 <= self.index < self.count:
            raise ReplicaSpecError(
                f"replica index must be between 0 and {self.count - 1} "
                f"(the count less one), got {self.index}"
            )

    @property
    def solo(self) -> bool:
        """One replica for the whole fleet: the aggregator as it always was."""
        return self.count == 1

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, node: str) -> bool:
        if self.count == 1:
            return True
        verdict = self._verdicts.get(node)
        if verdict is None:
            # Bounded by the node ids this replica is shown: the inventory, and topics that
            # passed the id check. A hostile stream of ids costs 8 bytes of bool each.
            verdict = self._verdicts[node] = owner(node, self.count) == self.index
        return verdict


SOLO: Final = Replica(0, 1)


def parse_replica(text: str) -> Replica:
    """ "i/N" (0 <= i < N, 1 <= N <= MAX_REPLICAS) as a Replica; ReplicaSpecError otherwise."""
    match = _SPEC.match(text)
    if match is None:
        raise ReplicaSpecError(
            f'replica must be "index/count" such as "0/2" (index from 0), got {text[:40]!r}'
        )
    return Replica(int(match.group(1)), int(match.group(2)))
