"""What every rule family hands the alert lifecycle: a rule, and one observation of it.

Air, noise, odour, water and bloom rules (aggregator.engine.evaluator), sensor health checks
(aggregator.engine.sensor_health) and liveness deadmen (aggregator.engine.liveness) all
produce `Observation`s; aggregator.engine.lifecycle turns a stream of them into alert
transitions. Pure data, no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.messages import AlertKind, Severity
from schemas.quantities import SPECS, Quantity, Unit


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: AlertKind
    severity: Severity
    quantity: Quantity | None
    standard: str
    clause: str
    window_s: int

    @property
    def unit(self) -> Unit | None:
        return None if self.quantity is None else SPECS[self.quantity].unit


@dataclass(frozen=True, slots=True)
class Observation:
    """One evaluation of `rule` for `node` at event time `at_ms`.

    `exceeded`: the value is beyond the limit (the alert should fire, after its pending time).
    `cleared`: the value is back inside the clear level (the alert may resolve). A value
    between the limit and the clear level is neither: that band is the hysteresis that keeps a
    value hovering at the limit from flapping. Rules without a separate clear level leave
    `cleared` as `not exceeded`.
    """

    rule: Rule
    node: str
    exceeded: bool
    value: float
    limit: float
    at_ms: int
    late: bool
    message: str
    cleared: bool | None = None
    # Measured by a sensor that health checks judged unhealthy: recorded, not paged as real.
    suspect: bool = False
    # Start of the averaging window `value` belongs to; None for a single reading.
    window_start_ms: int | None = None

    @property
    def is_cleared(self) -> bool:
        return (not self.exceeded) if self.cleared is None else self.cleared
