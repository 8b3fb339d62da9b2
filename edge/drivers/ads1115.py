"""TI ADS1115 16-bit ADC on I2C, reading a four-electrode electrochemical gas sensor.

ADC (TI ADS1115 datasheet SBAS444, register map): registers 0x00 conversion (signed 16-bit,
big-endian) and 0x01 config. A single-shot conversion writes config with OS=1, MUX = the
single-ended input, PGA = the full-scale range, MODE=1 (single-shot), DR = the data rate and
the comparator disabled (COMP_QUE=11); OS reads 1 again when the conversion is done, after
1/DR seconds. One code is FSR/32768 volts.

Sensor (Alphasense-style, e.g. the B4 series on an individual sensor board): a working
electrode (WE) and an auxiliary electrode (AE) voltage. The AE sees the same background
current as the WE but no gas, so, after AAN 803's Algorithm 1:

    WEc = (WE - WEe) - n * (AE - AEe)        (all mV)
    ppb = WEc / sensitivity                   (sensitivity in mV/ppb)

with WEe/AEe the electronic zero offsets and n the sensor's correction factor, all from the
sensor's calibration sheet. UNVERIFIED: AAN 803 gives n as a function of temperature (nT)
per sensor type; this driver takes one configured n and does not model its temperature
dependence. ppb are then converted to µg/m³ (CO: mg/m³) at 25 °C and 1013.25 hPa through
schemas/gas_units.py (GB 3095-2026 §3.14; docs/standards.md §1.3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec

from edge.drivers.base import DriverError, Sample, SensorIdentity, SensorTimeoutError
from edge.drivers.i2c_bus import BusOpener, I2CDevice, bus_flags, bus_opener
from edge.drivers.options import HardwareOptions, parse_options
from schemas.gas_units import Gas, to_canonical
from schemas.messages import Flag

REG_CONVERSION: Final = 0x00
REG_CONFIG: Final = 0x01

OS_START: Final = 0x8000  # write: start a single conversion; read: 1 = idle (done)
MODE_SINGLE: Final = 0x0100
COMP_DISABLE: Final = 0x0003

# Full-scale ranges in volts (PGA settings 000..101).
PGA_BITS: Final[dict[float, int]] = {
    6.144: 0b000, 4.096: 0b001, 2.048: 0b010, 1.024: 0b011, 0.512: 0b100, 0.256: 0b101,
}  # fmt: skip
DataRate = Literal[8, 16, 32, 64, 128, 250, 475, 860]
DR_BITS: Final[dict[int, int]] = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4, 250: 5, 475: 6, 860: 7}
# The data rate varies by up to ±10 % with the internal oscillator (datasheet electrical
# characteristics): wait 10 % longer than 1/DR, then poll OS.
CONVERSION_MARGIN: Final = 1.1
POLL_S: Final = 0.001
MAX_POLLS: Final = 20
CODE_MAX: Final = 0x7FFF
CODE_MIN: Final = -0x8000


class ConversionTimeoutError(SensorTimeoutError):
    """The ADC did not finish a conversion in time."""


class InputOverRangeError(DriverError):
    """A code at the end of the range: the input is beyond the PGA's full scale."""


def config_word(channel: int, full_scale: float, data_rate: int) -> int:
    """The config register value that starts a single-shot conversion of AIN`channel` vs GND."""
    if not 0 <= channel <= 3:
        raise ValueError(f"channel must be 0..3, got {channel}")
    mux = 0b100 + channel  # single-ended AINx vs GND
    return (
        OS_START
        | (mux << 12)
        | (PGA_BITS[full_scale] << 9)
        | MODE_SINGLE
        | (DR_BITS[data_rate] << 5)
        | COMP_DISABLE
    )


def code_to_volts(code: int, full_scale: float) -> float:
    return code * full_scale / 32768.0


@dataclass(frozen=True, slots=True)
class ElectrodeCalibration:
    """One sensor's numbers, from its calibration sheet (all mV, sensitivity mV/ppb)."""

    sensitivity_mv_per_ppb: float
    we_zero_mv: float
    ae_zero_mv: float
    n_factor: float = 1.0

    def __post_init__(self) -> None:
        numbers = (self.sensitivity_mv_per_ppb, self.we_zero_mv, self.ae_zero_mv, self.n_factor)
        if not all(math.isfinite(x) for x in numbers) or self.sensitivity_mv_per_ppb == 0:
            raise ValueError("calibration values must be finite and the sensitivity non-zero")


def corrected_we_mv(we_mv: float, ae_mv: float, cal: ElectrodeCalibration) -> float:
    """AAN 803 Algorithm 1: the WE signal with electronic zeros and background removed."""
    return (we_mv - cal.we_zero_mv) - cal.n_factor * (ae_mv - cal.ae_zero_mv)


def gas_ppb(we_mv: float, ae_mv: float, cal: ElectrodeCalibration) -> float:
    return corrected_we_mv(we_mv, ae_mv, cal) / cal.sensitivity_mv_per_ppb


class Ads1115GasOptions(HardwareOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    bus: int | str = 1
    address: Annotated[int, msgspec.Meta(ge=0x48, le=0x4B)] = 0x48  # set by the ADDR pin
    gas: Gas
    we_channel: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0
    ae_channel: Annotated[int, msgspec.Meta(ge=0, le=3)] = 1
    # One of 6.144, 4.096, 2.048, 1.024, 0.512, 0.256 V: above the electrode voltages. (The
    # inputs themselves must stay within GND - 0.3 V .. VDD + 0.3 V whatever the range.)
    full_scale_v: float = 4.096
    data_rate: DataRate = 128
    sensitivity_mv_per_ppb: float
    we_zero_mv: float
    ae_zero_mv: float
    n_factor: float = 1.0


class Ads1115GasDriver(SensorIdentity):
    """Driver "ads1115-gas": one gas (h2s, nh3, so2, no2, o3 or co) in its canonical unit."""

    NAME = "ads1115-gas"

    def __init__(
        self,
        sensor_id: str,
        opener: BusOpener,
        gas: Gas,
        calibration: ElectrodeCalibration,
        *,
        address: int = 0x48,
        we_channel: int = 0,
        ae_channel: int = 1,
        full_scale_v: float = 4.096,
        data_rate: int = 128,
        flags: tuple[Flag, ...] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if we_channel == ae_channel:
            raise ValueError("we_channel and ae_channel must differ")
        if full_scale_v not in PGA_BITS or data_rate not in DR_BITS:
            raise ValueError(f"unsupported full scale {full_scale_v} V or data rate {data_rate}")
        super().__init__(sensor_id, flags)
        self._device = I2CDevice(opener, address)
        self._gas = gas
        self._calibration = calibration
        self._channels = (we_channel, ae_channel)
        self._full_scale = full_scale_v
        self._data_rate = data_rate
        self._sleep = sleep

    def convert(self, channel: int) -> int:
        """One single-shot conversion of AIN`channel`: the signed 16-bit code."""
        word = config_word(channel, self._full_scale, self._data_rate)
        self._device.write_block(REG_CONFIG, word.to_bytes(2, "big"))
        self._sleep(CONVERSION_MARGIN / self._data_rate)
        for _ in range(MAX_POLLS):
            if int.from_bytes(self._device.read_block(REG_CONFIG, 2), "big") & OS_START:
                data = self._device.read_block(REG_CONVERSION, 2)
                return int.from_bytes(data, "big", signed=True)
            self._sleep(POLL_S)
        raise ConversionTimeoutError(f"ADS1115 {self._device.address:#04x} AIN{channel}: no result")

    def read_mv(self, channel: int) -> float:
        code = self.convert(channel)
        if code >= CODE_MAX or code <= CODE_MIN:
            raise InputOverRangeError(
                f"ADS1115 AIN{channel} at the end of the ±{self._full_scale} V range ({code})"
            )
        return 1000.0 * code_to_volts(code, self._full_scale)

    def read_ppb(self) -> float:
        we_channel, ae_channel = self._channels
        return gas_ppb(self.read_mv(we_channel), self.read_mv(ae_channel), self._calibration)

    def read(self, at_ms: int) -> list[Sample]:
        return [Sample(self._gas, to_canonical(self._gas, self.read_ppb(), "ppb"))]

    def close(self) -> None:
        self._device.close()


def from_options(sensor_id: str, options: Mapping[str, Any]) -> Ads1115GasDriver:
    opts = parse_options(options, Ads1115GasOptions, Ads1115GasDriver.NAME)
    calibration = ElectrodeCalibration(
        opts.sensitivity_mv_per_ppb, opts.we_zero_mv, opts.ae_zero_mv, opts.n_factor
    )
    return Ads1115GasDriver(
        sensor_id,
        bus_opener(opts.bus),
        opts.gas,
        calibration,
        address=opts.address,
        we_channel=opts.we_channel,
        ae_channel=opts.ae_channel,
        full_scale_v=opts.full_scale_v,
        data_rate=opts.data_rate,
        flags=bus_flags(opts.bus, opts.flags),
    )
