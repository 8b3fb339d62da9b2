"""Modbus RTU: CRC vectors, the response parser, register maps, and the driver on an unplugged
line. The driver against a real pymodbus slave on a pty: tests/integration/edge/drivers/."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.drivers.base import DriverError
from edge.drivers.modbus_rtu import (
    ModbusCrcError,
    ModbusExceptionError,
    ModbusFrameError,
    ModbusMaster,
    WrongFunctionError,
    WrongSlaveError,
    crc16,
    parse_read_response,
    read_request,
    with_crc,
)
from edge.drivers.modbus_sensor import ModbusDriver
from edge.drivers.register_map import (
    ProfileError,
    decode_words,
    load_profile,
    load_profile_file,
    parse_profile,
    profile_names,
    read_plan,
    unit_factor,
)
from edge.drivers.registry import UnknownDriverError, create_driver
from edge.drivers.serial_port import SerialPortError, SerialSettings
from edge.sampler import FAILED_AFTER, Sampler
from schemas.gas_units import to_canonical
from simulators.modbus_slave import (
    encode_entry,
)
from tests.support.edge_harness import RampDriver
from tests.support.scripted_port import ScriptedStream, UnpluggedStream

T0 = 1_717_243_200_000  # 2024-06-01T12:00Z, 20:00 in Suzhou


# -- CRC and framing ---------------------------------------------------------------------------


def test_crc16_known_vectors() -> None:
    # The CRC-16/MODBUS check value, the Modbus serial-line specification's example
    # (0x02 0x07 -> 0x1241, sent 0x41 0x12), and a common read request on the wire.
    assert crc16(b"123456789") == 0x4B37
    assert crc16(bytes([0x02, 0x07])) == 0x1241
    assert read_request(1, 0x03, 0, 10) == bytes.fromhex("01030000000ac5cd")
    assert with_crc(bytes([0x02, 0x07])) == bytes([0x02, 0x07, 0x41, 0x12])


def test_read_request_refuses_what_the_protocol_cannot_express() -> None:
    for args in ((0, 3, 0, 1), (248, 3, 0, 1), (1, 6, 0, 1), (1, 3, 0, 126), (1, 3, 0xFFFF, 2)):
        with pytest.raises(ValueError, match=r"slave|function|cannot read"):
            read_request(*args)


def _answer(slave: int, function: int, words: list[int]) -> bytes:
    data = b"".join(w.to_bytes(2, "big") for w in words)
    return with_crc(bytes([slave, function, len(data)]) + data)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"\x01\x03", ModbusFrameError),
        (_answer(1, 3, [1, 2])[:-1] + b"\x00", ModbusCrcError),
        (_answer(2, 3, [1, 2]), WrongSlaveError),
        (_answer(1, 4, [1, 2]), WrongFunctionError),
        (with_crc(b"\x01\x83\x02"), ModbusExceptionError),
        (_answer(1, 3, [1]), ModbusFrameError),
        (with_crc(b"\x01\x03\x04\x00\x01"), ModbusFrameError),
    ],
)
def test_parser_names_each_defect(frame: bytes, error: type[DriverError]) -> None:
    with pytest.raises(error):
        parse_read_response(frame, 1, 0x03, 2)


def test_exception_response_carries_its_code() -> None:
    with pytest.raises(ModbusExceptionError) as caught:
        parse_read_response(with_crc(b"\x07\x84\x0b"), 7, 0x04, 1)
    assert (caught.value.slave, caught.value.function, caught.value.code) == (7, 4, 0x0B)
    assert "gateway" in str(caught.value)


def test_parser_returns_the_words() -> None:
    assert parse_read_response(_answer(9, 4, [0xFFFF, 0, 0x1234]), 9, 0x04, 3) == (
        0xFFFF,
        0,
        0x1234,
    )


@settings(max_examples=400, deadline=None)
@given(
    frame=st.binary(max_size=64),
    slave=st.integers(1, 247),
    function=st.sampled_from([3, 4]),
    count=st.integers(1, 30),
)
def test_response_parser_raises_only_driver_errors(
    frame: bytes, slave: int, function: int, count: int
) -> None:
    with contextlib.suppress(DriverError):
        words = parse_read_response(frame, slave, function, count)
        assert len(words) == count


@settings(max_examples=200, deadline=None)
@given(body=st.binary(min_size=3, max_size=40))
def test_any_frame_with_a_valid_crc_parses_or_names_a_defect(body: bytes) -> None:
    # With the CRC right, the parser must get past the CRC check and judge the content.
    try:
        parse_read_response(with_crc(body), body[0] or 1, 3, 1)
    except ModbusCrcError:
        pytest.fail("a frame with a correct CRC was refused for its CRC")
    except DriverError:
        pass


# -- register maps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "data_type", "order", "value"),
    [
        ([0xFFFF], "u16", "big", 65535.0),
        ([0xFFFF], "s16", "big", -1.0),
        ([0x0001, 0x0002], "u32", "big", 65538.0),
        ([0x0002, 0x0001], "u32", "little", 65538.0),
        ([0xFFFF, 0xFFFE], "s32", "big", -2.0),
        ([0xFFFE, 0xFFFF], "s32", "little", -2.0),
        ([0x3F80, 0x0000], "f32", "big", 1.0),
        ([0x0000, 0x3F80], "f32", "little", 1.0),
        ([0x4049, 0x0FDB], "f32", "big", struct.unpack(">f", bytes.fromhex("40490fdb"))[0]),
    ],
)
def test_decode_words(words: list[int], data_type: str, order: str, value: float) -> None:
    assert decode_words(words, data_type, order) == value  # type: ignore[arg-type]


def test_unit_factors_use_the_25c_gas_conversions() -> None:
    assert unit_factor("h2s", "ppb") == pytest.approx(to_canonical("h2s", 1.0, "ppb"))
    assert unit_factor("nh3", "ppm") == pytest.approx(696.1, rel=1e-3)  # docs/standards.md §4.1
    assert unit_factor("co", "ppm") == pytest.approx(1.145, rel=1e-3)  # mg/m³ per ppm
    assert unit_factor("conductivity", "mS/cm") == 1000.0
    assert unit_factor("laeq", "dB(A)") == 1.0


def test_shipped_profiles_load_and_say_they_are_typical() -> None:
    assert profile_names() == [
        "typical-h2s-nh3",
        "typical-noise",
        "typical-odour",
        "typical-water-sonde",
    ]
    for name in profile_names():
        profile = load_profile(name)
        assert profile.name == name
        text = (Path(__file__).parents[4] / "edge/drivers/profiles" / f"{name}.toml").read_text()
        assert "TYPICAL" in text and "manual" in text
    sonde = {e.quantity for e in load_profile("typical-water-sonde").registers}
    assert sonde == {
        "water_temp", "ph", "do", "nh3_n", "turbidity", "conductivity", "chl_a", "phycocyanin",
    }  # fmt: skip


_GOOD = """
name = "x"
description = "d"
[[registers]]
quantity = "h2s"
address = 0
unit = "ppb"
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[registers]]\nquantity = "h2s"\naddress = 5\nunit = "ppb"\n', "listed twice"),
        ('[[registers]]\nquantity = "nh3"\naddress = 0\nunit = "ppm"\n', "also used by"),
        ('[[registers]]\nquantity = "ph"\naddress = 1\nunit = "ppb"\n', "cannot convert"),
        ('[[registers]]\nquantity = "nh3"\naddress = 1\nunit = "ppm"\nscale = 0.0\n', "scale"),
        (
            '[[registers]]\nquantity = "nh3"\naddress = 65535\nunit = "ppm"\ndata_type = "f32"\n',
            "passes 0xFFFF",
        ),
        ('[[registers]]\nquantity = "nh3"\naddress = 1\nunit = "ppm"\nwords = 2\n', "unknown"),
        ('[[registers]]\nquantity = "nh4"\naddress = 1\nunit = "ppm"\n', "quantity"),
        (
            '[[registers]]\nquantity = "nh3"\naddress = 1\nunit = "ppm"\ndata_type = "u64"\n',
            "data_type",
        ),
    ],
)
def test_profile_errors_are_clear(extra: str, message: str) -> None:
    parse_profile(_GOOD, "good.toml")
    with pytest.raises(ProfileError, match=message) as caught:
        parse_profile(_GOOD + extra, "site.toml")
    assert "site.toml" in str(caught.value)


def test_profile_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile_file(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ")
    with pytest.raises(ProfileError, match=r"broken\.toml: not valid TOML"):
        load_profile_file(broken)


def test_read_plan_merges_only_adjacent_registers_of_one_type() -> None:
    profile = parse_profile(
        """
name = "p"
description = "d"
[[registers]]
quantity = "laeq"
address = 0
unit = "dB(A)"
[[registers]]
quantity = "lamax"
address = 1
unit = "dB(A)"
[[registers]]
quantity = "odour"
address = 10
data_type = "f32"
unit = "OU"
[[registers]]
quantity = "h2s"
address = 2
register_type = "input"
unit = "ppb"
""",
        "p",
    )
    plan = [(b.register_type, b.address, b.count) for b in read_plan(profile.registers)]
    assert plan == [("holding", 0, 2), ("holding", 10, 2), ("input", 2, 1)]


# -- the driver against a pymodbus slave on a pty ------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(value=st.floats(-1000, 100000, allow_nan=False))
def test_simulator_encoding_saturates_like_a_transmitter(value: float) -> None:
    entry = load_profile("typical-water-sonde").registers[0]  # water_temp, s16 x 0.01
    words = encode_entry(entry, value)
    decoded = decode_words(words, entry.data_type, entry.word_order) * entry.scale
    assert decoded == pytest.approx(min(max(value, -327.68), 327.67), abs=0.005 + 1e-9)


def test_registry_options() -> None:
    with pytest.raises(UnknownDriverError, match="exactly one"):
        create_driver("modbus", "x", {"port": "/dev/ttyUSB0"})
    with pytest.raises(UnknownDriverError, match="no profile"):
        create_driver("modbus", "x", {"port": "/dev/ttyUSB0", "profile": "vendor-x"})
    with pytest.raises(UnknownDriverError, match="slave"):
        create_driver(
            "modbus", "x", {"port": "/dev/ttyUSB0", "profile": "typical-noise", "slave": 0}
        )


@settings(max_examples=300, deadline=None)
@given(answer=st.binary(max_size=80), count=st.integers(1, 20))
def test_master_raises_only_driver_errors_for_any_answer(answer: bytes, count: int) -> None:
    stream = ScriptedStream(answer)
    port = stream.port()
    with contextlib.suppress(DriverError):
        assert len(ModbusMaster(port).read_registers(5, "input", 100, count)) == count
    assert stream.written == read_request(5, 0x04, 100, count)


# -- an unplugged line ------------------------------------------------------------------------


def test_unplugged_line_is_a_sensor_fault_not_a_crash() -> None:
    # pyserial's reset_input_buffer is termios.tcflush, whose termios.error(EIO) on a vanished
    # device is not an OSError: it used to escape the driver and kill the agent.
    opened: list[UnpluggedStream] = []

    def opener(settings: SerialSettings) -> UnpluggedStream:
        opened.append(UnpluggedStream())
        return opened[-1]

    profile = load_profile("typical-noise")
    settings = SerialSettings("/dev/ttyUSB1", timeout_s=0.2, exclusive=False)
    driver = ModbusDriver("noise", settings, 1, profile, opener=opener)
    with pytest.raises(SerialPortError, match=r"/dev/ttyUSB1: .*Input/output error"):
        driver.read(T0)
    with pytest.raises(SerialPortError):
        driver.read(T0)
    assert len(opened) == 2  # the failed port was closed and opened again for the next read

    # The agent's sampler: the Modbus sensor ends up failed, the other sensor is still read.
    sampler = Sampler([driver, RampDriver()], 1.0, 60, T0)
    readings = []
    samples = FAILED_AFTER + 60  # one a second from T0: an interval of 60 s closes
    for second in range(samples):
        readings += sampler.step(T0 + second * 1000)
    health = {h.sensor: h for h in sampler.health()}
    assert health["noise"].state == "failed"
    assert health["noise"].errors == samples
    assert "SerialPortError" in (health["noise"].last_error or "")
    assert health["pm"].state == "ok"
    assert {r.sensor for r in readings} == {"pm"}
    assert {r.quantity for r in readings} == {"pm2_5", "pm10"}
