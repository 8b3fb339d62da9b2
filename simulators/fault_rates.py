"""Faults drawn at configured rates, one draw per event (a UART frame, a Modbus request).

A draw is a pure function of the seed, the device's fault channel and the event's number, so
two runs of `envnet sim devices` with one seed put the same faults on the same events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from simulators.noise import keyed_hash, stream_key, unit_from_hash

K = TypeVar("K", bound=str)


class FaultRates(Generic[K]):
    """The share of events each fault hits; together at most all of them."""

    def __init__(self, rates: Mapping[K, float] | None, seed: int, channel: int) -> None:
        table = dict(rates or {})
        if not all(0.0 <= r <= 1.0 for r in table.values()) or sum(table.values()) > 1.0:
            raise ValueError(f"fault rates must be in [0, 1] and sum to at most 1: {table}")
        self._rates = table
        self._key = stream_key(seed, channel)

    def draw(self, number: int) -> K | None:
        """The fault of event `number`, or None: the rates take consecutive shares of [0, 1)."""
        u = unit_from_hash(keyed_hash(self._key, number))
        for fault, rate in self._rates.items():
            if u < rate:
                return fault
            u -= rate
        return None
