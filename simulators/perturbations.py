"""Scripted perturbations of a simulated sensor: what a scenario does to a driver. Pure.

A perturbation replaces (it does not add to, as signals.Episode does) what a simulated
sensor reports for a while, to script the faults and events an alert must catch. It is the
`perturbations` option of every simulated driver (simulators/drivers.py) and the contract of
a scenario file's events:

    {kind, quantity, start_s, duration_s, value}

timed from the driver's `origin_ms`: active on [origin + start_s, origin + start_s +
duration_s), in whole milliseconds (both ends are rounded to the nearest ms, so a duration
must be at least 0.001 s). `value` is in the canonical unit of schemas.quantities.SPECS.

Kinds, over the active interval (outside it the model's value is returned exactly):

- step: a level shift: the quantity reads `value` at the start and keeps the model's own
  variation on top, value + (model(t) - model(start)), as a real release or a loud source
  does. A perfectly flat reading is what a stuck sensor gives, and the aggregator's
  flatline check would judge it so (use `stuck` for that).
- ramp: linear from the model's own value at the start to `value` at the end of the
  interval; after it the model's value returns at once.
- spike: the quantity reads `value` (a step meant to be short: a scenario defaults its
  duration to one report interval).
- stuck: the sensor's reading of the quantity is frozen at `value` if given, else at the
  model's value at the start instant, so every sample, and every interval mean, repeats it
  exactly (what a frozen driver or a dead ADC does).
- dropout: with a quantity, that quantity is absent from the samples; without one, every
  read of the sensor fails with SensorTimeoutError (the driver raises it).

"The model's value" is the driver's model with its episodes, and without any perturbation:
a ramp or stuck value is found by evaluating the model at the start instant, not by
remembering a read, so values stay a pure function of (options, seed, at_ms), whatever
reads happened before.

Overlaps: a dropout always wins (a sensor dropout over everything, a quantity dropout over
every value kind of its quantity); among the value kinds (step, ramp, spike, stuck) of one
quantity, the last one listed that is active wins. Every value is clipped to the quantity's
SPECS bounds, as episodes are, so a simulator never emits an impossible value.

Validation (a ValueError with a clear message): numbers finite, duration_s >= 0.001,
`value` required for step, ramp and spike and refused for dropout, `quantity` required for
every kind but dropout, and the quantity must be one the driver measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import msgspec

from schemas.quantities import SPECS, Family, Quantity
from simulators.signals import clip

PerturbationKind = Literal["step", "ramp", "spike", "stuck", "dropout"]

# Kinds that need `value`; `stuck` may have one; `dropout` has none.
_NEEDS_VALUE: Final[frozenset[PerturbationKind]] = frozenset({"step", "ramp", "spike"})
MIN_DURATION_S: Final = 0.001  # one millisecond: intervals are whole milliseconds

# The model of a driver: every quantity of its family at an instant, episodes included.
Model = Callable[[int], Mapping[Quantity, float]]


class Perturbation(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One `perturbations` entry of a simulated sensor's options (see the module docstring)."""

    kind: PerturbationKind
    start_s: float
    duration_s: float
    quantity: Quantity | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        what = f"{self.kind} perturbation" + (f" of {self.quantity}" if self.quantity else "")
        numbers = [self.start_s, self.duration_s]
        if self.value is not None:
            numbers.append(self.value)
        if not all(math.isfinite(x) for x in numbers):
            raise ValueError(f"{what}: start_s, duration_s and value must be finite")
        if self.duration_s < MIN_DURATION_S:
            raise ValueError(
                f"{what}: duration_s must be at least {MIN_DURATION_S} s, got {self.duration_s}"
            )
        if self.kind in _NEEDS_VALUE and self.value is None:
            raise ValueError(f"{what}: value is required")
        if self.kind == "dropout" and self.value is not None:
            raise ValueError(f"{what}: a dropout has no value")
        if self.kind != "dropout" and self.quantity is None:
            raise ValueError(f"{what}: quantity is required (only a dropout may omit it)")


@dataclass(frozen=True, slots=True)
class _Timed:
    """A perturbation with its interval [start_ms, end_ms) in absolute milliseconds."""

    item: Perturbation
    start_ms: int
    end_ms: int

    def active(self, at_ms: int) -> bool:
        return self.start_ms <= at_ms < self.end_ms


class Perturbations:
    """A driver's perturbations, timed from its origin: immutable once built."""

    __slots__ = ("_by_quantity", "_sensor_dropouts")

    def __init__(
        self, items: Sequence[Perturbation], origin_ms: int, family: Family, driver: str
    ) -> None:
        by_quantity: dict[Quantity, list[_Timed]] = {}
        sensor: list[_Timed] = []
        for item in items:
            start_ms = origin_ms + round(item.start_s * 1000.0)
            timed = _Timed(item, start_ms, start_ms + round(item.duration_s * 1000.0))
            if item.quantity is None:
                sensor.append(timed)
                continue
            if SPECS[item.quantity].family != family:
                raise ValueError(
                    f"perturbation quantity {item.quantity!r} is not measured by "
                    f"{driver} ({family} family)"
                )
            by_quantity.setdefault(item.quantity, []).append(timed)
        self._by_quantity = {q: tuple(ts) for q, ts in by_quantity.items()}
        self._sensor_dropouts = tuple(sensor)

    def __bool__(self) -> bool:
        return bool(self._by_quantity or self._sensor_dropouts)

    def sensor_dropped(self, at_ms: int) -> bool:
        """Whether every read at `at_ms` fails (a dropout without a quantity is active)."""
        return any(t.active(at_ms) for t in self._sensor_dropouts)

    def apply(
        self, values: Mapping[Quantity, float], at_ms: int, model: Model
    ) -> dict[Quantity, float]:
        """The perturbed samples at `at_ms`, given the model's `values` there and the model
        itself (evaluated at a start instant for ramp and stuck)."""
        result: dict[Quantity, float] = {}
        for quantity, value in values.items():
            active = [t for t in self._by_quantity.get(quantity, ()) if t.active(at_ms)]
            if not active:
                result[quantity] = value
            elif not any(t.item.kind == "dropout" for t in active):
                shifted = _value_of(active[-1], quantity, at_ms, value, model)
                result[quantity] = clip(quantity, shifted)
        return result


def _value_of(timed: _Timed, quantity: Quantity, at_ms: int, current: float, model: Model) -> float:
    """What an active value kind (step, ramp, spike, stuck) makes `quantity` read, given
    the model's `current` value at `at_ms`."""
    item = timed.item
    if item.kind == "step" and item.value is not None:
        return item.value + (current - model(timed.start_ms)[quantity])
    if item.kind == "ramp" and item.value is not None:
        begin = model(timed.start_ms)[quantity]
        share = (at_ms - timed.start_ms) / (timed.end_ms - timed.start_ms)
        return begin + (item.value - begin) * share
    if item.value is not None:
        return item.value
    # Validated: only `stuck` may come without a value; it freezes the model's start value.
    return model(timed.start_ms)[quantity]
