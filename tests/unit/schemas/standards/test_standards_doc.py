"""docs/standards.md against the code that cites it.

(a) Every citation "docs/standards.md §N.M" (and the "§N.M" that follow it in the same citation,
    as in "docs/standards.md §1.3, §4.1" or "§1.4 and §8 item 1") in the repository's .py and
    .md files names a section that docs/standards.md has as a heading.
(b) The numbers of the code's standards tables are in the reference, in the right row of the
    right section: change a table without the reference (or the other way round) and this
    fails.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import get_args

import pytest

from aggregator.config import load_aggregator_config
from aggregator.engine.windows import MIN_8H_HOURS, MIN_DAILY_HOURS
from schemas import gas_units
from schemas.standards import editions, gb3095, gb3096, gb3838, gb14554, hj633, tli, who_bloom

ROOT = Path(__file__).resolve().parents[4]
DOC = ROOT / "docs" / "standards.md"

HEADING = re.compile(r"^(#{2,4})\s+(\d+(?:\.\d+)*)\.?\s")
# "standards.md" then one or more section numbers joined by commas, "and" or "or".
CITATION = re.compile(
    r"standards\.md`?\s*(§\s*\d+(?:\.\d+)?(?:\s*(?:,|and|or)\s*§\s*\d+(?:\.\d+)?)*)"
)
SECTION_NUMBER = re.compile(r"§\s*(\d+(?:\.\d+)?)")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@cache
def sections() -> dict[str, str]:
    """Section number -> its text, subsections included."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    heads = [(i, m) for i, line in enumerate(lines) if (m := HEADING.match(line))]
    out: dict[str, str] = {}
    for k, (start, match) in enumerate(heads):
        level = len(match.group(1))
        end = next((i for i, m in heads[k + 1 :] if len(m.group(1)) <= level), len(lines))
        out[match.group(2)] = "\n".join(lines[start:end])
    return out


def section(number: str) -> str:
    assert number in sections(), f"docs/standards.md has no section {number}"
    return sections()[number]


def prose(number: str) -> str:
    """A section's text with line breaks and runs of spaces collapsed, for phrase checks."""
    return " ".join(section(number).split())


def rows(number: str) -> list[list[str]]:
    """The table rows of a section (header rows included, separator rows not), cells
    stripped of bold markers."""
    out = []
    for line in section(number).splitlines():
        if not line.startswith("|") or re.fullmatch(r"[|\s:-]+", line):
            continue
        out.append([cell.strip().replace("**", "") for cell in line.strip("|").split("|")])
    return out


def row(number: str, *keys: str) -> list[str]:
    """The one row of a section's tables whose first cells are `keys`."""
    found = [r for r in rows(number) if r[: len(keys)] == list(keys)]
    assert len(found) == 1, f"§{number}: {len(found)} rows start with {keys}"
    return found[0]


def numbers(cells: list[str]) -> list[float]:
    """Each cell that is a bare number, as a float ("—", words and ranges are skipped)."""
    return [float(c) for c in cells if NUMBER.fullmatch(c)]


# -- (a) citations ---------------------------------------------------------------------------


def cited_sections() -> list[tuple[str, str]]:
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in files:
        path = ROOT / name
        if not path.is_file():  # deleted in the working tree, not yet in the index
            continue
        for citation in CITATION.finditer(path.read_text(encoding="utf-8")):
            found += [(name, n) for n in SECTION_NUMBER.findall(citation.group(1))]
    return found


def test_citation_pattern_reads_lists_of_sections() -> None:
    text = "see docs/standards.md §1.3, §4.1 and `docs/standards.md` §1.4 and §8 item 1; §9 apart"
    got = [SECTION_NUMBER.findall(m.group(1)) for m in CITATION.finditer(text)]
    assert got == [["1.3", "4.1"], ["1.4", "8"]]


def test_every_cited_section_exists() -> None:
    missing = [f"{name}: §{n}" for name, n in cited_sections() if n not in sections()]
    assert missing == []


def test_section_numbers_of_the_shared_layout() -> None:
    # The layout every citation relies on: §0.1-0.6, §1.1-1.4, §2.1-2.7, ..., §8.1-8.7.
    expected = {
        "0": 6, "1": 4, "2": 7, "3": 3, "4": 2, "5": 3, "6": 4, "7": 0, "8": 7,
    }  # fmt: skip
    for top, count in expected.items():
        assert top in sections()
        subs = sorted(k for k in sections() if k.startswith(f"{top}."))
        assert subs == [f"{top}.{i}" for i in range(1, count + 1)]


# -- (b) the code's numbers are in the reference ---------------------------------------------

POLLUTANT = {"so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3", "pm10": "PM10", "pm2_5": "PM2.5"}
PERIOD = {"1h": "1-h", "8h": "MDA8", "24h": "24-h", "annual": "annual"}


def test_gb3095_table_1() -> None:
    keys = set(gb3095.EDITION_2012) | set(gb3095.TRANSITION_2026) | set(gb3095.FINAL_2026)
    assert len(keys) == 14
    for q, period in keys:
        cells = numbers(row("1.1", POLLUTANT[q], PERIOD[period]))
        code = [
            limit
            for table in (gb3095.EDITION_2012, gb3095.TRANSITION_2026, gb3095.FINAL_2026)
            for limit in (table[(q, period)].grade_i, table[(q, period)].grade_ii)
        ]
        assert cells == code, (q, period)


def test_gb3095_edition_and_phase_dates() -> None:
    text = prose("0.1")
    assert editions.FIRST_DAY_2026.isoformat() in text
    assert gb3095.TRANSITION_LAST_DAY.isoformat() in text
    assert "00:00 China Standard Time (UTC+8)" in text
    assert editions.CST.utcoffset(None).total_seconds() == 8 * 3600


def test_gb3095_validity_rules() -> None:
    def first_number(*keys: str) -> float:
        return float(row("1.4", *keys)[2].split()[0])

    assert first_number("SO2, NO2, CO, PM10, PM2.5, NOx", "24-h mean") == MIN_DAILY_HOURS
    assert first_number("O3", "8-h mean") == MIN_8H_HOURS
    assert first_number("SO2, NO2, CO, O3, NOx", "1-h mean") * 60 == gb3095.MIN_COVERAGE_1H_S


def test_gas_conversion_factors() -> None:
    assert f"**{gas_units.MOLAR_VOLUME_25C_L} L**" in prose("1.3")
    for gas, mass in gas_units.MOLAR_MASS_G.items():
        cells = numbers(row("1.3", gas.upper()))
        assert cells == [mass, round(gas_units.ug_m3_per_ppb(gas), 3)], gas


HJ633_ROW = {
    "so2_24h": "SO2 24-h",
    "so2_1h": "SO2 1-h",
    "no2_24h": "NO2 24-h",
    "no2_1h": "NO2 1-h",
    "co_24h": "CO 24-h",
    "co_1h": "CO 1-h",
    "o3_8h": "O3 8-h",
    "o3_1h": "O3 1-h",
}


@pytest.mark.parametrize("edition", hj633.EDITIONS)
def test_hj633_breakpoints(edition: hj633.Edition) -> None:
    assert numbers(rows("2.1")[0][2:]) == []  # header cells are "IAQI 0", ...
    levels = [float(c.split()[-1]) for c in rows("2.1")[0][2:]]
    assert levels == list(hj633.IAQI_LEVELS)
    for column, points in hj633.BREAKPOINTS[edition].items():
        label = (
            HJ633_ROW.get(column)
            or {"pm10_24h": "PM10 24-h", "pm2_5_24h": "PM2.5 24-h"}[column] + f" ({edition})"
        )
        assert numbers(row("2.1", label)) == list(points), (edition, column)


def test_hj633_ceilings_fallbacks_and_thresholds() -> None:
    text = prose("2.1")
    assert "SO2 1-h above 800 µg/m³ gives **IAQI 200**" in text
    assert "O3 8-h above 800 µg/m³ gives **IAQI 300**" in text
    assert hj633.CEILING_IAQI_2026 == {"so2_1h": 200, "o3_8h": 300}
    assert hj633.FALLBACK_2012 == {"so2_1h": "so2_24h", "o3_8h": "o3_1h"}
    text = prose("2.2")
    assert f"only when the AQI is above {hj633.PRIMARY_ABOVE}" in text
    assert f"whose IAQI is above {hj633.NON_ATTAINMENT_ABOVE_2012}" in text
    assert f"envnet reports {hj633.AQI_MAX}" in text
    assert hj633.DECIMALS == {"so2": 0, "no2": 0, "co": 1, "o3": 0, "pm10": 0, "pm2_5": 0}
    assert "CO in mg/m³ to one decimal" in text


def test_hj633_categories() -> None:
    table = rows("2.3")[1:]
    assert len(table) == len(hj633.CATEGORIES)
    for category, cells in zip(hj633.CATEGORIES, table, strict=True):
        assert cells[0] == f"{category.roman} {category.level_zh}"
        low, high = hj633.band("2026", category)
        expected = f"{low}–{high}" if category.upper is not None else f"above {low - 1}"
        assert cells[1].startswith(expected)
        assert cells[2] == f"{category.name_zh} {category.name_en}"
        assert cells[3] == f"{category.colour_zh} {category.colour_en}"
        assert cells[4] == ", ".join(map(str, category.rgb))
        assert cells[5] == category.hex
        assert cells[6] == ", ".join(map(str, category.cmyk))
    assert "2012: 0–50" in table[0][1] and hj633.AQI_MIN == {"2012": 0, "2026": 1}


INDICATOR: dict[str, hj633.Indicator] = {
    "PM2.5 24-h": "pm2_5_24h",
    "PM10 24-h": "pm10_24h",
    "SO2 24-h": "so2_24h",
}
INDICATOR |= {"SO2 1-h": "so2_1h", "CO 24-h": "co_24h", "CO 1-h": "co_1h", "O3 8-h": "o3_8h"}


def test_hj633_reference_values_of_2_6() -> None:
    table = [r for r in rows("2.6") if r[0] in INDICATOR]
    assert len(table) == 10
    for label, conc, ref_2012, ref_2026, *_ in table:
        refs: dict[hj633.Edition, str] = {"2012": ref_2012, "2026": ref_2026}
        for edition, ref in refs.items():
            got = hj633.iaqi(edition, INDICATOR[label], float(conc))
            # HJ 633-2012 notes (2)/(3): no sub-index of its own; "from 24-h" / "from 1-h".
            expected = ref if got is None and ref.startswith("from ") else str(got)
            assert ref == expected, (label, conc, edition)


def test_gb3096_limits() -> None:
    for zone, limits in gb3096.LIMITS.items():
        assert numbers(row("3.1", zone)[2:]) == [limits.day, limits.night], zone
    assert f"at most **{gb3096.NIGHT_LMAX_MARGIN_DB:g} dB(A)**" in prose("3.2")


def test_gb14554_table_1() -> None:
    label = {"nh3": "Ammonia NH3", "h2s": "Hydrogen sulfide H2S", "odour": "Odour concentration"}
    grades: tuple[gb14554.OdourGrade, ...] = get_args(gb14554.OdourGrade)
    for item, values in gb14554.TABLE_1.items():
        (cells,) = [r for r in rows("4.1") if r[1].startswith(label[item])]
        assert numbers(cells[3:]) == [values[g] for g in grades], item


def test_gb3838_table_1() -> None:
    label = {
        ("codmn", "river"): "Permanganate index CODMn",
        ("codmn", "lake"): "Permanganate index CODMn",
        ("nh3_n", "river"): "Ammonia nitrogen NH3-N",
        ("nh3_n", "lake"): "Ammonia nitrogen NH3-N",
        ("tp", "river"): "Total phosphorus (as P), rivers",
        ("tp", "lake"): "Total phosphorus (as P), lakes and reservoirs",
        ("tn", "lake"): "Total nitrogen (as N), lakes and reservoirs",
    }
    assert set(label) == set(gb3838.MAXIMA)
    for key, limits in gb3838.MAXIMA.items():
        (cells,) = [r for r in rows("5.1") if r[1] == label[key]]
        assert numbers(cells[2:]) == list(limits), key
    (do,) = [r for r in rows("5.1") if r[1].startswith("Dissolved oxygen")]
    assert [float(do[2].split()[0]), *numbers(do[3:])] == list(gb3838.MINIMA["do"])
    (ph,) = [r for r in rows("5.1") if r[1].startswith("pH")]
    low, high = gb3838.PH_RANGE
    assert ph[2].startswith(f"{low:g}–{high:g}")


def test_gb3838_class_wording() -> None:
    text = prose("5.2")
    assert gb3838.QUALITY[1] == gb3838.QUALITY[2]
    for water_class, quality in gb3838.QUALITY.items():
        name = "I and II" if water_class <= 2 else gb3838.class_name(water_class)
        assert f"{name} {quality.name_zh} ({quality.name_en})" in text, water_class


def test_tli_terms_and_classes() -> None:
    label = {"chl_a": "chl-a", "tp": "TP", "tn": "TN", "sd": "SD", "codmn": "CODMn"}
    total = sum(t.r**2 for t in tli.TERMS.values())
    for parameter, term in tli.TERMS.items():
        a, b, r, r2, w = numbers(row("6.3", label[parameter]))
        assert (a, b, r) == (term.a, term.b, term.r), parameter
        assert r2 == pytest.approx(term.r**2) and w == pytest.approx(term.r**2 / total, abs=1e-4)
    text = prose("6.3")
    bounds = [bound for _, bound, _ in tli.CLASSES]
    assert bounds == [30, 50, 60, 70]
    assert "below 30 oligotrophic" in text and "30 to 50 mesotrophic" in text
    assert "(轻度, 50–60)" in text and "(中度, 60–70)" in text and "above 70)" in text


def test_who_bloom_levels() -> None:
    table = rows("6.1")
    for level, label in zip(who_bloom.LEVELS, ("relatively low", "moderate"), strict=True):
        (cells,) = [r for r in table if r[0] == label]
        assert cells[2] == f"{level.chl_a_ug_l:g} µg/L", level.name
        assert f"`bloom.chl_a.{level.name}` at {level.chl_a_ug_l:g} µg/L" in prose("6.1")


SETTINGS = [
    ("alerts", "air_edition"),
    ("alerts", "utc_offset_h"),
    ("alerts", "day_starts_h"),
    ("alerts", "night_starts_h"),
    ("alerts", "aqi_alert_level"),
    ("alerts.windows", "min_hour_coverage_s"),
    ("alerts.windows", "min_daily_hours"),
    ("alerts.windows", "min_8h_hours"),
    ("alerts.windows", "mda8_first_end_hour"),
    ("alerts.windows", "mda8_last_end_hour"),
    ("alerts.windows", "min_mda8_windows"),
    ("alerts.windows", "min_day_hours"),
    ("alerts.windows", "min_night_hours"),
    ("alerts.odour", "window"),
    ("alerts.bloom", "phycocyanin"),
    ("alerts.hysteresis", "fraction"),
    ("alerts.hysteresis", "noise_db"),
    ("alerts.hysteresis", "aqi_points"),
    ("alerts.health", "high_rh_pct"),
    ("report", "air_edition"),
    ("report", "o3_percentile"),
    ("report", "o3_percentile_method"),
    ("report", "default_air_zone"),
    ("report", "group_days"),
    ("report", "good_day_target_pct"),
    ("report.water", "daily_statistic"),
    ("report.water", "min_hours"),
    ("report.water", "default_target"),
    ("report.water", "required_items"),
    ("report.bloom", "daily_statistic"),
    ("report.bloom", "min_hours"),
]


@pytest.mark.parametrize(("table", "key"), SETTINGS)
def test_setting_defaults_of_9(table: str, key: str) -> None:
    value: object = load_aggregator_config(None, environ={})
    for part in (*table.split("."), key):
        value = getattr(value, part)
    cells = row("9", f"`[{table}] {key}`")
    shown = cells[1]
    if isinstance(value, list | tuple) and not value:
        assert shown == "none"
    else:
        assert shown == str(value), (table, key, value)
