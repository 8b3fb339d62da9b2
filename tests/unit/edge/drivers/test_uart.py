"""PMS5003 and SDS011 frame parsers and driver options (the drivers against their byte-level pty
emulators: tests/integration/edge/drivers/test_uart_pty.py).

The emulators encode frames independently of the parsers (simulators/uart_pty.py), and the
known vectors below are written out by hand, so a parser bug cannot hide behind its own
encoder. Fault tests wait for the driver's deadline (0.15 s), never for an event.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.drivers import pms5003, sds011
from edge.drivers.base import DriverError
from edge.drivers.registry import UnknownDriverError, create_driver
from edge.drivers.serial_port import SerialPortError
from edge.drivers.uart_stream import (
    FrameChecksumError,
    FrameFormatError,
    FrameReader,
    scan,
)
from simulators.uart_pty import (
    UartKind,
    pms5003_frame,
    pms5003_words,
    sds011_frame,
)
from tests.support.scripted_port import ScriptedStream

# A PMS5003 frame written out byte by byte: CF=1 PM1/2.5/10 = 5/8/9, atmospheric 5/8/9,
# counts 1011/300/50/4/1/0, reserved 0x9700; checksum = the 16-bit sum of bytes 0..29.
PMS_WORDS = (5, 8, 9, 5, 8, 9, 1011, 300, 50, 4, 1, 0, 0x9700)
PMS_BODY = bytes([0x42, 0x4D, 0x00, 0x1C] + [b for w in PMS_WORDS for b in (w >> 8, w & 0xFF)])
PMS_VECTOR = PMS_BODY + (sum(PMS_BODY) & 0xFFFF).to_bytes(2, "big")
# An SDS011 frame: PM2.5 = 0x0062 = 9.8 µg/m³, PM10 = 0x00C8 = 20.0 µg/m³, id 0xA1B2.
SDS_DATA = [0x62, 0x00, 0xC8, 0x00, 0xA1, 0xB2]
SDS_VECTOR = bytes([0xAA, 0xC0, *SDS_DATA, sum(SDS_DATA) & 0xFF, 0xAB])


@pytest.fixture(params=["pms5003", "sds011"])
def kind(request: pytest.FixtureRequest) -> UartKind:
    value: UartKind = request.param
    return value


def test_pms5003_known_frame() -> None:
    frame = pms5003.parse(PMS_VECTOR)
    assert (frame.pm1_atm, frame.pm2_5_atm, frame.pm10_atm) == (5, 8, 9)
    assert frame.counts == (1011, 300, 50, 4, 1, 0)
    assert frame.reserved == 0x9700
    # The independent encoder produces the same bytes.
    assert pms5003_frame(PMS_WORDS) == PMS_VECTOR


def test_sds011_known_frame() -> None:
    frame = sds011.parse(SDS_VECTOR)
    assert (frame.pm2_5, frame.pm10, frame.device_id) == (9.8, 20.0, 0xA1B2)
    assert sds011_frame(0x62, 0xC8, 0xA1B2) == SDS_VECTOR


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (PMS_VECTOR[:-1], FrameFormatError),
        (PMS_VECTOR[:-1] + bytes([PMS_VECTOR[-1] ^ 1]), FrameChecksumError),
        (b"\x42\x4d\x00\x04\xe1\x00\x01\x74", FrameFormatError),  # passive-mode ack, not data
        (b"\x00" + PMS_VECTOR[1:], FrameFormatError),
    ],
)
def test_pms5003_strict_parse_errors(data: bytes, error: type[DriverError]) -> None:
    with pytest.raises(error):
        pms5003.parse(data)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (SDS_VECTOR[:9], FrameFormatError),
        (SDS_VECTOR[:8] + bytes([SDS_VECTOR[8] ^ 1, 0xAB]), FrameChecksumError),
        (SDS_VECTOR[:9] + b"\xac", FrameFormatError),  # wrong tail
        (b"\xaa\xc5" + SDS_VECTOR[2:], FrameFormatError),  # a command reply
    ],
)
def test_sds011_strict_parse_errors(data: bytes, error: type[DriverError]) -> None:
    with pytest.raises(error):
        sds011.parse(data)


def test_pms5003_words_report_atmospheric_values_and_cf1_reads_higher() -> None:
    words = pms5003_words(80.0, 120.0)
    frame = pms5003.parse(pms5003_frame(words))
    assert (frame.pm2_5_atm, frame.pm10_atm) == (80, 120)
    assert frame.pm2_5_cf1 > frame.pm2_5_atm  # CF=1 reads higher above ~30 µg/m³
    assert pms5003.parse(pms5003_frame(pms5003_words(12.0, 20.0))).pm2_5_cf1 == 12


# -- driver against the emulator ---------------------------------------------------------------


def test_missing_port_is_a_driver_error_and_retried(kind: UartKind) -> None:
    driver = create_driver(kind, "pm", {"port": "/dev/envnet-no-such-port", "timeout_s": 0.1})
    for _ in range(2):
        with pytest.raises(SerialPortError):
            driver.read(0)
    driver.close()


def test_registry_options_are_validated(kind: UartKind) -> None:
    with pytest.raises(UnknownDriverError, match="prot"):
        create_driver(kind, "pm", {"prot": "/dev/ttyAMA0"})
    with pytest.raises(UnknownDriverError, match="timeout_s"):
        create_driver(kind, "pm", {"port": "/dev/ttyAMA0", "timeout_s": 0})
    flagged = create_driver(kind, "pm", {"port": "/dev/ttyAMA0", "flags": ["simulated"]})
    assert flagged.flags == ("simulated",)


SPECS = {"pms5003": pms5003, "sds011": sds011}


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80), which=st.sampled_from(["pms5003", "sds011"]))
def test_strict_parsers_raise_only_driver_errors(data: bytes, which: str) -> None:
    with contextlib.suppress(DriverError):
        SPECS[which].parse(data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), which=st.sampled_from(["pms5003", "sds011"]))
def test_scan_never_raises_and_keeps_little(data: bytes, which: str) -> None:
    spec = SPECS[which].FRAME_SPEC
    result = scan(data, spec)
    assert len(result.rest) < 32
    assert result.skipped + len(result.rest) <= len(data)


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.binary(max_size=60),
    suffix=st.binary(max_size=60),
    words=st.tuples(*[st.integers(0, 0xFFFF)] * 13),
)
def test_pms5003_frame_is_found_in_any_noise(
    prefix: bytes, suffix: bytes, words: tuple[int, ...]
) -> None:
    frame = pms5003_frame(words)
    # Noise without a header byte cannot contain a competing candidate frame.
    noise_a, noise_b = (bytes(b for b in x if b != 0x42) for x in (prefix, suffix))
    result = scan(noise_a + frame + noise_b, pms5003.FRAME_SPEC)
    assert pms5003.parse(frame) in result.frames


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.binary(max_size=60),
    pm=st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
)
def test_sds011_frame_is_found_after_any_noise(prefix: bytes, pm: tuple[int, int, int]) -> None:
    frame = sds011_frame(*pm)
    noise = bytes(b for b in prefix if b != 0xAA)
    assert scan(noise + frame, sds011.FRAME_SPEC).frames == (sds011.parse(frame),)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120), which=st.sampled_from(["pms5003", "sds011"]))
def test_reader_raises_only_driver_errors_for_any_stream(data: bytes, which: str) -> None:
    stream = ScriptedStream(data)
    port = stream.port()
    reader = FrameReader(port, SPECS[which].FRAME_SPEC)
    for _ in range(2):
        with contextlib.suppress(DriverError):
            reader.read_latest()
