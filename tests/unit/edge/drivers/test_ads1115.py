"""ADS1115 electrochemical gas driver: config words, conversion, the WE/AE algorithm, faults."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.drivers.ads1115 import (
    Ads1115GasDriver,
    ConversionTimeoutError,
    ElectrodeCalibration,
    InputOverRangeError,
    code_to_volts,
    config_word,
    gas_ppb,
)
from edge.drivers.i2c_bus import I2CBusError
from edge.drivers.registry import UnknownDriverError, create_driver
from schemas.gas_units import Gas, to_canonical
from simulators.fake_i2c import NODE_CELLS, ElectrochemicalCell, FakeAds1115, FakeI2CBus

H2S = ElectrodeCalibration(sensitivity_mv_per_ppb=1.2, we_zero_mv=310.0, ae_zero_mv=305.0)


def test_config_words_match_the_datasheet_layout() -> None:
    # OS=1, MUX=100 (AIN0), PGA=001 (±4.096 V), MODE=1, DR=100 (128 SPS), COMP_QUE=11.
    assert config_word(0, 4.096, 128) == 0xC383
    # AIN1, ±2.048 V (the power-on PGA), 128 SPS.
    assert config_word(1, 2.048, 128) == 0xD583
    # AIN3, ±0.256 V, 860 SPS.
    assert config_word(3, 0.256, 860) == 0xFBE3
    with pytest.raises(ValueError, match="channel"):
        config_word(4, 4.096, 128)


def test_code_to_volts() -> None:
    assert code_to_volts(32767, 4.096) == pytest.approx(4.096 * 32767 / 32768)
    assert code_to_volts(-32768, 2.048) == -2.048
    assert code_to_volts(1, 4.096) == pytest.approx(125e-6)  # one LSB is 125 µV at ±4.096 V


def test_aan803_algorithm_1() -> None:
    # WEc = (400 - 310) - 1.0 * (320 - 305) = 75 mV; 75 / 1.2 = 62.5 ppb.
    assert gas_ppb(400.0, 320.0, H2S) == pytest.approx(62.5)
    with_n = ElectrodeCalibration(1.2, 310.0, 305.0, n_factor=2.0)
    assert gas_ppb(400.0, 320.0, with_n) == pytest.approx((90.0 - 30.0) / 1.2)
    # NO2 and O3 cells have negative sensitivities; a drop of the WE is gas.
    no2 = ElectrodeCalibration(-0.27, 227.0, 225.0)
    assert gas_ppb(200.0, 225.0, no2) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="sensitivity"):
        ElectrodeCalibration(0.0, 1.0, 1.0)


def _bus(
    cell: ElectrochemicalCell,
    canonical: float,
    temp_c: float = 25.0,
    *,
    busy_polls: int = 0,
    stuck: bool = False,
) -> tuple[FakeI2CBus, FakeAds1115]:
    def inputs(channel: int) -> float:
        return cell.voltages(canonical, temp_c)[channel % 2]

    adc = FakeAds1115(inputs, busy_polls=busy_polls, stuck=stuck)
    bus = FakeI2CBus()
    bus.attach(0x48, adc)
    return bus, adc


def _driver(
    bus: FakeI2CBus,
    cell: ElectrochemicalCell,
    *,
    we_channel: int = 0,
    ae_channel: int = 1,
    full_scale_v: float = 4.096,
    data_rate: int = 128,
) -> Ads1115GasDriver:
    calibration = ElectrodeCalibration(
        cell.sensitivity_mv_per_ppb, cell.we_zero_mv, cell.ae_zero_mv, cell.n_factor
    )
    return Ads1115GasDriver(
        "gas",
        lambda: bus,
        cell.gas,
        calibration,
        we_channel=we_channel,
        ae_channel=ae_channel,
        full_scale_v=full_scale_v,
        data_rate=data_rate,
        sleep=lambda s: None,
    )


@settings(max_examples=150, deadline=None)
@given(
    cell=st.sampled_from(NODE_CELLS),
    ppb=st.floats(0.0, 2000.0),
    temp_c=st.floats(-10.0, 40.0),
)
def test_reads_back_the_cells_concentration_whatever_the_background(
    cell: ElectrochemicalCell, ppb: float, temp_c: float
) -> None:
    canonical = to_canonical(cell.gas, ppb, "ppb")
    bus, adc = _bus(cell, canonical, temp_c)
    [sample] = _driver(bus, cell).read(0)
    assert sample.quantity == cell.gas
    # Two conversions, each within half an LSB (62.5 µV at ±4.096 V), through the sensitivity
    # and n, then to µg/m³ at 25 °C.
    lsb_ppb = (0.0625 * (1 + cell.n_factor)) / cell.sensitivity_mv_per_ppb
    assert sample.value == pytest.approx(
        canonical, abs=to_canonical(cell.gas, lsb_ppb, "ppb") + 1e-9
    )
    assert adc.conversions == 2


def test_uses_the_configured_channels_gain_and_rate() -> None:
    cell = NODE_CELLS[0]
    bus, adc = _bus(cell, 50.0)
    driver = _driver(bus, cell, we_channel=2, ae_channel=3, full_scale_v=1.024, data_rate=860)
    driver.read(0)
    # The last conversion was the AE on AIN3 (MUX 111) at PGA 011 and DR 111.
    assert adc.config == config_word(3, 1.024, 860)
    with pytest.raises(ValueError, match="differ"):
        _driver(bus, cell, we_channel=1, ae_channel=1)
    with pytest.raises(ValueError, match="full scale"):
        _driver(bus, cell, full_scale_v=3.3)


def test_over_range_input_is_its_own_error() -> None:
    cell = NODE_CELLS[0]  # ~310 mV electrodes, beyond ±0.256 V
    bus, _ = _bus(cell, 10.0)
    with pytest.raises(InputOverRangeError, match=r"0\.256"):
        _driver(bus, cell, full_scale_v=0.256).read(0)


def test_conversion_that_never_finishes_times_out_and_busy_is_waited_for() -> None:
    cell = NODE_CELLS[1]
    bus, _ = _bus(cell, 100.0, stuck=True)
    with pytest.raises(ConversionTimeoutError):
        _driver(bus, cell).read(0)
    bus, _ = _bus(cell, 100.0, busy_polls=5)
    [sample] = _driver(bus, cell).read(0)
    assert sample.value == pytest.approx(100.0, abs=5.0)


def test_missing_adc_is_a_bus_error_and_the_driver_recovers() -> None:
    cell = NODE_CELLS[0]
    bus, adc = _bus(cell, 30.0)
    driver = _driver(bus, cell)
    bus.detach(0x48)
    with pytest.raises(I2CBusError):
        driver.read(0)
    bus.attach(0x48, adc)
    assert driver.read(0)[0].value == pytest.approx(30.0, abs=0.5)


@pytest.mark.parametrize("gas", ["h2s", "nh3", "so2", "no2", "o3", "co"])
def test_registry_converts_to_the_canonical_unit(gas: Gas) -> None:
    options = {
        "bus": "sim:node",
        "gas": gas,
        "sensitivity_mv_per_ppb": 1.2,
        "we_zero_mv": 310.0,
        "ae_zero_mv": 305.0,
    }
    driver = create_driver("ads1115-gas", "g", options)
    assert driver.flags == ("simulated",)
    [sample] = driver.read(0)
    assert sample.quantity == gas


def test_registry_option_errors() -> None:
    base = {"gas": "h2s", "sensitivity_mv_per_ppb": 1.2, "we_zero_mv": 1.0, "ae_zero_mv": 1.0}
    with pytest.raises(UnknownDriverError, match="gas"):
        create_driver("ads1115-gas", "g", {**base, "gas": "ch4"})
    with pytest.raises(UnknownDriverError, match="address"):
        create_driver("ads1115-gas", "g", {**base, "address": 0x47})
    with pytest.raises(UnknownDriverError, match="sensitivity"):
        create_driver("ads1115-gas", "g", {**base, "sensitivity_mv_per_ppb": 0.0})
    with pytest.raises(UnknownDriverError, match="sensitivity_mv_per_ppb"):
        create_driver("ads1115-gas", "g", {"gas": "h2s"})
