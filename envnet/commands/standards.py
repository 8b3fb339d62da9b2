"""`envnet standards`: the standards calculators on the command line.

    envnet standards aqi    HJ 633 AQI (the edition in force on --date, or --edition), real-time
                            or daily
    envnet standards water  GB 3838-2002 single-factor class, exceedance multiples, lake TLI
    envnet standards noise  GB 3096-2008 L_Aeq by zone and period, night L_max
    envnet standards odour  GB 14554-93 plant-boundary limits

Inputs are in envnet's canonical units (schemas/quantities.py): µg/m³ (CO mg/m³) for air,
mg/L for water (chl-a µg/L), dB(A) for noise. Gases may be given in ppb or ppm and are then
converted at 25 °C (schemas/gas_units.py). `--json` prints one JSON object. Bad input gives a
one-line error on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, NamedTuple, NoReturn, cast, get_args

from schemas.gas_units import Gas, GasUnitError, MixingUnit, to_canonical
from schemas.standards import editions, gb3096, gb3838, gb14554, hj633, tli

EXIT_BAD_INPUT: Final = 2
CANONICAL: Final = "ug/m3"
GAS_UNITS: Final = (CANONICAL, "ppb", "ppm")

Json = dict[str, object]


class StandardsInputError(ValueError):
    """Command-line input the calculators cannot use."""


@dataclass(frozen=True, slots=True)
class Output:
    """What a calculator prints: one JSON object, or a table for a person."""

    data: Json
    text: str


class _Calculator(NamedTuple):
    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    calculate: Callable[[argparse.Namespace], Output]


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def add_standards_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="standards_command",
        required=True,
        metavar="CALCULATOR",
        parser_class=OneLineErrorParser,
    )
    for calculator in _CALCULATORS:
        parser = sub.add_parser(
            calculator.name, help=calculator.help, description=calculator.description
        )
        calculator.add_arguments(parser)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.set_defaults(calculate=calculator.calculate)


def run_standards_command(args: argparse.Namespace) -> int:
    calculate = cast(Callable[[argparse.Namespace], Output], args.calculate)
    try:
        output = calculate(args)
    except (
        StandardsInputError,
        GasUnitError,
        hj633.AqiInputError,
        gb3838.WaterInputError,
        tli.TliInputError,
        gb3096.NoiseInputError,
    ) as exc:
        sys.stderr.write(f"envnet standards {args.standards_command}: error: {exc}\n")
        return EXIT_BAD_INPUT
    if args.json:
        sys.stdout.write(json.dumps(output.data, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(output.text + "\n")
    return 0


# ---------------------------------------------------------------------------------------- AQI

_NAMES: Final[dict[hj633.Pollutant, str]] = {
    "so2": "SO2",
    "no2": "NO2",
    "co": "CO",
    "o3": "O3",
    "pm10": "PM10",
    "pm2_5": "PM2.5",
}
_GASES: Final[dict[hj633.Pollutant, Gas]] = {"so2": "so2", "no2": "no2", "co": "co", "o3": "o3"}
# HJ 633-2012-only indicators beyond one per pollutant, as options.
_EXTRA_OPTIONS: Final[dict[str, hj633.Indicator]] = {
    "o3_8h": "o3_8h",
    "o3_1h": "o3_1h",
    "so2_24h": "so2_24h",
}


def _aqi_arguments(aqi: argparse.ArgumentParser) -> None:
    aqi.add_argument(
        "--edition",
        choices=editions.EDITION_SETTINGS,
        default="auto",
        help="auto (the default): the edition in force on --date, HJ 633-2012 before "
        "2026-03-01 and HJ 633-2026 from then on; 2012 or 2026 forces one",
    )
    aqi.add_argument(
        "--date",
        type=_beijing_date,
        metavar="YYYY-MM-DD",
        help="the date (Beijing time) the values were measured on, which picks the edition "
        "(default: today)",
    )
    aqi.add_argument("--period", choices=("hour", "day"), default="hour")
    for pollutant in hj633.POLLUTANTS:
        unit = "mg/m3" if pollutant == "co" else "ug/m3"
        aqi.add_argument(
            f"--{pollutant}", type=float, metavar="C", help=f"{_NAMES[pollutant]} ({unit})"
        )
    aqi.add_argument("--o3_8h", type=float, metavar="C", help="2012 hour: O3 8-h sliding mean")
    aqi.add_argument("--o3_1h", type=float, metavar="C", help="2012 day: O3 daily max 1-h mean")
    aqi.add_argument(
        "--so2_24h",
        type=float,
        metavar="C",
        help="2012 hour: SO2 24-h mean, used when SO2 1-h > 800 (HJ 633-2012 Table 1 note 2)",
    )
    aqi.add_argument(
        "--unit",
        choices=GAS_UNITS,
        default=CANONICAL,
        help="unit of the gas inputs (SO2, NO2, O3, CO): ug/m3 (CO mg/m3, the default), or "
        "ppb or ppm, converted at 25 °C and 1013.25 hPa",
    )
    aqi.add_argument(
        "--rounding",
        choices=hj633.ROUNDINGS,
        default="half-even",
        help="rounding of input concentrations (HJ 633-2026 §4.2.2, GB/T 8170; half-even is "
        "UNVERIFIED)",
    )


def _beijing_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _edition(args: argparse.Namespace) -> tuple[hj633.Edition, str]:
    """The edition to compute by, and why: forced by --edition, or in force on the date."""
    setting = cast(editions.EditionSetting, args.edition)
    if setting != "auto":
        return setting, "forced by --edition"
    day = cast(date | None, args.date)
    if day is None:
        day = datetime.now(editions.CST).date()  # the CLI's shell reads the clock, once
    return editions.edition_on(day), f"in force on {day.isoformat()}"


def _gas_value(pollutant: hj633.Pollutant, value: float, unit: str) -> float:
    gas = _GASES.get(pollutant)
    if gas is None or unit == CANONICAL:
        return value
    return to_canonical(gas, value, cast(MixingUnit, unit))


def _aqi(args: argparse.Namespace) -> Output:
    edition, basis = _edition(args)
    report = cast(hj633.Report, args.period)
    values: dict[hj633.Indicator, float] = {}
    by_pollutant = hj633.BY_POLLUTANT[(edition, report)]
    for pollutant in hj633.POLLUTANTS:
        given: float | None = getattr(args, pollutant)
        if given is not None:
            values[by_pollutant[pollutant]] = _gas_value(pollutant, given, args.unit)
    for option, indicator in _EXTRA_OPTIONS.items():
        given = getattr(args, option)
        if given is not None:
            values[indicator] = _gas_value(hj633.POLLUTANT_OF[indicator], given, args.unit)
    if not values:
        raise StandardsInputError(
            "give at least one concentration (--so2, --no2, --co, --o3, --pm10, --pm2_5)"
        )
    result = hj633.report_aqi(edition, report, values, args.rounding)
    return Output(_aqi_json(result, values, basis), _aqi_text(result, values, basis))


def _aqi_json(result: hj633.AqiResult, values: Mapping[hj633.Indicator, float], basis: str) -> Json:
    category = result.category
    return {
        "standard": f"HJ 633-{result.edition}",
        "edition": result.edition,
        "edition_basis": basis,
        "period": result.report,
        "aqi": result.aqi,
        "iaqi": dict(result.by_pollutant),
        "iaqi_by_indicator": dict(result.iaqi),
        "level": result.level,
        "level_roman": None if category is None else category.roman,
        "category": None if category is None else category.name_en,
        "category_zh": None if category is None else category.name_zh,
        "colour": None if category is None else category.colour_en,
        "colour_hex": None if category is None else category.hex,
        "rgb": None if category is None else list(category.rgb),
        "primary": list(result.primary),
        "primary_indicators": list(result.primary_indicators),
        "missing": list(result.missing),
        "not_computable": list(result.not_computable),
        "fallbacks": dict(result.fallbacks),
        "beyond_scale": list(result.beyond_scale),
        "non_attainment": list(result.non_attainment),
        "publishable": result.publishable,
        "concentrations": dict(values),
    }


# HJ 633-2012 Table 1 notes: which one sends an indicator above 800 to another indicator.
_FALLBACK_NOTES: Final[dict[hj633.Indicator, str]] = {"so2_1h": "note (2)", "o3_8h": "note (3)"}
# In a daily report O3 "8-h" is the daily maximum 8-h mean and O3 "1-h" the daily maximum 1-h.
_DAILY_LABELS: Final[dict[hj633.Indicator, str]] = {"o3_8h": "O3 MDA8", "o3_1h": "O3 max 1-h"}


def _label(indicator: hj633.Indicator, report: hj633.Report = "hour") -> str:
    if report == "day" and indicator in _DAILY_LABELS:
        return _DAILY_LABELS[indicator]
    hours = indicator.rsplit("_", 1)[1].removesuffix("h")
    return f"{_NAMES[hj633.POLLUTANT_OF[indicator]]} {hours}-h"


def _number(value: float) -> str:
    return f"{round(value, 2):g}"


def _aqi_text(result: hj633.AqiResult, values: Mapping[hj633.Indicator, float], basis: str) -> str:
    report = "real-time (hourly)" if result.report == "hour" else "daily"
    lines = [f"HJ 633-{result.edition} {report} AQI (edition {basis})"]
    category = result.category
    if result.aqi is None or category is None:
        lines.append("AQI: not computable from the values given")
    else:
        lines.append(
            f"AQI {result.aqi}  level {category.roman}  {category.name_en}  "
            f"({category.colour_en} {category.hex})  {category.level_zh} {category.name_zh}"
        )
        primary = ", ".join(_NAMES[p] for p in result.primary) or "none (AQI <= 50)"
        lines.append(f"primary pollutant: {primary}")
    lines += ["", f"{'indicator':<12}{'concentration':>16}{'IAQI':>7}"]
    for indicator in hj633.indicators(result.edition, result.report):
        if indicator not in values:
            continue
        unit = "mg/m3" if hj633.POLLUTANT_OF[indicator] == "co" else "ug/m3"
        sub = result.iaqi.get(indicator)
        shown = "n/a" if sub is None else str(sub)
        mark = " *" if indicator in result.primary_indicators else ""
        conc = f"{_number(values[indicator])} {unit}"
        lines.append(f"{_label(indicator, result.report):<12}{conc:>16}{shown:>7}{mark}")
    notes = _aqi_notes(result)
    return "\n".join([*lines, "", *notes] if notes else lines)


def _aqi_notes(result: hj633.AqiResult) -> list[str]:
    def names(indicators: tuple[hj633.Indicator, ...]) -> str:
        return ", ".join(_label(i, result.report) for i in indicators)

    notes = [
        f"{_label(i, result.report)} > 800: IAQI reported from {_label(source, result.report)} "
        f"(HJ 633-2012 Table 1 {_FALLBACK_NOTES[i]})"
        for i, source in result.fallbacks.items()
    ]
    notes += [
        f"{_label(i, result.report)} > 800: not computable without "
        f"--{hj633.FALLBACK_2012[hj633.COLUMN_OF[i]]} (HJ 633-2012 Table 1 {_FALLBACK_NOTES[i]})"
        for i in result.not_computable
    ]
    if result.beyond_scale:
        notes.append(f"above the top breakpoint, IAQI capped at 500: {names(result.beyond_scale)}")
    if result.non_attainment:
        notes.append(f"non-attainment (IAQI > 100, HJ 633-2012): {names(result.non_attainment)}")
    if result.missing:
        notes.append(f"missing: {names(result.missing)}; AQI computed from the rest")
        if result.edition == "2026" and not result.publishable:
            notes.append("HJ 633-2026 §5.3: with data missing, publish the AQI only above 100")
    return notes


# -------------------------------------------------------------------------------------- water

_WATER_ITEMS: Final[tuple[gb3838.WaterItem, ...]] = get_args(gb3838.WaterItem)
_WATER_HELP: Final[dict[gb3838.WaterItem, str]] = {
    "ph": "pH",
    "do": "dissolved oxygen, mg/L (a minimum)",
    "codmn": "permanganate index CODMn, mg/L",
    "nh3_n": "ammonia nitrogen NH3-N, mg/L",
    "tp": "total phosphorus as P, mg/L (lake limits for --body lake)",
    "tn": "total nitrogen as N, mg/L (lakes and reservoirs only)",
}
_ROMAN: Final = ("I", "II", "III", "IV", "V")


def _target(text: str) -> int:
    """A target class as 1..5 or I..V."""
    upper = text.strip().upper()
    if upper in _ROMAN:
        return _ROMAN.index(upper) + 1
    if upper.isdigit() and 1 <= int(upper) <= len(_ROMAN):
        return int(upper)
    raise argparse.ArgumentTypeError(f"target class {text!r} is not one of 1..5 or I..V")


def _water_arguments(water: argparse.ArgumentParser) -> None:
    water.add_argument("--body", choices=("lake", "river"), required=True)
    water.add_argument(
        "--target", type=_target, default=3, help="target class, 1..5 or I..V (default 3)"
    )
    for item in _WATER_ITEMS:
        water.add_argument(f"--{item}", type=float, metavar="C", help=_WATER_HELP[item])
    water.add_argument("--chl_a", type=float, metavar="C", help="chlorophyll-a, ug/L (TLI only)")
    water.add_argument("--sd", type=float, metavar="M", help="Secchi depth, m (TLI only)")


def _water(args: argparse.Namespace) -> Output:
    body = cast(gb3838.WaterBody, args.body)
    values: dict[gb3838.WaterItem, float] = {
        item: getattr(args, item) for item in _WATER_ITEMS if getattr(args, item) is not None
    }
    if not values:
        raise StandardsInputError(
            "give at least one GB 3838 parameter (--ph, --do, --codmn, --nh3_n, --tp, --tn)"
        )
    evaluation = gb3838.evaluate_site(values, body, args.target)
    trophic = _lake_tli(args) if body == "lake" else None
    return Output(
        _water_json(evaluation, values, trophic), _water_text(evaluation, values, trophic)
    )


@dataclass(frozen=True, slots=True)
class LakeTli:
    """The lake's TLI, or why it could not be computed (e.g. TP 0: ln 0 is undefined), which
    must not stop the GB 3838 evaluation."""

    result: tli.TliResult | None
    error: str | None


def _lake_tli(args: argparse.Namespace) -> LakeTli | None:
    given: dict[tli.TliParameter, float] = {
        p: getattr(args, p) for p in tli.TLI_PARAMETERS if getattr(args, p) is not None
    }
    if not given:
        return None
    try:
        return LakeTli(tli.trophic_index(given), None)
    except tli.TliInputError as exc:
        return LakeTli(None, str(exc))


def _water_json(
    evaluation: gb3838.SiteEvaluation,
    values: Mapping[gb3838.WaterItem, float],
    trophic: LakeTli | None,
) -> Json:
    items: Json = {
        item: {
            "value": values[item],
            "class": c.water_class,
            "class_name": gb3838.class_name(c.water_class),
            "target_limit": float(c.target_limit),
            "multiple": round(c.multiple, 3),
            "exceeds": c.water_class > evaluation.target,
        }
        for item, c in evaluation.items.items()
    }
    return {
        "standard": "GB 3838-2002",
        "body": evaluation.body,
        "target": evaluation.target,
        "class": evaluation.water_class,
        "class_name": gb3838.class_name(evaluation.water_class),
        "meets_target": evaluation.meets_target,
        "quality": evaluation.quality.name_en,
        "quality_zh": evaluation.quality.name_zh,
        "items": items,
        "exceeding": [c.item for c in evaluation.exceeding],
        "not_evaluated": list(evaluation.not_evaluated),
        "tli": None if trophic is None or trophic.result is None else _tli_json(trophic.result),
        "tli_error": None if trophic is None else trophic.error,
    }


def _tli_json(trophic: tli.TliResult) -> Json:
    return {
        "tli": round(trophic.tli, 2),
        "state": trophic.state.name_en,
        "state_zh": trophic.state.name_zh,
        "eutrophic": trophic.state.eutrophic,
        "parameters": list(trophic.partial),
        "missing": list(trophic.missing),
    }


def _water_text(
    evaluation: gb3838.SiteEvaluation,
    values: Mapping[gb3838.WaterItem, float],
    trophic: LakeTli | None,
) -> str:
    name = gb3838.class_name
    verdict = "meets" if evaluation.meets_target else "does not meet"
    lines = [
        f"GB 3838-2002 single-factor evaluation, {evaluation.body}",
        f"class {name(evaluation.water_class)} ({evaluation.quality.name_en}, "
        f"{evaluation.quality.name_zh}): {verdict} target class {name(evaluation.target)}",
        "",
        f"{'item':<8}{'value':>10}{'class':>7}{'target limit':>14}{'multiple':>10}",
    ]
    for item, c in evaluation.items.items():
        multiple = f"{c.multiple:.2f}" if c.water_class > evaluation.target else "-"
        lines.append(
            f"{item:<8}{values[item]:>10g}{name(c.water_class):>7}{c.target_limit:>14g}"
            f"{multiple:>10}"
        )
    if evaluation.not_evaluated:
        skipped = ", ".join(evaluation.not_evaluated)
        lines.append(f"not evaluated for a {evaluation.body}: {skipped}")
    if trophic is not None and trophic.result is not None:
        index = trophic.result
        lines += [
            "",
            f"TLI {index.tli:.1f}: {index.state.name_en} ({index.state.name_zh}), "
            f"from {', '.join(index.partial)}",
        ]
    elif trophic is not None:
        lines += ["", f"TLI not computed: {trophic.error}"]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- noise


def _noise_arguments(noise: argparse.ArgumentParser) -> None:
    noise.add_argument("--zone", required=True, help="functional zone: 0, 1, 2, 3, 4a, 4b")
    noise.add_argument("--period", choices=("day", "night"), required=True)
    level = noise.add_mutually_exclusive_group(required=True)
    level.add_argument("--leq", type=float, metavar="DB", help="L_Aeq, dB(A)")
    level.add_argument("--lmax", type=float, metavar="DB", help="night L_max, dB(A)")


def _noise(args: argparse.Namespace) -> Output:
    zone = gb3096.parse_zone(args.zone)
    if args.lmax is not None:
        if args.period != "night":
            raise StandardsInputError("GB 3096-2008 §5.4 limits L_max at night only")
        result = gb3096.assess_night_lmax(zone, args.lmax)
    else:
        result = gb3096.assess(zone, cast(gb3096.Period, args.period), args.leq)
    data: Json = {
        "standard": "GB 3096-2008",
        "zone": result.zone,
        "period": result.period,
        "metric": result.metric,
        "level": result.level,
        "limit": float(result.limit),
        "exceeds": result.exceeds,
        "excess_db": round(result.excess_db, 1),
    }
    metric = "L_Aeq" if result.metric == "leq" else "L_max"
    clause = "Table 1" if result.metric == "leq" else "§5.4, night limit + 15"
    verdict = f"exceeds by {result.excess_db:.1f} dB(A)" if result.exceeds else "within"
    text = (
        f"GB 3096-2008 zone {result.zone}, {result.period}\n"
        f"{metric} {result.level:g} dB(A), limit {result.limit:g} dB(A) ({clause}): {verdict}"
    )
    return Output(data, text)


# -------------------------------------------------------------------------------------- odour

_ODOUR_ITEMS: Final[tuple[gb14554.OdourItem, ...]] = get_args(gb14554.OdourItem)
_ODOUR_GASES: Final[dict[gb14554.OdourItem, Gas]] = {"nh3": "nh3", "h2s": "h2s"}


@dataclass(frozen=True, slots=True)
class OdourCheck:
    item: gb14554.OdourItem
    value: float
    limit: float

    @property
    def exceeds(self) -> bool:
        return self.value > self.limit

    @property
    def multiple(self) -> float:
        """超标倍数 (C - C_limit) / C_limit, 0 within the limit."""
        return max(0.0, (self.value - self.limit) / self.limit)


def _odour_arguments(odour: argparse.ArgumentParser) -> None:
    odour.add_argument(
        "--grade", choices=get_args(gb14554.OdourGrade), default="II-new", help="default II-new"
    )
    odour.add_argument("--h2s", type=float, metavar="C", help="hydrogen sulphide")
    odour.add_argument("--nh3", type=float, metavar="C", help="ammonia")
    odour.add_argument("--odour", type=float, metavar="N", help="odour concentration")
    odour.add_argument("--unit", choices=GAS_UNITS, default=CANONICAL, help="unit of H2S, NH3")


def _odour(args: argparse.Namespace) -> Output:
    grade = cast(gb14554.OdourGrade, args.grade)
    checks: list[OdourCheck] = []
    for item in _ODOUR_ITEMS:
        value: float | None = getattr(args, item)
        if value is None:
            continue
        if not value >= 0:  # also refuses NaN
            raise StandardsInputError(f"{item} value {value} is not a non-negative number")
        gas = _ODOUR_GASES.get(item)
        if gas is not None and args.unit != CANONICAL:
            value = to_canonical(gas, value, cast(MixingUnit, args.unit))
        checks.append(OdourCheck(item, value, gb14554.limit(item, grade)))
    if not checks:
        raise StandardsInputError("give at least one of --h2s, --nh3, --odour")
    data: Json = {
        "standard": "GB 14554-93",
        "grade": grade,
        "exceeds": any(c.exceeds for c in checks),
        "items": {
            c.item: {
                "value": c.value,
                "unit": "OU" if c.item == "odour" else CANONICAL,
                "limit": c.limit,
                "exceeds": c.exceeds,
                "multiple": round(c.multiple, 3),
            }
            for c in checks
        },
    }
    lines = [
        f"GB 14554-93 Table 1, grade {grade}",
        "",
        f"{'item':<7}{'value':>12}{'limit':>10} {'unit':<6}{'multiple':>9}",
    ]
    for c in checks:
        unit = "" if c.item == "odour" else "ug/m3"
        verdict = f"{c.multiple:.2f}" if c.exceeds else "within"
        lines.append(f"{c.item:<7}{c.value:>12g}{c.limit:>10g} {unit:<6}{verdict:>9}")
    return Output(data, "\n".join(lines))


# After the functions it names; `envnet standards --help` lists them in this order.
_CALCULATORS: Final = (
    _Calculator(
        "aqi",
        help="HJ 633 air quality index (2026 or 2012)",
        description="The AQI, sub-indices, category and primary pollutant. --period hour takes "
        "the real-time inputs: in 2026 the six 1-h means (PM 1-h against the daily "
        "breakpoints); in 2012 the gases' 1-h means, PM 24-h sliding means and --o3_8h. "
        "--period day takes daily means, with --o3 the daily maximum 8-h mean (MDA8), and in "
        "2012 --o3_1h, the daily maximum 1-h mean. Units: ug/m3, CO mg/m3.",
        add_arguments=_aqi_arguments,
        calculate=_aqi,
    ),
    _Calculator(
        "water",
        help="GB 3838-2002 surface-water class, exceedance multiples and lake TLI",
        description="Single-factor evaluation (GB 3838-2002 §5.1): each parameter's class, the "
        "site's class (the worst; 6 = worse than V), and each parameter's exceedance multiple "
        "(C - C_limit) / C_limit against the target class. For lakes, also the trophic level "
        "index TLI from whichever of chl-a, TP, TN, SD and CODMn are given.",
        add_arguments=_water_arguments,
        calculate=_water,
    ),
    _Calculator(
        "noise",
        help="GB 3096-2008 noise limits by functional zone",
        description="L_Aeq against the zone's day or night limit (GB 3096-2008 Table 1), or a "
        "night L_max against the night limit + 15 dB(A) (§5.4).",
        add_arguments=_noise_arguments,
        calculate=_noise,
    ),
    _Calculator(
        "odour",
        help="GB 14554-93 odour plant-boundary limits",
        description="Plant-boundary concentrations of fugitive sources against GB 14554-93 "
        "Table 1 by grade. NH3 and H2S in ug/m3 (or --unit ppb/ppm, converted at 25 °C; the "
        "standard's reference state is UNVERIFIED), odour concentration dimensionless.",
        add_arguments=_odour_arguments,
        calculate=_odour,
    ),
)
