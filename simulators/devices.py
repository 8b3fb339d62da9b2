"""A set of byte-level device simulators described by a devices.toml, started and stopped as one.

Each UART device (PMS5003, SDS011) and each Modbus slave gets a pty of its own; its path is
what an edge node's `port` option names, either directly or through a stable symlink in a
link directory. I2C devices are not served here: I2C cannot cross a pty, so a node uses
`bus = "sim:<name>"` instead (edge/drivers/i2c_bus.py).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from edge.drivers.register_map import Profile, ProfileError, load_named_or_file
from schemas.messages import ID_PATTERN
from schemas.runtime.configfile import ConfigError, convert, read_toml
from simulators.modbus_slave import ModbusLineSimulator, SimulatedSlave
from simulators.physical import Site, SiteOptions
from simulators.uart_pty import UartEmulator, UartFault, UartKind

Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Name = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
ModbusFaultName = Literal["timeout", "bad_crc", "wrong_slave", "wrong_function", "exception"]


class UartDeviceSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: Name
    kind: UartKind
    period_s: Annotated[float, msgspec.Meta(ge=0.05, le=60.0)] = 1.0
    site: SiteOptions = SiteOptions()
    faults: dict[UartFault, Share] = {}


class ModbusDeviceSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: Name
    profile: str | None = None
    profile_path: str | None = None
    slave: Annotated[int, msgspec.Meta(ge=1, le=247)] = 1
    # Devices naming the same line share one pty, as slaves share an RS-485 line; by default
    # each device has a line of its own.
    line: Name | None = None
    site: SiteOptions = SiteOptions()
    faults: dict[ModbusFaultName, Share] = {}


class DevicesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    uart: list[UartDeviceSpec] = []
    modbus: list[ModbusDeviceSpec] = []


def load_devices_config(path: Path) -> DevicesConfig:
    config = convert(read_toml(path), DevicesConfig, str(path))
    names = [d.name for d in config.uart] + [d.name for d in config.modbus]
    if not names:
        raise ConfigError(f"{path}: no devices ([[uart]] or [[modbus]])")
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: device names must be unique, got {names}")
    for index, spec in enumerate(config.modbus):
        if (spec.profile is None) == (spec.profile_path is None):
            raise ConfigError(f"{path}: modbus[{index}]: give exactly one of profile, profile_path")
        if sum(spec.faults.values()) > 1.0:
            raise ConfigError(f"{path}: modbus[{index}].faults: rates sum to more than 1")
    for index, uart in enumerate(config.uart):
        if sum(uart.faults.values()) > 1.0:
            raise ConfigError(f"{path}: uart[{index}].faults: rates sum to more than 1")
    return config


def _profile(spec: ModbusDeviceSpec) -> Profile:
    try:
        return load_named_or_file(spec.profile, spec.profile_path)
    except ProfileError as exc:
        raise ConfigError(f"device {spec.name}: {exc}") from None


class DeviceSet:
    """Every device of a DevicesConfig; `start()` returns {name: device path}."""

    def __init__(self, config: DevicesConfig) -> None:
        self._links: list[Path] = []
        self._uarts = {
            spec.name: UartEmulator(
                spec.kind, Site(spec.site), period_s=spec.period_s, fault_rates=spec.faults
            )
            for spec in config.uart
        }
        self._lines: dict[str, ModbusLineSimulator] = {}
        self._line_of: dict[str, str] = {}
        grouped: dict[str, list[ModbusDeviceSpec]] = {}
        for spec in config.modbus:
            grouped.setdefault(spec.line or spec.name, []).append(spec)
        try:
            for line, specs in grouped.items():
                slaves = [
                    SimulatedSlave(
                        _profile(s),
                        Site(s.site),
                        slave=s.slave,
                        fault_rates={str(k): v for k, v in s.faults.items()},
                    )
                    for s in specs
                ]
                try:
                    self._lines[line] = ModbusLineSimulator(
                        slaves, baudrate=slaves[0].profile.baudrate
                    )
                except ValueError as exc:
                    raise ConfigError(f"modbus line {line}: {exc}") from None
                self._line_of.update((s.name, line) for s in specs)
        except ConfigError:
            self.close()
            raise

    def paths(self) -> dict[str, str]:
        paths = {name: uart.path for name, uart in self._uarts.items()}
        paths.update({name: self._lines[line].path for name, line in self._line_of.items()})
        return paths

    def start(self) -> dict[str, str]:
        for line in self._lines.values():
            line.start()
        for uart in self._uarts.values():
            uart.start()
        return self.paths()

    def link(self, directory: Path) -> None:
        """Stable symlinks directory/<name> -> /dev/pts/N, for node configs that name them."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, path in self.paths().items():
            link = directory / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(path)
            self._links.append(link)

    def close(self) -> None:
        for uart in self._uarts.values():
            uart.close()
        for line in self._lines.values():
            line.close()
        for link in self._links:
            with contextlib.suppress(OSError):
                link.unlink()
        self._links.clear()


def write_paths_json(paths: dict[str, str], target: Path) -> None:
    """Write {name: path} atomically, so a process polling for the file never reads half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(paths, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(target)
