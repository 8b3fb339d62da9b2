"""Modbus RTU slaves (pymodbus) on a pty, serving register-map profiles from the models.

pymodbus's serial server opens a device path with pyserial, and so does the edge driver: the
two sides are two ptys joined by a PtyBridge (simulators/ptys.py). Every read request is
answered with the values of simulators.physical at that instant, encoded per the profile
(scale, offset, unit, signedness, word order) with pymodbus's own register conversion, which
is independent of the edge's decoder.

Faults (`inject`, or per-request rates for `envnet sim devices`):
- "timeout": no answer at all;
- "bad_crc", "wrong_slave", "wrong_function": an answer with that defect (the last two with
  a correct CRC), by rewriting the bytes pymodbus sends (its trace_packet hook);
- an exception code (1..11): an exception response, returned by the device's action hook.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Literal, get_args

from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.drivers.register_map import Profile, RegisterEntry, unit_factor
from simulators.fault_rates import FaultRates
from simulators.noise import channel_id
from simulators.physical import Site, wall_ms
from simulators.ptys import PtyBridge, RawPty

LineFault = Literal["timeout", "bad_crc", "wrong_slave", "wrong_function"]
LINE_FAULTS: Final[tuple[LineFault, ...]] = get_args(LineFault)
ModbusFault = LineFault | int

_DT = ModbusClientMixin.DATATYPE
_PYMODBUS_TYPE: Final = {"u16": _DT.UINT16, "s16": _DT.INT16, "u32": _DT.UINT32,
                         "s32": _DT.INT32, "f32": _DT.FLOAT32}  # fmt: skip
_INT_RANGE: Final = {"u16": (0, 0xFFFF), "s16": (-0x8000, 0x7FFF), "u32": (0, 0xFFFFFFFF),
                     "s32": (-0x80000000, 0x7FFFFFFF)}  # fmt: skip
_FUNCTION: Final = {"holding": 0x03, "input": 0x04}
_FAULT_CHANNEL: Final = channel_id("modbus.fault")
_START_TIMEOUT_S: Final = 10.0


class SimulatorStartError(RuntimeError):
    """The pymodbus server did not come up on its pty."""


def encode_entry(entry: RegisterEntry, canonical: float) -> list[int]:
    """The registers a device following `entry` holds for a canonical value."""
    raw = (canonical / unit_factor(entry.quantity, entry.unit) - entry.offset) / entry.scale
    data_type = _PYMODBUS_TYPE[entry.data_type]
    if entry.data_type == "f32":
        return ModbusClientMixin.convert_to_registers(raw, data_type, entry.word_order)
    low, high = _INT_RANGE[entry.data_type]
    number = min(max(round(raw), low), high)  # a transmitter saturates at its range
    return ModbusClientMixin.convert_to_registers(number, data_type, entry.word_order)


def registers_at(profile: Profile, site: Site, t_ms: int) -> dict[tuple[str, int], int]:
    """Every register of the profile at `t_ms`, keyed by (register type, address)."""
    values = site.values(t_ms, [e.quantity for e in profile.registers])
    registers: dict[tuple[str, int], int] = {}
    for entry in profile.registers:
        for i, word in enumerate(encode_entry(entry, values[entry.quantity])):
            registers[(entry.register_type, entry.address + i)] = word
    return registers


def _with_crc(frame: bytes) -> bytes:
    """CRC-16/MODBUS, written here again so that a CRC bug cannot hide on both sides."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return frame + crc.to_bytes(2, "little")


def corrupt(packet: bytes, fault: LineFault) -> bytes:
    """`packet`, a complete RTU answer, with `fault` applied."""
    if fault == "timeout" or len(packet) < 4:
        return b""
    if fault == "bad_crc":
        return packet[:-1] + bytes(((packet[-1] + 1) & 0xFF,))
    body = bytearray(packet[:-2])
    if fault == "wrong_slave":
        body[0] = body[0] % 247 + 1
    else:
        body[1] = body[1] ^ 0x07  # 03 <-> 04 (exception flag kept)
    return _with_crc(bytes(body))


class SimulatedSlave:
    """One device on a simulated line: a profile at a slave address, fed by a site's models."""

    def __init__(
        self,
        profile: Profile,
        site: Site,
        *,
        slave: int = 1,
        fault_rates: Mapping[str, float] | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        for name in fault_rates or {}:
            if name not in (*LINE_FAULTS, "exception"):
                raise ValueError(f"unknown Modbus fault {name!r}")
        faults = FaultRates(fault_rates, site.options.seed, _FAULT_CHANNEL)
        if not 1 <= slave <= 247:
            raise ValueError(f"slave address must be 1..247, got {slave}")
        self.profile = profile
        self.slave = slave
        self._site = site
        self._clock = clock
        self._faults = faults
        self._lock = threading.Lock()
        self._queued: deque[ModbusFault] = deque()
        self._requests = 0
        self._pending_line_fault: LineFault | None = None

    def inject(self, fault: ModbusFault, count: int = 1) -> None:
        """Apply `fault` to the next `count` requests to this slave."""
        if isinstance(fault, int):
            ExcCodes(fault)  # raises ValueError for a code pymodbus cannot send
        elif fault not in LINE_FAULTS:
            raise ValueError(f"unknown Modbus fault {fault!r}")
        with self._lock:
            self._queued.extend([fault] * count)

    def _next_fault(self) -> ModbusFault | None:
        with self._lock:
            number = self._requests
            self._requests += 1
            if self._queued:
                return self._queued.popleft()
        name = self._faults.draw(number)
        if name is None:
            return None
        return int(ExcCodes.DEVICE_FAILURE) if name == "exception" else _line_fault(name)

    def take_line_fault(self) -> LineFault | None:
        """The fault to apply to the answer being sent now (set by the last request)."""
        with self._lock:
            fault, self._pending_line_fault = self._pending_line_fault, None
        return fault

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Called by pymodbus for each valid request: fill the block from the models, or fail."""
        fault = self._next_fault()
        if isinstance(fault, int):
            return ExcCodes(fault)
        with self._lock:
            self._pending_line_fault = fault
        kind = "holding" if function_code == _FUNCTION["holding"] else "input"
        registers = registers_at(self.profile, self._site, self._clock())
        for (register_type, reg), word in registers.items():
            if register_type == kind and 0 <= reg - start_address < len(current_registers):
                current_registers[reg - start_address] = word
        return None

    def device(self) -> SimDevice:
        blocks: dict[str, list[SimData]] = {"holding": [], "input": []}
        for entry in self.profile.registers:
            blocks[entry.register_type].append(
                SimData(entry.address, values=[0] * entry.words, datatype=DataType.REGISTERS)
            )
        for kind, block in blocks.items():
            if not block:  # a register type the profile does not use: every read is refused
                blocks[kind] = [SimData(0, datatype=DataType.INVALID)]
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        return SimDevice(
            self.slave,
            simdata=(bits, list(bits), blocks["holding"], blocks["input"]),
            action=self.action,
        )


def _line_fault(name: str) -> LineFault:
    for fault in LINE_FAULTS:
        if fault == name:
            return fault
    raise ValueError(f"unknown Modbus fault {name!r}")


class ModbusLineSimulator:
    """An RS-485 line with one or more slaves; `path` is what the drivers' `port` names."""

    def __init__(self, slaves: Sequence[SimulatedSlave], *, baudrate: int = 9600) -> None:
        if not slaves:
            raise ValueError("a Modbus line needs at least one slave")
        addresses = [s.slave for s in slaves]
        if len(set(addresses)) != len(addresses):
            raise ValueError(f"slave addresses on one line must differ, got {addresses}")
        self.slaves = {s.slave: s for s in slaves}
        self._baudrate = baudrate
        self._server_pty = RawPty()
        self._driver_pty = RawPty()
        self._bridge = PtyBridge(self._server_pty, self._driver_pty)
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def single(
        cls,
        profile: Profile,
        site: Site,
        *,
        slave: int = 1,
        fault_rates: Mapping[str, float] | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> ModbusLineSimulator:
        """A line with one slave, at the profile's baud rate."""
        device = SimulatedSlave(profile, site, slave=slave, fault_rates=fault_rates, clock=clock)
        return cls([device], baudrate=profile.baudrate)

    @property
    def path(self) -> str:
        return self._driver_pty.path

    def inject(self, fault: ModbusFault, count: int = 1, *, slave: int | None = None) -> None:
        """Apply `fault` to the next `count` requests to `slave` (the only one if omitted)."""
        if slave is None:
            if len(self.slaves) != 1:
                raise ValueError("name the slave: this line has several")
            slave = next(iter(self.slaves))
        self.slaves[slave].inject(fault, count)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending or not data:
            return data
        device = self.slaves.get(data[0])
        if device is None:
            # pymodbus 3.16 answers a request for an address it does not serve with
            # exception 04; a real slave at another address stays silent, so drop it.
            return b""
        fault = device.take_line_fault()
        return data if fault is None else corrupt(data, fault)

    def start(self) -> None:
        """Start the bridge and the server thread; return once the server listens."""
        if self._thread is not None:
            return
        self._bridge.start()
        self._thread = threading.Thread(target=self._run, name="modbus-line", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S) or self._failure is not None:
            failure = self._failure
            self.close()
            raise SimulatorStartError(f"Modbus line did not start: {failure}")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except (OSError, RuntimeError, ValueError, TypeError) as exc:
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = ModbusSerialServer(
            [s.device() for s in self.slaves.values()],
            framer=FramerType.RTU,
            port=self._server_pty.path,
            baudrate=self._baudrate,
            trace_packet=self._trace_packet,
        )
        await server.serve_forever(background=True)
        self._ready.set()
        await self._stopped.wait()
        await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._bridge.stop()

    def close(self) -> None:
        self.stop()
        self._server_pty.close()
        self._driver_pty.close()

    def __enter__(self) -> ModbusLineSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
