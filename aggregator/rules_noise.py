"""Noise rules: GB 3096-2008 by the node's functional zone (0, 1, 2, 3, 4a, 4b). Pure.

- noise.ld / noise.ln: the day L_d (06:00-22:00) and night L_n (22:00-06:00) energy means of
  the hourly L_Aeq against the zone's Table 1 day and night limits: the standard's own
  evaluation quantities (../shared/standards.md §3.3);
- noise.laeq.1h: each valid hourly L_Aeq against the limit of the period it falls in. Common
  real-time practice, UNVERIFIED as the standard's evaluation (§3.3), and kept because an
  operator wants to hear about a loud evening before the night is over;
- noise.lamax.night: a night L_Amax reading against the night limit + 15 dB(A) (§5.4).

Day and night hours come from configuration (GB 3096-2008 §3.4 by default; local rules may
move them). L10/L50/L90 are computed with the windows and stored, not alerted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from aggregator.event_windows import WindowResult
from aggregator.fleet import NodeInfo
from aggregator.observations import Observation, Rule
from aggregator.standards import gb3096
from schemas.messages import ReadingValues

STANDARD: Final = "GB 3096-2008"
LD: Final = Rule("noise.ld", "exceedance", "warning", "laeq", STANDARD, "Table 1, §3.4", 57_600)
LN: Final = Rule("noise.ln", "exceedance", "warning", "laeq", STANDARD, "Table 1, §3.4", 28_800)
HOURLY: Final = Rule("noise.laeq.1h", "exceedance", "warning", "laeq", STANDARD, "Table 1", 3600)


@dataclass(frozen=True, slots=True)
class NoiseSettings:
    utc_offset_h: int
    day_starts_h: int
    night_starts_h: int
    hysteresis_db: float

    def is_night(self, ts_ms: int) -> bool:
        local = datetime.fromtimestamp(ts_ms / 1000, UTC) + timedelta(hours=self.utc_offset_h)
        return gb3096.is_night(local.hour, self.day_starts_h, self.night_starts_h)


def window_observation(
    s: NoiseSettings, info: NodeInfo, w: WindowResult, late: bool, suspect: bool
) -> Observation | None:
    zone = info.noise_zone
    if zone is None or not w.valid or w.kind not in ("1h", "day", "night"):
        return None
    night = s.is_night(w.start_ms) if w.kind == "1h" else w.kind == "night"
    limits = gb3096.LIMITS[zone]
    limit = limits.night if night else limits.day
    rule = HOURLY if w.kind == "1h" else (LN if night else LD)
    name = {"1h": "hourly LAeq", "day": "day Ld", "night": "night Ln"}[w.kind]
    period = "night" if night else "day"
    spread = ""
    if w.l10 is not None and w.l90 is not None:
        spread = f" (L10 {w.l10:.1f}, L90 {w.l90:.1f})"
    message = f"{name} {w.value:.1f} dB(A){spread} vs zone {zone} {period} limit {limit:g}"
    return Observation(
        rule,
        info.node,
        w.value > limit,
        w.value,
        limit,
        w.start_ms,
        late,
        message,
        cleared=w.value <= limit - s.hysteresis_db,
        suspect=suspect,
        window_start_ms=w.start_ms,
    )


def lamax_observation(
    s: NoiseSettings, info: NodeInfo, r: ReadingValues, late: bool, suspect: bool
) -> Observation | None:
    if info.noise_zone is None:
        return None
    limit = gb3096.LIMITS[info.noise_zone].night + gb3096.NIGHT_LMAX_MARGIN_DB
    rule = Rule("noise.lamax.night", "exceedance", "warning", "lamax", STANDARD, "§5.4", r.period_s)
    night = s.is_night(r.ts)
    # By day the rule does not apply: an open night alert clears when the night ends.
    exceeded = night and r.value > limit
    message = f"night LAmax {r.value:.1f} dB(A) vs night limit + 15 = {limit:g}"
    return Observation(
        rule,
        info.node,
        exceeded,
        r.value,
        limit,
        r.ts,
        late,
        message,
        cleared=not night or r.value <= limit - s.hysteresis_db,
        suspect=suspect,
    )
