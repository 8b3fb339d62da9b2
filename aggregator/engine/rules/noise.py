"""Noise rules: GB 3096-2008 by the node's functional zone (0, 1, 2, 3, 4a, 4b). Pure.

- noise.ld / noise.ln: the day L_d (06:00-22:00) and night L_n (22:00-06:00) energy means of
  the hourly L_Aeq against the zone's Table 1 day and night limits: the standard's own
  evaluation quantities (docs/standards.md §3.3);
- noise.laeq.1h: each valid hourly L_Aeq against the limit of the period it falls in. Common
  real-time practice, UNVERIFIED as the standard's evaluation (§3.3), and kept because an
  operator wants to hear about a loud evening before the night is over;
- noise.lamax.night: night L_Amax readings against the night limit + 15 dB(A) (§5.4), one
  episode per node per night (see `lamax_observation`).

Day and night hours come from configuration (GB 3096-2008 §3.4 by default; local rules may
move them). L10/L50/L90 are computed with the windows and stored, not alerted on.
"""

from __future__ import annotations

from typing import Final

from aggregator.engine.observations import Observation, Rule
from aggregator.engine.settings import EngineSettings
from aggregator.engine.windows import WindowResult
from aggregator.fleet import NodeInfo
from schemas.messages import ReadingValues
from schemas.standards import gb3096

STANDARD: Final = "GB 3096-2008"
LD: Final = Rule("noise.ld", "exceedance", "warning", "laeq", STANDARD, "Table 1, §3.4", 57_600)
LN: Final = Rule("noise.ln", "exceedance", "warning", "laeq", STANDARD, "Table 1, §3.4", 28_800)
HOURLY: Final = Rule("noise.laeq.1h", "exceedance", "warning", "laeq", STANDARD, "Table 1", 3600)


def window_observation(
    s: EngineSettings, info: NodeInfo, w: WindowResult, late: bool, suspect: bool
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
        cleared=w.value <= limit - s.hysteresis.noise_db,
        suspect=suspect,
        window_start_ms=w.start_ms,
    )


def lamax_observation(
    s: EngineSettings, info: NodeInfo, r: ReadingValues, late: bool, suspect: bool
) -> Observation | None:
    """One night L_Amax reading, grouped into one episode per node per night.

    GB 3096-2008 §5.4 (夜间突发噪声): at night the maximum sound level may not exceed the
    zone's night limit by more than 15 dB(A). Its unit of judgement is the night (22:00-06:00,
    §3.4, or the configured hours): a night either kept L_max within limit + 15 or did not.
    Burst noise is intermittent by nature (a lorry, a train every few minutes), so judging
    each 1-minute reading on its own fired and resolved an alert for every burst: six times in
    two minutes on the simulated fleet. Instead:

    - fire: the first reading of the night with L_Amax > night limit + 15 dB(A) (a level equal
      to the limit meets it: "不得高于");
    - hold: every later reading of the same night, whatever its level, is neither an
      exceedance nor a clearance, so the episode stays open while bursts recur;
    - clear: the first reading of the day period (06:00 local by default), which resolves
      the night's episode (with the default clear_s = 0, at once).

    So a node raises at most one noise.lamax.night alert per night; the next night starts a
    new episode. A node silent from one night to the next keeps the first episode open until
    it reports in a day period again.
    """
    if info.noise_zone is None:
        return None
    limit = gb3096.LIMITS[info.noise_zone].night + gb3096.NIGHT_LMAX_MARGIN_DB
    rule = Rule("noise.lamax.night", "exceedance", "warning", "lamax", STANDARD, "§5.4", r.period_s)
    night = s.is_night(r.ts)
    exceeded = night and r.value > limit
    until = f"{s.day_starts_h:02d}:00"
    if exceeded:
        message = (
            f"night LAmax {r.value:.1f} dB(A) exceeds night limit + 15 = {limit:g}; "
            f"one episode per night, open until {until}"
        )
    elif night:
        message = (
            f"night LAmax {r.value:.1f} dB(A) within night limit + 15 = {limit:g}; "
            f"the night's episode stays open until {until}"
        )
    else:
        message = f"night over ({until}): LAmax {r.value:.1f} dB(A); night limit + 15 = {limit:g}"
    return Observation(
        rule,
        info.node,
        exceeded,
        r.value,
        limit,
        r.ts,
        late,
        message,
        cleared=not night,
        suspect=suspect,
    )
