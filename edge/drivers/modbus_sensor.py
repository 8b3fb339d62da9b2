"""Driver "modbus": any RS-485 Modbus RTU device described by a register-map profile.

Options (node.toml):
- port: the RS-485 adapter, e.g. "/dev/ttyUSB0" (USB adapters switch the line direction
  themselves; a HAT on the Pi's UART must do it in hardware too, this driver does not toggle
  RTS).
- slave: the device's address, 1..247.
- profile: a shipped profile name (`typical-noise`, `typical-h2s-nh3`, `typical-odour`,
  `typical-water-sonde`), or profile_path: a site's own profile file. Exactly one.
- baudrate, parity, stopbits: override the profile's line settings.
- timeout_s: how long to wait for each answer (default 0.5 s).
- flags: see edge.drivers.options.

Several devices may share one line, each a sensor with its own slave address, as long as
their reads do not overlap in time; the sampler reads sensors one after the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import msgspec

from edge.drivers.base import Sample, SensorIdentity
from edge.drivers.modbus_rtu import ModbusMaster
from edge.drivers.options import HardwareOptions, parse_options
from edge.drivers.register_map import (
    Profile,
    ProfileError,
    block_values,
    load_named_or_file,
    read_plan,
)
from edge.drivers.serial_port import Opener, Parity, Port, SerialSettings, open_serial
from schemas.messages import Flag


class ModbusOptions(HardwareOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    port: str
    slave: Annotated[int, msgspec.Meta(ge=1, le=247)] = 1
    profile: str | None = None
    profile_path: str | None = None
    baudrate: int | None = None
    parity: Parity | None = None
    stopbits: Literal[1, 2] | None = None
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.5


class ModbusDriver(SensorIdentity):
    """Reads every register of its profile each sample, in as few requests as possible."""

    NAME = "modbus"

    def __init__(
        self,
        sensor_id: str,
        settings: SerialSettings,
        slave: int,
        profile: Profile,
        *,
        flags: tuple[Flag, ...] = (),
        opener: Opener = open_serial,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(sensor_id, flags)
        self._slave = slave
        self._profile = profile
        self._plan = read_plan(profile.registers)
        self._master = ModbusMaster(Port(settings, opener, monotonic))

    @property
    def profile(self) -> Profile:
        return self._profile

    def read(self, at_ms: int) -> list[Sample]:
        samples: list[Sample] = []
        for block in self._plan:
            words = self._master.read_registers(
                self._slave, block.register_type, block.address, block.count
            )
            samples.extend(Sample(q, v) for q, v in block_values(block, words))
        return samples

    def close(self) -> None:
        self._master.close()


def profile_from_options(opts: ModbusOptions) -> Profile:
    if (opts.profile is None) == (opts.profile_path is None):
        raise ValueError("modbus options: give exactly one of profile and profile_path")
    try:
        return load_named_or_file(opts.profile, opts.profile_path)
    except ProfileError as exc:
        raise ValueError(f"modbus options: {exc}") from None


def from_options(sensor_id: str, options: Mapping[str, Any]) -> ModbusDriver:
    opts = parse_options(options, ModbusOptions, ModbusDriver.NAME)
    profile = profile_from_options(opts)
    settings = SerialSettings(
        opts.port,
        opts.baudrate or profile.baudrate,
        parity=opts.parity or profile.parity,
        stopbits=opts.stopbits or profile.stopbits,
        timeout_s=opts.timeout_s,
        exclusive=False,  # several slaves share one line (see SerialSettings.exclusive)
    )
    return ModbusDriver(sensor_id, settings, opts.slave, profile, flags=tuple(opts.flags))
