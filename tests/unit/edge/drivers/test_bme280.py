"""BME280: the datasheet compensation, the fake chip's inverse of it, and the driver's faults."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.drivers.base import DriverError
from edge.drivers.bme280 import (
    Bme280Driver,
    Calibration,
    MeasurementTimeoutError,
    SkippedMeasurementError,
    WrongChipError,
    compensate_humidity,
    compensate_pressure,
    compensate_temperature,
    parse_calibration,
    parse_raw,
    t_fine,
)
from edge.drivers.i2c_bus import I2CBusError
from edge.drivers.registry import UnknownDriverError, create_driver
from simulators.fake_i2c import (
    EXAMPLE_CALIBRATION,
    FakeBme280,
    FakeI2CBus,
    MetReading,
    calibration_bytes,
    encode_measurement,
    humidity_int32,
    pressure_int64,
    t_fine_int32,
)

C = EXAMPLE_CALIBRATION


def test_datasheet_worked_example() -> None:
    # The compensation example of Bosch's BMP280 datasheet (BST-BMP280-DS001): with its trimming,
    # adc_T = 519888 gives t_fine = 128422 and 25.08 °C, adc_P = 415148 gives 100653.27 Pa.
    # The BME280 uses the same temperature and pressure compensation.
    assert t_fine(519888, C) == 128422
    assert compensate_temperature(519888, C) == pytest.approx(25.08, abs=0.005)
    assert compensate_pressure(415148, 128422, C) == pytest.approx(100653.27, abs=0.05)
    # The datasheet's integer code agrees: 2508 (0.01 °C) and Pa * 256.
    assert (t_fine_int32(519888, C) * 5 + 128) >> 8 == 2508
    assert pressure_int64(415148, 128422, C) / 256 == pytest.approx(100653.27, abs=0.05)


@settings(max_examples=300, deadline=None)
@given(
    adc_t=st.integers(380_000, 620_000),
    adc_p=st.integers(250_000, 500_000),
    adc_h=st.integers(15_000, 45_000),
)
def test_double_and_integer_compensations_agree(adc_t: int, adc_p: int, adc_h: int) -> None:
    fine = t_fine(adc_t, C)
    # The integer code drops adc_T's 3 low bits (adc_T >> 3), up to T2 / 2048 t_fine units
    # (~13 here, 0.003 °C), and a little more in its other shifts.
    assert abs(fine - t_fine_int32(adc_t, C)) <= C.t2 / 2048 + 3
    assert compensate_temperature(adc_t, C) == pytest.approx(fine / 5120.0, abs=0.001)
    assert compensate_pressure(adc_p, fine, C) == pytest.approx(
        pressure_int64(adc_p, fine, C) / 256.0, abs=0.5
    )
    assert compensate_humidity(adc_h, fine, C) == pytest.approx(
        humidity_int32(adc_h, fine, C) / 1024.0, abs=0.02
    )


@settings(max_examples=200, deadline=None)
@given(
    values=st.tuples(
        st.integers(0, 0xFFFF), st.integers(-0x8000, 0x7FFF), st.integers(-0x8000, 0x7FFF),
        st.integers(0, 0xFFFF), *[st.integers(-0x8000, 0x7FFF)] * 8,
        st.integers(0, 255), st.integers(-0x8000, 0x7FFF), st.integers(0, 255),
        st.integers(-2048, 2047), st.integers(-2048, 2047), st.integers(-128, 127),
    )
)  # fmt: skip
def test_calibration_layout_round_trips(values: tuple[int, ...]) -> None:
    calibration = Calibration(*values)
    assert parse_calibration(*calibration_bytes(calibration)) == calibration


@settings(max_examples=100, deadline=None)
@given(
    temp=st.floats(-30.0, 60.0),
    pressure=st.floats(600.0, 1090.0),
    rh=st.floats(1.0, 99.0),
)
def test_fake_chip_encodes_what_the_driver_decodes(temp: float, pressure: float, rh: float) -> None:
    reading = MetReading(temp, pressure, rh)
    bus = FakeI2CBus()
    bus.attach(0x76, FakeBme280(lambda: reading))
    driver = Bme280Driver("met", lambda: bus, sleep=lambda s: None)
    m = driver.measure()
    assert m.temperature_c == pytest.approx(temp, abs=0.01)
    assert m.pressure_hpa == pytest.approx(pressure, abs=0.02)
    assert m.humidity_pct == pytest.approx(rh, abs=0.05)


def _driver(chip: FakeBme280, address: int = 0x76) -> tuple[Bme280Driver, FakeI2CBus]:
    bus = FakeI2CBus()
    bus.attach(address, chip)
    sleeps: list[float] = []
    return Bme280Driver("met", lambda: bus, address, sleep=sleeps.append), bus


def test_driver_samples_and_forced_mode() -> None:
    chip = FakeBme280(lambda: MetReading(18.5, 1012.3, 66.0), busy_polls=3)
    driver, _ = _driver(chip)
    samples = driver.read(0)
    assert [s.quantity for s in samples] == ["air_temp", "pressure", "rh"]
    assert [round(s.value, 1) for s in samples] == [18.5, 1012.3, 66.0]
    assert chip.measurements == 1
    assert chip.regs[0xF4] & 0x03 == 0  # back to sleep mode after the forced measurement
    driver.read(0)
    assert chip.measurements == 2


def test_wrong_chip_is_refused_with_a_clear_error() -> None:
    driver, _ = _driver(FakeBme280(lambda: MetReading(20, 1000, 50), chip_id=0x58))
    with pytest.raises(WrongChipError, match="BMP280"):
        driver.read(0)


def test_stuck_measurement_times_out() -> None:
    driver, _ = _driver(FakeBme280(lambda: MetReading(20, 1000, 50), stuck=True))
    with pytest.raises(MeasurementTimeoutError):
        driver.read(0)


def test_missing_chip_is_a_bus_error_and_the_driver_recovers() -> None:
    chip = FakeBme280(lambda: MetReading(20, 1000, 50))
    driver, bus = _driver(chip)
    bus.detach(0x76)
    with pytest.raises(I2CBusError, match="0x76"):
        driver.read(0)
    bus.attach(0x76, chip)
    assert len(driver.read(0)) == 3


def test_skipped_measurement_reset_values_are_refused() -> None:
    with pytest.raises(SkippedMeasurementError):
        parse_raw(bytes((0x80, 0, 0, 0x80, 0, 0, 0x80, 0)))


@settings(max_examples=300, deadline=None)
@given(tp=st.binary(max_size=30), h=st.binary(max_size=10), raw=st.binary(max_size=10))
def test_parsers_raise_only_driver_errors(tp: bytes, h: bytes, raw: bytes) -> None:
    for call in (lambda: parse_calibration(tp, h), lambda: parse_raw(raw)):
        with contextlib.suppress(DriverError):
            call()


def test_encoding_finds_counts_that_compensate_to_the_values() -> None:
    adc_t, adc_p, adc_h = encode_measurement(25.08, 1006.5327, 40.0, C)
    fine = t_fine_int32(adc_t, C)
    assert abs(fine - 25.08 * 5120) <= 3
    assert abs(pressure_int64(adc_p, fine, C) / 256 - 100653.27) < 2.0
    assert abs(humidity_int32(adc_h, fine, C) / 1024 - 40.0) < 0.01


def test_registry_and_sim_bus() -> None:
    driver = create_driver("bme280", "met", {"bus": "sim:node"})
    assert driver.flags == ("simulated",)
    values = {s.quantity: s.value for s in driver.read(0)}
    assert -20 < values["air_temp"] < 45 and 950 < values["pressure"] < 1050
    with pytest.raises(UnknownDriverError, match="sim:<name>"):
        create_driver("bme280", "met", {"bus": "i2c-1"})
    with pytest.raises(UnknownDriverError, match="unknown simulated I2C bus"):
        create_driver("bme280", "met", {"bus": "sim:elsewhere"})
    with pytest.raises(UnknownDriverError, match="address"):
        create_driver("bme280", "met", {"bus": 1, "address": 0x90})
