"""agg.toml [report]: the evaluation rules of `envnet report` that no verified standard fixes.

Declared here, composed into the configuration by aggregator.config; every default is listed in
docs/standards.md §9, and those resting on an unread standard are marked UNVERIFIED there and
here (docs/standards.md §2.7).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from schemas.standards import editions
from schemas.standards.gb3838 import WaterItem

# The clock of the water and bloom settings is not theirs to set: every kind counts local days
# at `[alerts] utc_offset_h` (docs/standards.md §9), applied when a report is run.
_CLOCK_DEFAULT: Final = 8

# How a percentile of the period's daily values is taken (numpy.percentile's method names):
# "linear" interpolates between the two nearest ranks, which is how HJ 663-2013 is recalled to
# define the O3 evaluation percentile; "nearest-rank" takes the smallest value with at least
# p % of the values at or below it. UNVERIFIED (docs/standards.md §2.7, §8.1).
PercentileMethod = Literal["linear", "nearest-rank"]
# How a group's day is counted (docs/standards.md §2.7): "mean-of-nodes" averages each
# pollutant's valid daily values over the group's nodes and judges that day as one site, as
# city bulletins are recalled to do (UNVERIFIED); "pooled" counts every node-day.
GroupDays = Literal["mean-of-nodes", "pooled"]

# GB 3838-2002 Class III, the programme's target: what a site without `water_target` is held to.
CLASS_III: Final = 3
DailyStatistic = Literal["mean", "worst"]
BloomStatistic = Literal["max_hour", "max", "mean"]


# The water and bloom sections are declared here, not beside their reports (which need numpy):
# the aggregator's processes load this configuration, and numpy would add about 21 MiB to each.
class WaterSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """[report.water]: how water days are formed (aggregator.reports.water); each default is
    envnet's choice."""

    # The city's civil clock (docs/standards.md §9, `[alerts] utc_offset_h`).
    utc_offset_h: Annotated[int, msgspec.Meta(ge=-12, le=14)] = 8
    daily_statistic: DailyStatistic = "mean"  # UNVERIFIED
    min_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 6  # UNVERIFIED
    default_target: Annotated[int, msgspec.Meta(ge=1, le=5)] = CLASS_III
    required_items: tuple[WaterItem, ...] = ()


class BloomSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """[report.bloom]: how bloom days are formed (aggregator.reports.bloom)."""

    # The city's civil clock (docs/standards.md §9, `[alerts] utc_offset_h`).
    utc_offset_h: Annotated[int, msgspec.Meta(ge=-12, le=14)] = 8
    daily_statistic: BloomStatistic = "max_hour"  # UNVERIFIED
    min_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 6  # UNVERIFIED


class ReportSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """[report]: the evaluation rules of the period reports (aggregator.reports)."""

    # GB 3095 / HJ 633 edition of each day (docs/standards.md §0.1): "auto" takes the edition
    # in force on the day's start; "2012" or "2026" judges every day by one edition.
    air_edition: editions.EditionSetting = "auto"
    # The O3 evaluation value: this percentile of the period's valid MDA8 values
    # (docs/standards.md §2.7, UNVERIFIED: HJ 663 was not read).
    o3_percentile: Annotated[float, msgspec.Meta(gt=0, le=100)] = 90.0
    o3_percentile_method: PercentileMethod = "linear"
    # GB 3095 zone class of a node whose inventory entry names none (docs/standards.md §1.3):
    # Class 2 (Grade II), where most urban sites are.
    default_air_zone: Literal[1, 2] = 2
    group_days: GroupDays = "mean-of-nodes"
    # The good-air-day target drawn on the monthly chart, % (docs/standards.md §2.3,
    # UNVERIFIED: the programme's target, not a standard's).
    good_day_target_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] = 86.0
    # [report.water], [report.bloom]: how the water and bloom reports form a valid day and its
    # value (docs/standards.md §5.2, §6.4, §9; aggregator.reports.water, bloom). The noise
    # report has no rule of its own: a stored L_d or L_n is valid as the aggregator judged it
    # ([alerts.windows] min_day_hours, min_night_hours; docs/standards.md §3.3).
    water: WaterSettings = WaterSettings()
    bloom: BloomSettings = BloomSettings()

    def __post_init__(self) -> None:
        for name, section in (("water", self.water), ("bloom", self.bloom)):
            if section.utc_offset_h != _CLOCK_DEFAULT:
                raise ValueError(
                    f"[report.{name}] utc_offset_h: local days follow [alerts] utc_offset_h; "
                    "set it there"
                )
