"""Generate the committed JSON Schema files from the Python types.

    python -m schemas.export          # rewrite schemas/json/*.schema.json
    python -m schemas.export --check  # exit 1 if the committed files are stale

msgspec derives the structure. What the types check in `__post_init__` (a quantity's canonical
unit and physical bounds) is added here from the same table, as if/then clauses, so that
firmware validating against the JSON Schema alone applies the same rules.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

import msgspec

from schemas import codec
from schemas.quantities import SPECS

JSON_DIR: Final = Path(__file__).parent / "json"
BASE_ID: Final = "https://envnet.dev/schemas/v1/"

MESSAGES: Final[dict[str, tuple[type[Any], str]]] = {
    "readings": (codec.READINGS.message_type, "A batch of readings from one node"),
    "status": (codec.STATUS.message_type, "A node's retained status, and its last will"),
    "ack": (codec.ACK.message_type, "The aggregator's acknowledgement of stored batches"),
    "alert": (codec.ALERT.message_type, "The retained current state of one alert"),
    "alert-event": (codec.ALERT_EVENT.message_type, "One alert transition"),
    "alert-command": (
        codec.ALERT_COMMAND.message_type,
        "An operator's command about an open alert",
    ),
    "refusal": (codec.REFUSAL.message_type, "Why the aggregator refused a node's message"),
}


def _quantity_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for quantity, spec in SPECS.items():
        rules.append(
            {
                "if": {"properties": {"quantity": {"const": quantity}}},
                "then": {
                    "properties": {
                        "unit": {"const": spec.unit},
                        "value": {"minimum": spec.lower, "maximum": spec.upper},
                    }
                },
            }
        )
    return rules


def schema_for(name: str) -> dict[str, Any]:
    message_type, title = MESSAGES[name]
    generated = msgspec.json.schema(message_type)
    defs: dict[str, Any] = generated.get("$defs", {})
    if "Reading" in defs:
        defs["Reading"]["allOf"] = _quantity_rules()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_ID}{name}.schema.json",
        "title": title,
        **generated,
    }


def render(name: str) -> str:
    return json.dumps(schema_for(name), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if committed files are stale")
    args = parser.parse_args(argv)
    stale = []
    for name in MESSAGES:
        path = JSON_DIR / f"{name}.schema.json"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        sys.stderr.write(f"stale: {path} (run python -m schemas.export)\n")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
