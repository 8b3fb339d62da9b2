"""The contract: committed JSON Schema files, Python types and examples all agree."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import codec
from schemas.codec import Codec, ContractError
from schemas.export import JSON_DIR, MESSAGES, render
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage
from schemas.quantities import QUANTITIES, SPECS, STATISTICS, Quantity

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"


def schema_name(path: Path) -> str:
    # alert-event must be tried before alert.
    for name in sorted(MESSAGES, key=len, reverse=True):
        if path.stem.startswith(name):
            return name
    raise AssertionError(f"example {path.name} names no schema")


def committed(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((JSON_DIR / f"{name}.schema.json").read_text())
    return loaded


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_committed_schema_matches_python_types(name: str) -> None:
    assert (JSON_DIR / f"{name}.schema.json").read_text() == render(name), (
        "stale schema file: run `python -m schemas.export`"
    )


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_committed_schema_is_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(committed(name))


def examples(kind: str) -> list[Path]:
    found = sorted((EXAMPLES / kind).glob("*.json"))
    assert found, f"no {kind} examples"
    return found


@pytest.mark.parametrize("path", examples("valid"), ids=lambda p: p.name)
def test_valid_examples_pass_both_validators(path: Path) -> None:
    name = schema_name(path)
    document = json.loads(path.read_text())
    jsonschema.validate(document, committed(name))
    Codec(MESSAGES[name][0]).decode(path.read_bytes())


@pytest.mark.parametrize("path", examples("invalid"), ids=lambda p: p.name)
def test_invalid_examples_fail_both_validators(path: Path) -> None:
    name = schema_name(path)
    document = json.loads(path.read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, committed(name))
    with pytest.raises(ContractError) as raised:
        Codec(MESSAGES[name][0]).decode(path.read_bytes())
    assert raised.value.kind == "invalid"


def reading_json(**overrides: object) -> bytes:
    reading = {
        "ts": 1796000400000,
        "quantity": "o3",
        "value": 80.0,
        "unit": "ug/m3",
        "period_s": 60,
        "stat": "mean",
        "sensor": "s1",
    }
    reading.update(overrides)
    message = {"schema": READINGS_SCHEMA, "node": "n1", "seq": 1, "readings": [reading]}
    return json.dumps(message).encode()


def test_wrong_unit_error_names_quantity_and_canonical_unit() -> None:
    with pytest.raises(ContractError) as raised:
        codec.READINGS.decode(reading_json(quantity="co", unit="ug/m3", value=800))
    assert "'ug/m3' is not the canonical unit 'mg/m3' of co" in str(raised.value)
    assert "$.readings[0]" in str(raised.value)


def test_out_of_bounds_error_names_the_bounds() -> None:
    with pytest.raises(ContractError, match=r"rh value 130\.0 is outside the physical bounds"):
        codec.READINGS.decode(reading_json(quantity="rh", unit="%", value=130.0))


def test_not_json_is_malformed() -> None:
    with pytest.raises(ContractError) as raised:
        codec.READINGS.decode(b"\x00\xff not json")
    assert raised.value.kind == "malformed"


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    message = codec.READINGS.decode(reading_json(raw=12.5, calibration="v3"))
    assert message.readings[0].value == 80.0


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_jsonschema_and_types_agree_on_each_quantity_unit(quantity: Quantity) -> None:
    spec = SPECS[quantity]
    schema = committed("readings")
    for unit in sorted({s.unit for s in SPECS.values()}):
        payload = reading_json(quantity=quantity, unit=unit, value=spec.lower)
        types_ok = _decodes(payload)
        schema_ok = jsonschema.Draft202012Validator(schema).is_valid(json.loads(payload))
        assert types_ok == schema_ok == (unit == spec.unit), (quantity, unit)


def _decodes(payload: bytes) -> bool:
    try:
        codec.READINGS.decode(payload)
    except ContractError:
        return False
    return True


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    quantity = draw(st.sampled_from(QUANTITIES))
    spec = SPECS[quantity]
    value = draw(st.floats(spec.lower, spec.upper, allow_nan=False))
    return Reading(
        ts=draw(st.integers(946_684_800_000, 4_102_444_799_999)),
        quantity=quantity,
        value=value,
        unit=spec.unit,
        period_s=draw(st.integers(1, 86400)),
        stat=draw(st.sampled_from(STATISTICS)),
        sensor=draw(st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z")),
        flags=tuple(draw(st.lists(st.sampled_from(["simulated", "incomplete"]), max_size=2))),
    )


@given(st.lists(readings(), min_size=1, max_size=20), st.integers(1, 2**53 - 1))
def test_encode_decode_round_trip(batch: list[Reading], seq: int) -> None:
    message = ReadingsMessage(schema=READINGS_SCHEMA, node="n-1", seq=seq, readings=batch)
    encoded = codec.READINGS.encode(message)
    assert codec.READINGS.decode(encoded) == message
    jsonschema.validate(json.loads(encoded), committed("readings"))


@given(st.binary(max_size=300))
def test_decoder_raises_only_contract_errors(payload: bytes) -> None:
    with contextlib.suppress(ContractError):
        codec.READINGS.decode(payload)


@given(st.dictionaries(st.text(max_size=10), st.from_type(type(None)) | st.integers() | st.text()))
def test_decoder_rejects_arbitrary_objects_cleanly(document: dict[str, object]) -> None:
    with pytest.raises(ContractError) as raised:
        codec.READINGS.decode(msgspec.json.encode(document))
    assert raised.value.kind == "invalid"
