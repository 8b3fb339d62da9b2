"""A Modbus RTU master (RS-485) for reading registers, on pyserial, with no Modbus library.

The edge speaks the little Modbus it needs itself (functions 03 and 04), so a Pi needs only
pyserial; pymodbus is used by the simulator only. Framing follows the Modbus over Serial
Line specification V1.02: an ADU is slave address, PDU, CRC-16/MODBUS (polynomial 0xA001
reflected, initial 0xFFFF), the CRC's low byte sent first. The request/response framing here
relies on lengths, not on the 3.5-character silences, which a USB adapter does not preserve.

Every way an answer can be wrong has its own exception (see the classes below), so the
sensor health in the status message says what went wrong on the bus.
"""

from __future__ import annotations

from typing import Final, Literal

from edge.drivers.base import ChecksumError, DriverError, FrameError, SensorTimeoutError
from edge.drivers.serial_port import Port

RegisterType = Literal["holding", "input"]

FUNCTION: Final[dict[RegisterType, int]] = {"holding": 0x03, "input": 0x04}
MAX_READ_COUNT: Final = 125  # registers per read (Application Protocol §6.3, §6.4)
EXCEPTION_FLAG: Final = 0x80

# Modbus Application Protocol V1.1b3 §7.
EXCEPTION_NAMES: Final[dict[int, str]] = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}


class ModbusTimeoutError(SensorTimeoutError):
    """No answer at all before the timeout (wrong slave address, wiring, power)."""


class ModbusTruncatedError(FrameError):
    """An answer started but stopped short of its length."""


class ModbusFrameError(FrameError):
    """An answer whose length or byte count does not fit the request."""


class ModbusCrcError(ChecksumError):
    """An answer whose CRC does not match (noise on the line, a missing terminator)."""


class WrongSlaveError(FrameError):
    """A valid answer from another slave address than the one asked."""


class WrongFunctionError(FrameError):
    """A valid answer for another function than the one asked."""


class ModbusExceptionError(DriverError):
    """The slave answered with an exception response; `code` is its exception code."""

    def __init__(self, slave: int, function: int, code: int) -> None:
        self.slave = slave
        self.function = function
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"slave {slave} function {function:#04x}: exception {code:#04x} ({name})")


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of `data` (as an integer; sent low byte first)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + crc16(frame).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 3 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def read_request(slave: int, function: int, address: int, count: int) -> bytes:
    """The ADU of a read holding (03) / input (04) registers request."""
    if not 1 <= slave <= 247:
        raise ValueError(f"slave address must be 1..247, got {slave}")
    if function not in FUNCTION.values():
        raise ValueError(f"function must be 0x03 or 0x04, got {function:#x}")
    if not 1 <= count <= MAX_READ_COUNT or not 0 <= address <= 0xFFFF - count + 1:
        raise ValueError(f"cannot read {count} registers at {address}")
    pdu = bytes((slave, function)) + address.to_bytes(2, "big") + count.to_bytes(2, "big")
    return with_crc(pdu)


def answer_size(head: bytes) -> int:
    """The full size of an answer, from its first three bytes (slave, function, count/code)."""
    if head[1] & EXCEPTION_FLAG:
        return 5
    return 3 + head[2] + 2


def parse_read_response(frame: bytes, slave: int, function: int, count: int) -> tuple[int, ...]:
    """The register values of a read answer, or the DriverError that says what is wrong."""
    if len(frame) < 5:
        raise ModbusFrameError(f"answer of {len(frame)} bytes is too short: {frame.hex(' ')}")
    if not crc_ok(frame):
        raise ModbusCrcError(f"bad CRC in {frame.hex(' ')}")
    if frame[0] != slave:
        raise WrongSlaveError(f"asked slave {slave}, answer from slave {frame[0]}")
    if frame[1] == function | EXCEPTION_FLAG:
        if len(frame) != 5:
            raise ModbusFrameError(f"exception answer of {len(frame)} bytes: {frame.hex(' ')}")
        raise ModbusExceptionError(slave, function, frame[2])
    if frame[1] != function:
        raise WrongFunctionError(f"asked function {function:#04x}, answer for {frame[1]:#04x}")
    if frame[2] != 2 * count or len(frame) != 5 + frame[2]:
        raise ModbusFrameError(
            f"asked {count} registers, answer has byte count {frame[2]} in {len(frame)} bytes"
        )
    return tuple(int.from_bytes(frame[i : i + 2], "big") for i in range(3, 3 + 2 * count, 2))


class ModbusMaster:
    """Reads registers from slaves on one RS-485 line."""

    def __init__(self, port: Port) -> None:
        self._port = port

    def read_registers(
        self, slave: int, register_type: RegisterType, address: int, count: int
    ) -> tuple[int, ...]:
        function = FUNCTION[register_type]
        request = read_request(slave, function, address, count)
        self._port.discard_input()
        self._port.write(request)
        deadline = self._port.deadline()
        head = self._port.read_exact(3, deadline)
        name = self._port.settings.port
        if not head:
            raise ModbusTimeoutError(
                f"{name}: slave {slave} did not answer in {self._port.settings.timeout_s} s"
            )
        if len(head) < 3:
            raise ModbusTruncatedError(f"{name}: answer cut short: {head.hex(' ')}")
        size = answer_size(head)
        frame = head + self._port.read_exact(size - 3, deadline)
        if len(frame) < size:
            raise ModbusTruncatedError(f"{name}: {len(frame)} of {size} bytes: {frame.hex(' ')}")
        return parse_read_response(frame, slave, function, count)

    def close(self) -> None:
        self._port.close()
