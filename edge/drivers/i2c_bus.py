"""The I2C shell the BME280 and ADS1115 drivers talk through (smbus2 underneath).

`bus` in node.toml is a Linux I2C bus number (1 on a Raspberry Pi: /dev/i2c-1), or
"sim:<name>": a simulated bus *inside the edge process*, which the package that simulates it
registers as an entry point (group `envnet.i2c_buses`, name `sim`; edge.drivers.plugins). I2C
cannot be carried over a pseudo-terminal the way a UART can, so `envnet sim devices` cannot
serve it to another process; a node configured with a sim bus runs the same driver code
against simulated chip registers, and its readings are flagged "simulated". The provider is
imported only when a sim bus is configured, never on a node with real buses.

The bus is opened lazily and reopened after a failure, so a chip missing at boot is a
counted sensor error, not a crash.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from smbus2 import SMBus

from edge.drivers import plugins
from edge.drivers.base import DriverError
from schemas.messages import Flag

SIM_PREFIX: Final = "sim:"


class I2CBusError(DriverError):
    """The bus could not be opened, or a transfer failed (errno 121 EREMOTEIO: no device
    acknowledged the address)."""


class I2CBus(Protocol):
    """The smbus2.SMBus methods the drivers use; a simulated bus implements them too."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None: ...

    def close(self) -> None: ...


BusOpener = Callable[[], I2CBus]


def is_sim_bus(spec: int | str) -> bool:
    return isinstance(spec, str) and spec.startswith(SIM_PREFIX)


def bus_flags(spec: int | str, flags: Sequence[Flag]) -> tuple[Flag, ...]:
    """The configured flags of a sensor on bus `spec`, plus "simulated" on a sim bus: its
    readings come from models, whatever the operator wrote."""
    if is_sim_bus(spec) and "simulated" not in flags:
        return (*flags, "simulated")
    return tuple(flags)


def check_bus_spec(spec: int | str) -> None:
    """Raise ValueError for a `bus` option that is neither a bus number nor "sim:<name>"."""
    if isinstance(spec, int):
        if spec < 0:
            raise ValueError(f"bus must be a bus number >= 0 or 'sim:<name>', got {spec}")
        return
    if not is_sim_bus(spec) or not spec.removeprefix(SIM_PREFIX):
        raise ValueError(f"bus must be a bus number or 'sim:<name>', got {spec!r}")


def bus_opener(spec: int | str) -> BusOpener:
    """A function that opens the bus `spec` names (checked here, opened later)."""
    check_bus_spec(spec)
    if isinstance(spec, str):
        # The simulated bus is made now, so an unknown name is a configuration error at
        # start-up, not a sensor error later.
        bus = _sim_bus(spec.removeprefix(SIM_PREFIX))
        return lambda: bus

    def open_real() -> I2CBus:
        try:
            return SMBus(spec)
        except OSError as exc:
            raise I2CBusError(f"/dev/i2c-{spec}: cannot open: {exc}") from None

    return open_real


def _sim_bus(name: str) -> I2CBus:
    provider = plugins.find(plugins.I2C_BUS_GROUP, SIM_PREFIX.rstrip(":"))
    if provider is None:
        raise ValueError(
            "no simulated I2C bus is installed (entry point group "
            f"{plugins.I2C_BUS_GROUP!r}, name 'sim'): install envnet with its simulators"
        )
    make: Callable[[str], I2CBus] = provider.load()
    return make(name)


class I2CDevice:
    """One chip at one address on a lazily opened bus; OSError becomes I2CBusError."""

    def __init__(self, opener: BusOpener, address: int) -> None:
        if not 0x03 <= address <= 0x77:
            raise ValueError(f"I2C address must be 0x03..0x77, got {address:#x}")
        self._opener = opener
        self._bus: I2CBus | None = None
        self.address = address

    def _open(self) -> I2CBus:
        if self._bus is None:
            self._bus = self._opener()
        return self._bus

    def read_byte(self, register: int) -> int:
        try:
            return self._open().read_byte_data(self.address, register)
        except OSError as exc:
            raise self._failed(exc) from None

    def write_byte(self, register: int, value: int) -> None:
        try:
            self._open().write_byte_data(self.address, register, value)
        except OSError as exc:
            raise self._failed(exc) from None

    def read_block(self, register: int, length: int) -> bytes:
        try:
            return bytes(self._open().read_i2c_block_data(self.address, register, length))
        except OSError as exc:
            raise self._failed(exc) from None

    def write_block(self, register: int, data: bytes) -> None:
        try:
            self._open().write_i2c_block_data(self.address, register, list(data))
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> I2CBusError:
        self.close()
        return I2CBusError(f"I2C device {self.address:#04x}: {exc}")

    def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            # Closing a bus that already failed: nothing is left to release.
            with contextlib.suppress(OSError):
                bus.close()
