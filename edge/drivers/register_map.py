"""Modbus register maps as data: TOML profiles, validated at load, and the decoding they imply.

A profile lists, for each quantity a device reports: the register address, the register type
(holding: function 03, input: function 04), the data type (u16, s16, u32, s32, f32), the word
order of 32-bit values ("big": high word first, ABCD; "little": low word first, CDAB, common in
Chinese transmitters), and `value = raw * scale + offset` in the device's `unit`, which is
then converted to the quantity's canonical unit (schemas/quantities.py; gases in ppb or ppm
through schemas/gas_units.py at 25 °C). Bytes within a register are always big-endian, as the
Modbus specification requires.

Profiles shipped in edge/drivers/profiles/ are *typical* layouts, not any vendor's map: a
device's manual is the authority, and a site with another layout writes its own file and
names it with the `profile_path` option.
"""

from __future__ import annotations

import math
import struct
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Final, Literal, get_args

import msgspec

from edge.drivers.modbus_rtu import MAX_READ_COUNT, RegisterType
from edge.drivers.serial_port import Parity
from schemas.gas_units import Gas, MixingUnit, to_canonical
from schemas.quantities import SPECS, Quantity

DataType = Literal["u16", "s16", "u32", "s32", "f32"]
WordOrder = Literal["big", "little"]

WORDS: Final[dict[DataType, int]] = {"u16": 1, "s16": 1, "u32": 2, "s32": 2, "f32": 2}
_STRUCT: Final[dict[DataType, str]] = {
    "u16": ">H", "s16": ">h", "u32": ">I", "s32": ">i", "f32": ">f",
}  # fmt: skip

# Device units other than the canonical ones, as canonical units per device unit.
_LINEAR: Final[dict[tuple[str, str], float]] = {
    ("mg/m3", "ug/m3"): 1000.0,
    ("ug/m3", "mg/m3"): 0.001,
    ("mS/cm", "uS/cm"): 1000.0,
    ("mg/L", "ug/L"): 1000.0,
}
_MIXING: Final[dict[str, MixingUnit]] = {u: u for u in get_args(MixingUnit)}
_GASES: Final[dict[str, Gas]] = {g: g for g in get_args(Gas)}

PROFILE_PACKAGE: Final = "edge.drivers"
PROFILE_DIR: Final = "profiles"


class ProfileError(ValueError):
    """A register-map profile that cannot be used; the message names the file and entry."""


class UnitError(ValueError):
    """A device unit that cannot be converted to the quantity's canonical unit."""


def unit_factor(quantity: Quantity, unit: str) -> float:
    """Canonical units per device unit for `quantity` (all supported conversions are linear)."""
    canonical = SPECS[quantity].unit
    if unit == canonical:
        return 1.0
    gas = _GASES.get(quantity)
    mixing = _MIXING.get(unit)
    if gas is not None and mixing is not None:
        return to_canonical(gas, 1.0, mixing)
    factor = _LINEAR.get((unit, canonical))
    if factor is None:
        raise UnitError(f"cannot convert {unit!r} to {canonical!r} for {quantity}")
    return factor


class RegisterEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    quantity: Quantity
    address: Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
    register_type: RegisterType = "holding"
    data_type: DataType = "u16"
    word_order: WordOrder = "big"  # only meaningful for 32-bit types
    scale: float = 1.0
    offset: float = 0.0
    unit: str

    @property
    def words(self) -> int:
        return WORDS[self.data_type]


class Profile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    description: str
    # The line settings such devices ship with; the sensor's options override them.
    baudrate: int = 9600
    parity: Parity = "N"
    stopbits: Literal[1, 2] = 1
    registers: Annotated[list[RegisterEntry], msgspec.Meta(min_length=1)]


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: contiguous registers of one type, and the entries inside it."""

    register_type: RegisterType
    address: int
    count: int
    entries: tuple[RegisterEntry, ...]


def decode_words(words: Sequence[int], data_type: DataType, word_order: WordOrder) -> float:
    """The raw number held in 1 or 2 registers (each a big-endian 16-bit word)."""
    if len(words) != WORDS[data_type]:
        raise ValueError(f"{data_type} needs {WORDS[data_type]} registers, got {len(words)}")
    ordered = list(words) if word_order == "big" else list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in ordered)
    value: int | float = struct.unpack(_STRUCT[data_type], raw)[0]
    return float(value)


def entry_value(entry: RegisterEntry, words: Sequence[int]) -> float:
    """The entry's value in its quantity's canonical unit."""
    raw = decode_words(words, entry.data_type, entry.word_order)
    return (raw * entry.scale + entry.offset) * unit_factor(entry.quantity, entry.unit)


def read_plan(registers: Sequence[RegisterEntry]) -> tuple[ReadBlock, ...]:
    """Group entries into as few read requests as possible.

    Only *adjacent* registers are merged: many transmitters answer exception 02 (illegal data
    address) to a read that spans an address they do not map, so gaps are never read.
    """
    blocks: list[ReadBlock] = []
    ordered = sorted(registers, key=lambda e: (e.register_type, e.address))
    for entry in ordered:
        last = blocks[-1] if blocks else None
        if (
            last is not None
            and last.register_type == entry.register_type
            and last.address + last.count == entry.address
            and last.count + entry.words <= MAX_READ_COUNT
        ):
            blocks[-1] = ReadBlock(
                last.register_type, last.address, last.count + entry.words, (*last.entries, entry)
            )
        else:
            blocks.append(ReadBlock(entry.register_type, entry.address, entry.words, (entry,)))
    return tuple(blocks)


def block_values(block: ReadBlock, words: Sequence[int]) -> list[tuple[Quantity, float]]:
    values: list[tuple[Quantity, float]] = []
    for e in block.entries:
        start = e.address - block.address
        values.append((e.quantity, entry_value(e, words[start : start + e.words])))
    return values


def validate(profile: Profile, source: str) -> Profile:
    """Cross-field checks msgspec's types cannot express."""
    seen: set[Quantity] = set()
    taken: dict[tuple[RegisterType, int], Quantity] = {}
    for index, entry in enumerate(profile.registers):
        where = f"{source}: registers[{index}] ({entry.quantity})"
        if entry.quantity in seen:
            raise ProfileError(f"{where}: quantity listed twice")
        seen.add(entry.quantity)
        if entry.address + entry.words > 0x10000:
            raise ProfileError(f"{where}: {entry.data_type} at {entry.address} passes 0xFFFF")
        if not math.isfinite(entry.scale) or entry.scale == 0 or not math.isfinite(entry.offset):
            raise ProfileError(f"{where}: scale must be finite and non-zero, offset finite")
        try:
            unit_factor(entry.quantity, entry.unit)
        except UnitError as exc:
            raise ProfileError(f"{where}: {exc}") from None
        for word in range(entry.address, entry.address + entry.words):
            other = taken.setdefault((entry.register_type, word), entry.quantity)
            if other != entry.quantity:
                raise ProfileError(f"{where}: register {word} is also used by {other}")
    return profile


def parse_profile(text: str, source: str) -> Profile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None
    try:
        profile = msgspec.convert(raw, Profile, strict=True)
    except msgspec.ValidationError as exc:
        raise ProfileError(f"{source}: {exc}") from None
    return validate(profile, source)


def profile_names() -> list[str]:
    """The profiles shipped with envnet (edge/drivers/profiles/*.toml)."""
    folder = resources.files(PROFILE_PACKAGE).joinpath(PROFILE_DIR)
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(name: str) -> Profile:
    """A shipped profile by name, e.g. "typical-water-sonde"."""
    if name not in profile_names():
        raise ProfileError(f"no profile {name!r} (shipped: {', '.join(profile_names())})")
    resource = resources.files(PROFILE_PACKAGE).joinpath(PROFILE_DIR, f"{name}.toml")
    return parse_profile(resource.read_text(encoding="utf-8"), f"profile {name}")


def load_named_or_file(name: str | None, path: str | None) -> Profile:
    """The shipped profile `name`, or else the profile file at `path` (options and device
    specs name one of the two)."""
    if name is not None:
        return load_profile(name)
    return load_profile_file(Path(path or ""))


def load_profile_file(path: Path) -> Profile:
    """A site's own profile file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    return parse_profile(text, str(path))
