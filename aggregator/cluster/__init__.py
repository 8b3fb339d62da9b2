"""Partitioned aggregator replicas (docs/cluster/replicas.md).

- `partition`: which replica owns a node (rendezvous hashing of the node id), and the
  "i/N" replica setting. Pure.
- `subscriptions`: which topics a replica subscribes to and unsubscribes from, given the
  nodes it knows of. Pure.
"""
