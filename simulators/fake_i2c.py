"""A fake I2C bus at the smbus2 level, holding a BME280's and an ADS1115's registers.

The chips behave at register level as the datasheets describe, so the edge drivers run
unchanged against them (edge/drivers/i2c_bus.py `bus = "sim:<name>"`, or a bus object handed
to a driver in tests):

- FakeBme280: chip id, factory calibration, ctrl/status/data registers. A forced-mode write
  to ctrl_meas makes it "measure" the model values: it finds the ADC counts whose
  compensation gives them, by bisection over the *integer* compensation code of the BME280
  datasheet (BST-BME280-DS002, its 32/64-bit integer formulas). The driver uses the datasheet's
  double-precision code, so a round trip checks one implementation against the other.
- FakeAds1115: config and conversion registers; a single-shot start converts the voltage on
  the selected input with the selected PGA and reports OS=1 when done.
- ElectrochemicalCell: the WE and AE voltages of an Alphasense-style sensor on an individual
  sensor board for a gas concentration from the odour model (AAN 803 Algorithm 1 inverted:
  the AE carries the temperature-dependent background, the WE the same times n plus the gas).

Faults: a missing chip (OSError 121, EREMOTEIO, as the kernel reports a NACK), a wrong chip
id, a chip that never finishes measuring or converting, and `busy_polls` status reads that
still report "busy" before a result is ready.

Calibration constants: dig_T1..dig_P9 are the worked compensation example of Bosch's BMP280
datasheet (BST-BMP280-DS001), whose temperature and pressure formulas the BME280 shares;
dig_H1..dig_H6 are of the size real BME280 chips report (no datasheet example exists).
"""

from __future__ import annotations

import errno
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from edge.drivers.bme280 import Calibration
from schemas.gas_units import Gas, to_canonical
from simulators.physical import Site, SiteOptions, wall_ms


class FakeChip(Protocol):
    def read(self, register: int, length: int) -> list[int]: ...

    def write(self, register: int, data: Sequence[int]) -> None: ...


def _nack(address: int) -> OSError:
    return OSError(errno.EREMOTEIO, f"Remote I/O error (no ACK from {address:#04x})")


class FakeI2CBus:
    """The smbus2.SMBus methods the drivers use, dispatched to chips by address."""

    def __init__(self) -> None:
        self._chips: dict[int, FakeChip] = {}
        self.closed = False

    def attach(self, address: int, chip: FakeChip) -> None:
        self._chips[address] = chip

    def detach(self, address: int) -> None:
        """Unplug a chip: transfers to its address fail as a NACK does."""
        self._chips.pop(address, None)

    def _chip(self, address: int) -> FakeChip:
        chip = self._chips.get(address)
        if chip is None:
            raise _nack(address)
        return chip

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        return self._chip(i2c_addr).read(register, 1)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._chip(i2c_addr).write(register, [value])

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        if not 1 <= length <= 32:  # the SMBus block limit smbus2 enforces too
            raise ValueError(f"I2C block length must be 1..32, got {length}")
        return self._chip(i2c_addr).read(register, length)

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        if not 1 <= len(data) <= 32:
            raise ValueError(f"I2C block length must be 1..32, got {len(data)}")
        self._chip(i2c_addr).write(register, data)

    def close(self) -> None:
        self.closed = True


# -- BME280 -------------------------------------------------------------------------------------

# The BMP280 datasheet's worked example (shared T/P formulas); plausible humidity trimming.
EXAMPLE_CALIBRATION: Final = Calibration(
    t1=27504, t2=26435, t3=-1000,
    p1=36477, p2=-10685, p3=3024, p4=2855, p5=140, p6=-7, p7=15500, p8=-14600, p9=6000,
    h1=75, h2=362, h3=0, h4=313, h5=50, h6=30,
)  # fmt: skip


def t_fine_int32(adc_t: int, c: Calibration) -> int:
    """BME280 datasheet bme280_compensate_T_int32, its t_fine."""
    var1 = (((adc_t >> 3) - (c.t1 << 1)) * c.t2) >> 11
    var2 = (((((adc_t >> 4) - c.t1) * ((adc_t >> 4) - c.t1)) >> 12) * c.t3) >> 14
    return var1 + var2


def pressure_int64(adc_p: int, t_fine: int, c: Calibration) -> int:
    """BME280 datasheet bme280_compensate_P_int64: Pa in Q24.8 (Pa * 256)."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * c.p6
    var2 = var2 + ((var1 * c.p5) << 17)
    var2 = var2 + (c.p4 << 35)
    var1 = ((var1 * var1 * c.p3) >> 8) + ((var1 * c.p2) << 12)
    var1 = (((1 << 47) + var1) * c.p1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _c_div(((p << 31) - var2) * 3125, var1)
    var1 = (c.p9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (c.p8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (c.p7 << 4)


def humidity_int32(adc_h: int, t_fine: int, c: Calibration) -> int:
    """BME280 datasheet bme280_compensate_H_int32: %RH in Q22.10 (%RH * 1024)."""
    v = t_fine - 76800
    v = ((((adc_h << 14) - (c.h4 << 20) - (c.h5 * v)) + 16384) >> 15) * (
        ((((((v * c.h6) >> 10) * (((v * c.h3) >> 11) + 32768)) >> 10) + 2097152) * c.h2 + 8192)
        >> 14
    )
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * c.h1) >> 4)
    v = min(max(v, 0), 419430400)
    return v >> 12


def _c_div(a: int, b: int) -> int:
    """C's integer division, which truncates toward zero (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _closest(f: Callable[[int], int], target: float, lo: int, hi: int) -> int:
    """The x in [lo, hi] whose f(x) is closest to `target`, for f monotonic over the range."""
    increasing = f(hi) >= f(lo)
    a, b = lo, hi
    while b - a > 1:
        mid = (a + b) // 2
        if (f(mid) < target) == increasing:
            a = mid
        else:
            b = mid
    return min((a, b), key=lambda x: abs(f(x) - target))


def encode_measurement(
    temp_c: float, pressure_hpa: float, rh_pct: float, c: Calibration
) -> tuple[int, int, int]:
    """ADC counts (adc_T, adc_P, adc_H) that compensate to the given physical values."""
    adc_t = _closest(lambda x: t_fine_int32(x, c), temp_c * 5120.0, 0, (1 << 20) - 1)
    fine = t_fine_int32(adc_t, c)
    adc_p = _closest(
        lambda x: pressure_int64(x, fine, c), pressure_hpa * 100.0 * 256.0, 1, (1 << 20) - 1
    )
    adc_h = _closest(lambda x: humidity_int32(x, fine, c), rh_pct * 1024.0, 0, (1 << 16) - 1)
    return adc_t, adc_p, adc_h


def calibration_bytes(c: Calibration) -> tuple[bytes, bytes]:
    """The 26 bytes at 0x88 and the 7 bytes at 0xE1 that hold `c` (datasheet Table 16)."""
    tp = (
        c.t1.to_bytes(2, "little")
        + b"".join(v.to_bytes(2, "little", signed=True) for v in (c.t2, c.t3))
        + c.p1.to_bytes(2, "little")
        + b"".join(
            v.to_bytes(2, "little", signed=True)
            for v in (c.p2, c.p3, c.p4, c.p5, c.p6, c.p7, c.p8, c.p9)
        )
        + bytes((0, c.h1))
    )
    e4 = (c.h4 >> 4) & 0xFF
    e5 = ((c.h5 & 0x0F) << 4) | (c.h4 & 0x0F)
    e6 = (c.h5 >> 4) & 0xFF
    h = c.h2.to_bytes(2, "little", signed=True) + bytes((c.h3, e4, e5, e6, c.h6 & 0xFF))
    return tp, h


@dataclass(frozen=True, slots=True)
class MetReading:
    temp_c: float
    pressure_hpa: float
    rh_pct: float


class FakeBme280:
    """Register file of a BME280; measurements come from `values()` at a forced-mode start."""

    def __init__(
        self,
        values: Callable[[], MetReading],
        *,
        calibration: Calibration = EXAMPLE_CALIBRATION,
        chip_id: int = 0x60,
        busy_polls: int = 0,
        stuck: bool = False,
    ) -> None:
        self._values = values
        self.calibration = calibration
        self.busy_polls = busy_polls
        self.stuck = stuck
        self._busy = 0
        self.measurements = 0
        self.regs = bytearray(256)
        self.regs[0xD0] = chip_id
        tp, h = calibration_bytes(calibration)
        self.regs[0x88 : 0x88 + 26] = tp
        self.regs[0xE1 : 0xE1 + 7] = h
        # Reset values of the data registers (datasheet register map): "no measurement yet".
        self.regs[0xF7:0xFF] = bytes((0x80, 0, 0, 0x80, 0, 0, 0x80, 0))

    def read(self, register: int, length: int) -> list[int]:
        if register == 0xF3:
            measuring = self.stuck or self._busy > 0
            self._busy = max(0, self._busy - 1)
            return [0x08 if measuring else 0x00, *self.regs[0xF4 : 0xF4 + length - 1]]
        return list(self.regs[register : register + length])

    def write(self, register: int, data: Sequence[int]) -> None:
        for offset, value in enumerate(data):
            self.regs[register + offset] = value & 0xFF
        if register <= 0xF4 < register + len(data) and self.regs[0xF4] & 0x03 in (1, 2):
            self._measure()

    def _measure(self) -> None:
        self.measurements += 1
        m = self._values()
        adc_t, adc_p, adc_h = encode_measurement(
            m.temp_c, m.pressure_hpa, m.rh_pct, self.calibration
        )
        self.regs[0xF7:0xFF] = bytes(
            (adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4,
             adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4,
             adc_h >> 8, adc_h & 0xFF)
        )  # fmt: skip
        self.regs[0xF4] &= 0xFC  # forced mode returns to sleep after one measurement
        self._busy = self.busy_polls


# -- ADS1115 and an electrochemical cell -------------------------------------------------------

_FULL_SCALE: Final = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256)


class FakeAds1115:
    """Config (0x01) and conversion (0x00) registers; `inputs(channel)` gives AINx volts."""

    def __init__(
        self, inputs: Callable[[int], float], *, busy_polls: int = 0, stuck: bool = False
    ) -> None:
        self._inputs = inputs
        self.config = 0x8583  # the power-on default
        self.conversion = 0
        self.busy_polls = busy_polls
        self.stuck = stuck
        self._busy = 0
        self.conversions = 0

    def read(self, register: int, length: int) -> list[int]:
        if register == 0x00:
            word = self.conversion & 0xFFFF
        elif register == 0x01:
            done = not self.stuck and self._busy == 0
            self._busy = max(0, self._busy - 1)
            word = (self.config & 0x7FFF) | (0x8000 if done else 0)
        else:
            word = 0
        return list(word.to_bytes(2, "big"))[:length]

    def write(self, register: int, data: Sequence[int]) -> None:
        if register != 0x01 or len(data) != 2:
            return
        self.config = (data[0] << 8) | data[1]
        if self.config & 0x8000 and self.config & 0x0100:  # OS=1 in single-shot mode
            self._convert()

    def _convert(self) -> None:
        self.conversions += 1
        mux = (self.config >> 12) & 0x7
        differential = {0: (0, 1), 1: (0, 3), 2: (1, 3), 3: (2, 3)}
        if mux >= 4:
            volts = self._inputs(mux - 4)
        else:
            p, n = differential[mux]
            volts = self._inputs(p) - self._inputs(n)
        full_scale = _FULL_SCALE[(self.config >> 9) & 0x7]
        self.conversion = min(max(round(volts / full_scale * 32768.0), -0x8000), 0x7FFF)
        self._busy = self.busy_polls


@dataclass(frozen=True, slots=True)
class ElectrochemicalCell:
    """An Alphasense-style WE/AE sensor on its sensor board, in mV (see module docstring)."""

    gas: Gas
    sensitivity_mv_per_ppb: float
    we_zero_mv: float
    ae_zero_mv: float
    n_factor: float = 1.0
    background_mv_20c: float = 12.0  # grows ~5 %/°C; the AE tracks it, the driver removes it

    def voltages(self, canonical: float, temp_c: float) -> tuple[float, float]:
        """(WE, AE) in volts for a concentration in the gas's canonical unit."""
        ppb = canonical / to_canonical(self.gas, 1.0, "ppb")
        background = self.background_mv_20c * math.exp(0.05 * (temp_c - 20.0))
        ae = self.ae_zero_mv + background
        we = self.we_zero_mv + self.n_factor * background + self.sensitivity_mv_per_ppb * ppb
        return we / 1000.0, ae / 1000.0


# -- ready-made simulated buses for `bus = "sim:<name>"` ----------------------------------------

BME280_ADDRESS: Final = 0x76
ADS1115_ADDRESS: Final = 0x48
# Example cells of the "node" bus: H2S on AIN0 (WE) / AIN1 (AE), NH3 on AIN2 / AIN3. The
# numbers are of the size Alphasense B4-series calibration sheets give, not any one sensor's;
# deploy/config/node-hardware.toml configures the drivers with the same numbers.
NODE_CELLS: Final = (
    ElectrochemicalCell("h2s", sensitivity_mv_per_ppb=1.2, we_zero_mv=310.0, ae_zero_mv=305.0),
    ElectrochemicalCell("nh3", sensitivity_mv_per_ppb=0.03, we_zero_mv=290.0, ae_zero_mv=295.0),
)
# A wastewater-plant fence line: a source to the south-east, where the summer wind is from.
NODE_SITE: Final = SiteOptions(seed=1, source_bearing_deg=135.0, source_strength=2.0)


def node_bus(
    site_options: SiteOptions = NODE_SITE, clock: Callable[[], int] = wall_ms
) -> FakeI2CBus:
    """A BME280 at 0x76 and an ADS1115 at 0x48 with NODE_CELLS, fed by one site's models."""
    site = Site(site_options)

    def met() -> MetReading:
        v = site.values(clock(), ("air_temp", "pressure", "rh"))
        return MetReading(v["air_temp"], v["pressure"], v["rh"])

    def inputs(channel: int) -> float:
        cell = NODE_CELLS[channel // 2]
        t_ms = clock()
        gas = site.values(t_ms, (cell.gas,))[cell.gas]
        temp = site.values(t_ms, ("air_temp",))["air_temp"]
        return cell.voltages(gas, temp)[channel % 2]

    bus = FakeI2CBus()
    bus.attach(BME280_ADDRESS, FakeBme280(met))
    bus.attach(ADS1115_ADDRESS, FakeAds1115(inputs))
    return bus


SIM_BUSES: Final[dict[str, Callable[[], FakeI2CBus]]] = {"node": node_bus}


def sim_bus(name: str) -> FakeI2CBus:
    """The simulated bus `bus = "sim:<name>"` names; ValueError for an unknown name."""
    factory = SIM_BUSES.get(name)
    if factory is None:
        raise ValueError(f"unknown simulated I2C bus {name!r} (known: {', '.join(SIM_BUSES)})")
    return factory()
