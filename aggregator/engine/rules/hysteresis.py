"""How far back inside its limit a firing alert's value must come before it clears. Pure.

agg.toml [alerts.hysteresis], shared by the air, noise and point rules. Every margin is an
envnet choice, not a standard's (docs/standards.md §9): a value hovering at the limit must not
make the alert flap.
"""

from __future__ import annotations

from typing import Annotated

import msgspec


class Hysteresis(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Concentrations: a fraction of the limit.
    fraction: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.05
    # Sound levels are logarithmic: a margin in dB(A), not a fraction.
    noise_db: Annotated[float, msgspec.Meta(ge=0, le=20)] = 1.0
    # AQI category alerts: AQI points below the category boundary.
    aqi_points: Annotated[int, msgspec.Meta(ge=0, le=50)] = 5
