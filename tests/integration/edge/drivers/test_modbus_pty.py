"""The Modbus RTU driver against a real pymodbus slave on a pty (simulators/modbus_slave.py),
including every injectable fault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edge.drivers.base import DriverError
from edge.drivers.modbus_rtu import (
    ModbusCrcError,
    ModbusExceptionError,
    ModbusTimeoutError,
    WrongFunctionError,
    WrongSlaveError,
)
from edge.drivers.modbus_sensor import ModbusDriver
from edge.drivers.register_map import (
    Profile,
    load_profile,
    parse_profile,
    profile_names,
    unit_factor,
)
from edge.drivers.registry import create_driver
from edge.drivers.serial_port import SerialPortError, SerialSettings
from simulators.modbus_slave import (
    ModbusLineSimulator,
    SimulatedSlave,
)
from simulators.physical import Site, SiteOptions
from tests.unit.edge.drivers.test_modbus import _GOOD

T0 = 1_717_243_200_000  # 2024-06-01T12:00Z, 20:00 in Suzhou
# Generous for answers that come (a loaded CI machine), and what a "timeout" fault costs.
TIMEOUT_S = 0.5
SITE = SiteOptions(seed=4, source_bearing_deg=135.0, source_strength=3.0)


# -- CRC and framing ---------------------------------------------------------------------------


def _driver(profile: Profile, path: str, slave: int = 1) -> ModbusDriver:
    settings = SerialSettings(path, timeout_s=TIMEOUT_S, exclusive=False)
    return ModbusDriver("dev", settings, slave, profile)


def _expected(profile: Profile, t_ms: int) -> dict[str, float]:
    return Site(SITE).values(t_ms, [e.quantity for e in profile.registers])  # type: ignore[return-value]


def _tolerance(profile: Profile, quantity: str) -> float:
    entry = next(e for e in profile.registers if e.quantity == quantity)
    if entry.data_type == "f32":
        return 1e-5
    return abs(entry.scale * unit_factor(entry.quantity, entry.unit)) / 2 + 1e-9


@pytest.mark.parametrize("name", profile_names())
def test_driver_reads_every_profile_from_the_slave(name: str) -> None:
    profile = load_profile(name)
    with ModbusLineSimulator.single(profile, Site(SITE), slave=7, clock=lambda: T0) as line:
        driver = _driver(profile, line.path, slave=7)
        samples = driver.read(T0)
        driver.close()
    expected = _expected(profile, T0)
    assert sorted(s.quantity for s in samples) == sorted(expected)
    for sample in samples:
        want = expected[sample.quantity]
        assert sample.value == pytest.approx(
            want, rel=1e-6, abs=_tolerance(profile, sample.quantity)
        )


@pytest.fixture
def sonde() -> Iterator[tuple[ModbusLineSimulator, ModbusDriver]]:
    profile = load_profile("typical-water-sonde")
    with ModbusLineSimulator.single(profile, Site(SITE), slave=3, clock=lambda: T0) as line:
        driver = _driver(profile, line.path, slave=3)
        yield line, driver
        driver.close()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("timeout", ModbusTimeoutError),
        ("bad_crc", ModbusCrcError),
        ("wrong_slave", WrongSlaveError),
        ("wrong_function", WrongFunctionError),
        (2, ModbusExceptionError),
        (4, ModbusExceptionError),
        (6, ModbusExceptionError),
    ],
)
def test_each_injected_fault_raises_its_own_error_then_recovers(
    sonde: tuple[ModbusLineSimulator, ModbusDriver], fault: str | int, error: type[DriverError]
) -> None:
    line, driver = sonde
    line.inject(fault)  # type: ignore[arg-type]
    with pytest.raises(error) as caught:
        driver.read(T0)
    if isinstance(fault, int):
        assert isinstance(caught.value, ModbusExceptionError)
        assert caught.value.code == fault
    assert len(driver.read(T0)) == 8  # the next request is answered normally


def test_a_read_spanning_an_unmapped_register_gets_exception_02() -> None:
    # The slave maps the sonde's registers 0..12 only; a profile that reads 13 is refused.
    sonde = load_profile("typical-water-sonde")
    wider = parse_profile(_GOOD.replace("address = 0", "address = 13"), "wider")
    with ModbusLineSimulator.single(sonde, Site(SITE), clock=lambda: T0) as line:
        driver = _driver(wider, line.path)
        with pytest.raises(ModbusExceptionError) as caught:
            driver.read(T0)
        driver.close()
    assert caught.value.code == 0x02


def test_slaves_share_one_line_and_one_port() -> None:
    noise, gas = load_profile("typical-noise"), load_profile("typical-h2s-nh3")
    site = Site(SITE)
    slaves = [
        SimulatedSlave(noise, site, slave=1, clock=lambda: T0),
        SimulatedSlave(gas, site, slave=2, clock=lambda: T0),
    ]
    with ModbusLineSimulator(slaves) as line:
        # Two drivers opened through the registry on the same port, as node.toml does it.
        a = create_driver(
            "modbus",
            "noise",
            {"port": line.path, "slave": 1, "profile": "typical-noise", "timeout_s": TIMEOUT_S},
        )
        b = create_driver(
            "modbus",
            "gas",
            {"port": line.path, "slave": 2, "profile": "typical-h2s-nh3", "timeout_s": TIMEOUT_S},
        )
        for _ in range(3):
            assert [s.quantity for s in a.read(T0)] == ["laeq", "lamax"]
            assert [s.quantity for s in b.read(T0)] == ["h2s", "nh3"]
        line.inject("timeout", slave=2)
        assert len(a.read(T0)) == 2
        with pytest.raises(ModbusTimeoutError):
            b.read(T0)
        assert len(b.read(T0)) == 2
        a.close()
        b.close()


def test_no_slave_at_the_address_is_a_timeout() -> None:
    profile = load_profile("typical-noise")
    with ModbusLineSimulator.single(profile, Site(SITE), slave=1, clock=lambda: T0) as line:
        driver = _driver(profile, line.path, slave=9)
        with pytest.raises(ModbusTimeoutError):
            driver.read(T0)
        driver.close()


def test_a_pty_line_that_goes_away_is_a_sensor_fault() -> None:
    # A real unplug: the line's pty disappears under an open port.
    profile = load_profile("typical-noise")
    line = ModbusLineSimulator.single(profile, Site(SITE), slave=1, clock=lambda: T0)
    with line:
        driver = _driver(profile, line.path)
        assert len(driver.read(T0)) == 2
    try:
        for _ in range(3):
            with pytest.raises(SerialPortError):
                driver.read(T0)
    finally:
        driver.close()
