"""Bosch BME280 temperature, pressure and humidity sensor on I2C (smbus2).

Per read, in forced mode (one measurement, then sleep: no self-heating between samples):
write ctrl_hum (0xF2) and ctrl_meas (0xF4) with oversampling x1, wait the datasheet's maximum
measurement time, poll status (0xF3) until the measuring bit clears, read 0xF7..0xFE and
compensate with the chip's factory calibration (0x88..0xA1, 0xE1..0xE7).

The compensation is the double-precision code of the Bosch BME280 datasheet
(BST-BME280-DS002, its appendix of floating-point formulas), including its truncation of
t_fine to an integer. The calibration layout, the register map and chip id 0x60 are from the
same datasheet (section numbers differ between its revisions, so none are given). A BMP280
(id 0x58) has no humidity and is refused.

Air temperature from a BME280 on a board is only meaningful in a ventilated radiation shield:
the Pi and the sun heat it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from edge.drivers.base import (
    DriverError,
    FrameError,
    Sample,
    SensorIdentity,
    SensorTimeoutError,
)
from edge.drivers.i2c_bus import BusOpener, I2CDevice, bus_flags, bus_opener
from edge.drivers.options import HardwareOptions, parse_options
from schemas.messages import Flag

CHIP_ID: Final = 0x60
BMP280_CHIP_ID: Final = 0x58
REG_CHIP_ID: Final = 0xD0
REG_CALIB_TP: Final = 0x88  # 26 bytes: T1..T3, P1..P9, a reserved byte, H1
REG_CALIB_H: Final = 0xE1  # 7 bytes: H2..H6
REG_CTRL_HUM: Final = 0xF2
REG_STATUS: Final = 0xF3
REG_CTRL_MEAS: Final = 0xF4
REG_DATA: Final = 0xF7  # 8 bytes: press[3], temp[3], hum[2]

OSRS_X1: Final = 0b001
MODE_FORCED: Final = 0b01
CTRL_MEAS_FORCED_X1: Final = (OSRS_X1 << 5) | (OSRS_X1 << 2) | MODE_FORCED
STATUS_MEASURING: Final = 0x08
# The datasheet's measurement time: t_measure,max = 1.25 + 2.3·osrs_t + (2.3·osrs_p + 0.575)
# + (2.3·osrs_h + 0.575) ms = 9.3 ms at x1 oversampling.
MEASURE_MAX_S: Final = 0.0093
POLL_S: Final = 0.002
MAX_POLLS: Final = 25
# A skipped measurement leaves the reset value in the data registers (datasheet register map).
SKIPPED_20BIT: Final = 0x80000
SKIPPED_16BIT: Final = 0x8000


class WrongChipError(DriverError):
    """The chip at the address is not a BME280 (e.g. a BMP280, which has no humidity)."""


class MeasurementTimeoutError(SensorTimeoutError):
    """The chip kept reporting 'measuring' past the datasheet's measurement time."""


class SkippedMeasurementError(FrameError):
    """The data registers hold their reset value: no measurement was made."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """The factory trimming parameters dig_T1.. dig_H6 (datasheet Table 16)."""

    t1: int
    t2: int
    t3: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    p6: int
    p7: int
    p8: int
    p9: int
    h1: int
    h2: int
    h3: int
    h4: int
    h5: int
    h6: int


@dataclass(frozen=True, slots=True)
class RawMeasurement:
    adc_p: int
    adc_t: int
    adc_h: int


@dataclass(frozen=True, slots=True)
class Measurement:
    temperature_c: float
    pressure_hpa: float
    humidity_pct: float


def _u16(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 2], "little")


def _s16(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 2], "little", signed=True)


def _s8(value: int) -> int:
    return value - 256 if value > 127 else value


def parse_calibration(tp: bytes, h: bytes) -> Calibration:
    """From the 26 bytes at 0x88 and the 7 bytes at 0xE1."""
    if len(tp) != 26 or len(h) != 7:
        raise FrameError(f"calibration blocks of {len(tp)} and {len(h)} bytes, want 26 and 7")
    p = [_u16(tp, 6)] + [_s16(tp, i) for i in range(8, 24, 2)]
    return Calibration(
        t1=_u16(tp, 0),
        t2=_s16(tp, 2),
        t3=_s16(tp, 4),
        p1=p[0], p2=p[1], p3=p[2], p4=p[3], p5=p[4], p6=p[5], p7=p[6], p8=p[7], p9=p[8],
        h1=tp[25],
        h2=_s16(h, 0),
        h3=h[2],
        # dig_H4 and dig_H5 are signed 12-bit values sharing the nibbles of 0xE5.
        h4=(_s8(h[3]) << 4) | (h[4] & 0x0F),
        h5=(_s8(h[5]) << 4) | (h[4] >> 4),
        h6=_s8(h[6]),
    )  # fmt: skip


def parse_raw(data: bytes) -> RawMeasurement:
    """From the 8 bytes at 0xF7: 20-bit pressure and temperature, 16-bit humidity."""
    if len(data) != 8:
        raise FrameError(f"data block of {len(data)} bytes, want 8")
    raw = RawMeasurement(
        adc_p=(data[0] << 12) | (data[1] << 4) | (data[2] >> 4),
        adc_t=(data[3] << 12) | (data[4] << 4) | (data[5] >> 4),
        adc_h=(data[6] << 8) | data[7],
    )
    if SKIPPED_20BIT in (raw.adc_p, raw.adc_t) or raw.adc_h == SKIPPED_16BIT:
        raise SkippedMeasurementError(f"data registers hold reset values: {data.hex(' ')}")
    return raw


def _temperature_sum(adc_t: int, c: Calibration) -> float:
    """var1 + var2 of the datasheet's double-precision temperature compensation."""
    var1 = (adc_t / 16384.0 - c.t1 / 1024.0) * c.t2
    var2 = (adc_t / 131072.0 - c.t1 / 8192.0) ** 2 * c.t3
    return var1 + var2


def t_fine(adc_t: int, c: Calibration) -> int:
    """The fine temperature the pressure and humidity compensations use; the datasheet
    truncates it: t_fine = (BME280_S32_t)(var1 + var2)."""
    return int(_temperature_sum(adc_t, c))


def compensate_temperature(adc_t: int, c: Calibration) -> float:
    """°C, from the untruncated sum as in the datasheet."""
    return _temperature_sum(adc_t, c) / 5120.0


def compensate_pressure(adc_p: int, fine: int, c: Calibration) -> float:
    """Pa (the datasheet's double-precision code)."""
    var1 = fine / 2.0 - 64000.0
    var2 = var1 * var1 * c.p6 / 32768.0
    var2 = var2 + var1 * c.p5 * 2.0
    var2 = var2 / 4.0 + c.p4 * 65536.0
    var1 = (c.p3 * var1 * var1 / 524288.0 + c.p2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * c.p1
    if var1 == 0.0:
        return 0.0  # the datasheet's guard against a division by zero
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = c.p9 * p * p / 2147483648.0
    var2 = p * c.p8 / 32768.0
    return p + (var1 + var2 + c.p7) / 16.0


def compensate_humidity(adc_h: int, fine: int, c: Calibration) -> float:
    """% relative humidity, clamped to 0..100 (the datasheet's double-precision code)."""
    h = fine - 76800.0
    h = (adc_h - (c.h4 * 64.0 + c.h5 / 16384.0 * h)) * (
        c.h2 / 65536.0 * (1.0 + c.h6 / 67108864.0 * h * (1.0 + c.h3 / 67108864.0 * h))
    )
    h = h * (1.0 - c.h1 * h / 524288.0)
    return min(max(h, 0.0), 100.0)


def compensate(raw: RawMeasurement, c: Calibration) -> Measurement:
    fine = t_fine(raw.adc_t, c)
    return Measurement(
        temperature_c=compensate_temperature(raw.adc_t, c),
        pressure_hpa=compensate_pressure(raw.adc_p, fine, c) / 100.0,
        humidity_pct=compensate_humidity(raw.adc_h, fine, c),
    )


class Bme280Options(HardwareOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    bus: int | str = 1  # /dev/i2c-1 on a Raspberry Pi, or "sim:<name>"
    address: int = 0x76  # 0x76 with SDO to GND, 0x77 with SDO to VDDIO


class Bme280Driver(SensorIdentity):
    """Driver "bme280": air_temp (°C), pressure (hPa, station level), rh (%)."""

    NAME = "bme280"

    def __init__(
        self,
        sensor_id: str,
        opener: BusOpener,
        address: int = 0x76,
        *,
        flags: tuple[Flag, ...] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(sensor_id, flags)
        self._device = I2CDevice(opener, address)
        self._sleep = sleep
        self._calibration: Calibration | None = None

    def _calibrated(self) -> Calibration:
        """Check the chip and read its calibration, once per (re)connection."""
        if self._calibration is None:
            chip = self._device.read_byte(REG_CHIP_ID)
            if chip != CHIP_ID:
                what = "a BMP280 (no humidity)" if chip == BMP280_CHIP_ID else "not a BME280"
                raise WrongChipError(f"chip id {chip:#04x} at {self._device.address:#04x}: {what}")
            tp = self._device.read_block(REG_CALIB_TP, 26)
            h = self._device.read_block(REG_CALIB_H, 7)
            self._calibration = parse_calibration(tp, h)
        return self._calibration

    def measure(self) -> Measurement:
        try:
            calibration = self._calibrated()
            self._device.write_byte(REG_CTRL_HUM, OSRS_X1)  # takes effect with ctrl_meas
            self._device.write_byte(REG_CTRL_MEAS, CTRL_MEAS_FORCED_X1)
            self._sleep(MEASURE_MAX_S)
            self._wait_ready()
            raw = parse_raw(self._device.read_block(REG_DATA, 8))
        except DriverError:
            self._calibration = None  # re-check the chip after any failure: it may be new
            raise
        return compensate(raw, calibration)

    def _wait_ready(self) -> None:
        for _ in range(MAX_POLLS):
            if not self._device.read_byte(REG_STATUS) & STATUS_MEASURING:
                return
            self._sleep(POLL_S)
        raise MeasurementTimeoutError(
            f"BME280 at {self._device.address:#04x} still measuring after "
            f"{MEASURE_MAX_S + MAX_POLLS * POLL_S:.3f} s"
        )

    def read(self, at_ms: int) -> list[Sample]:
        m = self.measure()
        return [
            Sample("air_temp", m.temperature_c),
            Sample("pressure", m.pressure_hpa),
            Sample("rh", m.humidity_pct),
        ]

    def close(self) -> None:
        self._device.close()


def from_options(sensor_id: str, options: Mapping[str, Any]) -> Bme280Driver:
    opts = parse_options(options, Bme280Options, Bme280Driver.NAME)
    flags = bus_flags(opts.bus, opts.flags)
    return Bme280Driver(sensor_id, bus_opener(opts.bus), opts.address, flags=flags)
