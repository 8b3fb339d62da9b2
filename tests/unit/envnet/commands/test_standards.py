"""`envnet standards`: the calculators as a user runs them, human and --json output, errors."""

from __future__ import annotations

import json

import pytest

from envnet.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) in process: (exit code, stdout, stderr); argparse exits are caught."""
    try:
        code = main(argv)
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, err = run([*argv, "--json"], capsys)
    assert code == 0, err
    assert out.count("\n") == 1  # one JSON object on one line
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


AQI_EXAMPLE = [
    "standards",
    "aqi",
    "--edition",
    "2026",
    "--period",
    "hour",
    "--pm2_5",
    "75",
    "--o3",
    "210",
    "--so2",
    "10",
    "--no2",
    "40",
    "--co",
    "0.8",
    "--pm10",
    "90",
]


@pytest.mark.parametrize("calculator", [[], ["aqi"], ["water"], ["noise"], ["odour"]])
def test_every_calculator_has_help(
    calculator: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["standards", *calculator, "--help"], capsys)
    assert code == 0 and "usage: envnet standards" in out


def test_aqi_example_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(AQI_EXAMPLE, capsys)
    assert {"aqi", "iaqi", "category", "level", "primary"} <= data.keys()
    # Worked in tests/unit/schemas/standards/test_hj633.py::test_hourly_2026_hand_worked.
    assert data["aqi"] == 114 and data["level"] == 3 and data["primary"] == ["pm2_5"]
    assert data["iaqi"] == {"so2": 4, "no2": 20, "co": 8, "o3": 105, "pm10": 79, "pm2_5": 114}
    assert data["category"] == "Lightly polluted" and data["colour_hex"] == "#FF7E00"


def test_aqi_example_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(AQI_EXAMPLE, capsys)
    assert code == 0
    assert "AQI 114  level III  Lightly polluted" in out
    assert "primary pollutant: PM2.5" in out
    row = next(line for line in out.splitlines() if line.startswith("PM2.5 1-h"))
    assert row.split() == ["PM2.5", "1-h", "75", "ug/m3", "114", "*"]


def test_aqi_daily_and_2012_fallbacks(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["standards", "aqi", "--edition", "2012"]
    # Daily: --o3 is MDA8; 900 > 800 falls back on the daily max 1-h (1000 -> 400).
    day = run_json([*base, "--period", "day", "--o3", "900", "--o3_1h", "1000"], capsys)
    assert day["aqi"] == 400 and day["fallbacks"] == {"o3_8h": "o3_1h"}
    # Real-time: SO2 1-h 900 falls back on --so2_24h (475 -> 150).
    hour = run_json([*base, "--so2", "900", "--so2_24h", "475"], capsys)
    assert hour["aqi"] == 150 and hour["iaqi"] == {"so2": 150}
    # Without the fallback value: not computable, and no AQI at all from SO2 alone.
    alone = run_json([*base, "--so2", "900"], capsys)
    assert alone["aqi"] is None and alone["not_computable"] == ["so2_1h"]
    assert alone["category"] is None and alone["level"] is None and alone["primary"] == []


def test_aqi_gas_units_in_ppb_and_ppm(capsys: pytest.CaptureFixture[str]) -> None:
    # SO2 100 ppb x 64.066/24.465 = 261.9 µg/m³ -> 262 -> (100-50)/(500-150)*(262-150)+50 = 66.
    so2 = run_json(["standards", "aqi", "--so2", "100", "--unit", "ppb"], capsys)
    assert so2["iaqi"] == {"so2": 66}
    # CO 2 ppm x 1.145 = 2.29 mg/m³ -> 2.3 -> 50/5 * 2.3 = 23.
    co = run_json(["standards", "aqi", "--co", "2", "--unit", "ppm"], capsys)
    assert co["iaqi"] == {"co": 23}
    # PM is not a gas: --unit leaves it in µg/m³.
    pm = run_json(["standards", "aqi", "--pm2_5", "60", "--unit", "ppb"], capsys)
    assert pm["iaqi"] == {"pm2_5": 100}


def test_water_example(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["standards", "water", "--body", "lake", "--tp", "0.06", "--do", "4.5"]
    data = run_json([*argv, "--nh3_n", "0.4"], capsys)
    assert data["class"] == 4 and data["meets_target"] is False and data["target"] == 3
    items = data["items"]
    assert isinstance(items, dict)
    assert items["tp"]["class"] == 4 and items["tp"]["multiple"] == pytest.approx(0.2)
    assert items["do"]["class"] == 4 and items["do"]["multiple"] == pytest.approx(0.1)
    assert items["nh3_n"]["class"] == 2 and items["nh3_n"]["multiple"] == 0
    code, out, _ = run([*argv, "--target", "IV"], capsys)
    assert code == 0 and "class IV" in out and "meets target class IV" in out


def test_water_worse_than_v_and_tli(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["standards", "water", "--body", "lake", "--nh3_n", "2.5", "--chl_a", "10"]
    data = run_json(argv, capsys)
    assert data["class"] == 6 and data["class_name"] == "劣V"
    tli = data["tli"]
    # TLI from chl-a alone: 10 (2.5 + 1.086 ln 10) = 50.01.
    assert isinstance(tli, dict) and tli["tli"] == pytest.approx(50.01, abs=0.01)
    assert tli["parameters"] == ["chl_a"]


def test_river_has_no_tli_and_skips_tn(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["standards", "water", "--body", "river", "--tp", "0.06", "--tn", "3", "--chl_a", "9"]
    data = run_json(argv, capsys)
    assert data["class"] == 2 and data["not_evaluated"] == ["tn"] and data["tli"] is None


def test_noise_example(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["standards", "noise", "--zone", "4a", "--period", "night"]
    data = run_json([*argv, "--leq", "58"], capsys)
    assert data["limit"] == 55 and data["exceeds"] is True and data["excess_db"] == 3.0
    lmax = run_json([*argv, "--lmax", "68"], capsys)
    assert lmax["limit"] == 70 and lmax["exceeds"] is False and lmax["excess_db"] == 0
    code, out, _ = run([*argv, "--leq", "58"], capsys)
    assert code == 0 and "exceeds by 3.0 dB(A)" in out


def test_odour_example(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["standards", "odour", "--grade", "II-new", "--h2s", "80"], capsys)
    # H2S Grade II new 0.06 mg/m³ = 60 µg/m³; (80 - 60)/60 = 0.333.
    assert data["exceeds"] is True
    assert data["items"] == {
        "h2s": {"value": 80.0, "unit": "ug/m3", "limit": 60.0, "exceeds": True, "multiple": 0.333}
    }
    code, out, _ = run(["standards", "odour", "--h2s", "80", "--odour", "15"], capsys)
    assert code == 0 and "grade II-new" in out and "0.33" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["noise", "--zone", "5", "--period", "night", "--leq", "58"], "unknown noise zone '5'"),
        (["noise", "--zone", "2", "--period", "day", "--lmax", "70"], "at night only"),
        (["noise", "--zone", "2", "--period", "day"], "--leq --lmax is required"),
        (["aqi", "--pm2_5", "-3"], "negative"),
        (["aqi", "--pm2_5", "nan"], "not a number"),
        (["aqi"], "give at least one concentration"),
        (["aqi", "--o3_8h", "100"], "not used by the HJ 633-2026"),
        (["aqi", "--pm2_5", "many"], "invalid float value"),
        (["water", "--body", "lake"], "give at least one GB 3838 parameter"),
        (["water", "--body", "lake", "--tp", "-0.1"], "not a non-negative number"),
        (["water", "--body", "lake", "--tp", "0.1", "--target", "6"], "not one of 1..5"),
        (["water", "--tp", "0.1"], "--body"),
        (["odour", "--h2s", "-1"], "not a non-negative number"),
        (["odour"], "give at least one of --h2s, --nh3, --odour"),
        (["odour", "--grade", "IV", "--h2s", "3"], "invalid choice: 'IV'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["standards", *argv], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("envnet standards"), err
    assert message in err


def test_tp_zero_still_classifies_and_explains_the_missing_tli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = run_json(["standards", "water", "--body", "lake", "--tp", "0"], capsys)
    assert data["class"] == 1 and data["tli"] is None
    assert "positive" in str(data["tli_error"])
