"""PMS5003 and SDS011 drivers against their byte-level pty emulators (simulators/uart_pty.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from edge.drivers import pms5003, sds011
from edge.drivers.base import DriverError, Sample
from edge.drivers.serial_port import SerialSettings
from edge.drivers.uart_stream import (
    FrameChecksumError,
    NoDataError,
    NoFrameError,
    TruncatedFrameError,
)
from simulators.physical import Site, SiteOptions
from simulators.uart_pty import (
    UartEmulator,
    UartFault,
    UartKind,
)

T0 = 1_717_200_000_000  # 2024-06-01T00:00Z
TIMEOUT_S = 0.15


@pytest.fixture(params=["pms5003", "sds011"])
def kind(request: pytest.FixtureRequest) -> UartKind:
    value: UartKind = request.param
    return value


@pytest.fixture
def emulator(kind: UartKind) -> Iterator[UartEmulator]:
    with UartEmulator(kind, Site(SiteOptions(seed=3, traffic=0.8)), clock=lambda: T0) as emu:
        yield emu


def _driver(kind: UartKind, path: str) -> pms5003.Pms5003Driver | sds011.Sds011Driver:
    settings = SerialSettings(path, timeout_s=TIMEOUT_S)
    driver = (
        pms5003.Pms5003Driver("pm", settings)
        if kind == "pms5003"
        else sds011.Sds011Driver("pm", settings)
    )
    driver.open()  # opening flushes the line, so open before the emulator sends
    return driver


@pytest.fixture
def driver(
    kind: UartKind, emulator: UartEmulator
) -> Iterator[pms5003.Pms5003Driver | sds011.Sds011Driver]:
    d = _driver(kind, emulator.path)
    yield d
    d.close()


def _expected(kind: UartKind, t_ms: int) -> list[Sample]:
    values = Site(SiteOptions(seed=3, traffic=0.8)).values(t_ms, ("pm2_5", "pm10"))
    if kind == "pms5003":
        return [
            Sample("pm2_5", float(round(values["pm2_5"]))),
            Sample("pm10", float(round(values["pm10"]))),
        ]
    return [
        Sample("pm2_5", round(values["pm2_5"] * 10) / 10),
        Sample("pm10", round(values["pm10"] * 10) / 10),
    ]


# -- known vectors ---------------------------------------------------------------------------


def test_reads_the_modelled_values(
    kind: UartKind, emulator: UartEmulator, driver: pms5003.Pms5003Driver | sds011.Sds011Driver
) -> None:
    emulator.emit(T0)
    assert driver.read(T0) == _expected(kind, T0)
    assert driver.name == kind
    assert driver.flags == ()


def test_newest_buffered_frame_wins(
    kind: UartKind, emulator: UartEmulator, driver: pms5003.Pms5003Driver | sds011.Sds011Driver
) -> None:
    sent = sum(len(emulator.emit(t)) for t in (T0, T0 + 60_000, T0 + 7_200_000))
    # A pty delivers a write a moment later: wait until all three frames are buffered.
    deadline = time.monotonic() + 30.0
    while emulator.pending() < sent:
        assert time.monotonic() < deadline, f"{emulator.pending()} of {sent} bytes arrived"
        time.sleep(0.001)
    assert driver.read(0) == _expected(kind, T0 + 7_200_000)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("bad_checksum", FrameChecksumError),
        ("truncated", TruncatedFrameError),
        ("garbage", NoFrameError),
        ("silence", NoDataError),
    ],
)
def test_each_fault_raises_its_own_error_then_recovers(
    kind: UartKind,
    emulator: UartEmulator,
    driver: pms5003.Pms5003Driver | sds011.Sds011Driver,
    fault: UartFault,
    error: type[DriverError],
) -> None:
    emulator.inject(fault)
    emulator.emit(T0)
    with pytest.raises(error):
        driver.read(T0)
    # The next good frame is read: after a cut frame, the scan resynchronises past it.
    emulator.emit(T0 + 1000)
    assert driver.read(T0 + 1000) == _expected(kind, T0 + 1000)


def test_resynchronises_after_garbage_and_a_cut_frame_in_one_read(
    kind: UartKind, emulator: UartEmulator, driver: pms5003.Pms5003Driver | sds011.Sds011Driver
) -> None:
    good = emulator.frame_at(T0)
    emulator.emit_raw(b"\x00\x42\x4d\xaa\xff\x13" + good[: len(good) // 2] + good)
    assert driver.read(T0) == _expected(kind, T0)


def test_a_frame_split_across_two_reads_is_not_lost(
    kind: UartKind, emulator: UartEmulator, driver: pms5003.Pms5003Driver | sds011.Sds011Driver
) -> None:
    frame = emulator.frame_at(T0)
    emulator.emit_raw(frame[:5])
    with pytest.raises(TruncatedFrameError):
        driver.read(T0)
    emulator.emit_raw(frame[5:])
    assert driver.read(T0) == _expected(kind, T0)


def test_emulator_faults_at_rates_are_deterministic() -> None:
    def faults(seed: int) -> list[bytes]:
        site = Site(SiteOptions(seed=seed))
        with UartEmulator("pms5003", site, fault_rates={"silence": 0.5}, clock=lambda: T0) as e:
            return [e.emit() for _ in range(40)]

    first = faults(5)
    assert first == faults(5)
    silent = sum(1 for data in first if not data)
    assert 8 <= silent <= 32


# -- fuzzing ---------------------------------------------------------------------------------
