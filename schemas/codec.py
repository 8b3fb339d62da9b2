"""Encoding and decoding of contract messages, with errors that say what was wrong."""

from __future__ import annotations

from typing import Final, Generic, Literal, TypeVar

import msgspec

from schemas.messages import (
    AckMessage,
    Alert,
    AlertCommand,
    AlertEvent,
    ReadingsMessage,
    RefusalMessage,
    StatusMessage,
)

T = TypeVar("T")

ErrorKind = Literal["malformed", "invalid"]


# msgspec decodes nested JSON recursively and raises RecursionError (not a DecodeError) past
# Python's recursion limit: `[[[…]]]` 100,000 levels deep took the aggregator down (issue 9).
NESTED_TOO_DEEPLY: Final = "JSON nested too deeply"


class ContractError(ValueError):
    """A payload that breaks the contract. `kind` is a stable label for metrics:
    'malformed' (not JSON at all, or nested too deeply to parse) or 'invalid' (JSON that
    breaks the schema)."""

    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: ErrorKind = kind
        self.detail = detail


class Codec(Generic[T]):
    """A typed decoder and encoder for one message type."""

    def __init__(self, message_type: type[T]) -> None:
        self.message_type = message_type
        self._decoder = msgspec.json.Decoder(message_type)
        self._encoder = msgspec.json.Encoder()

    def decode(self, payload: bytes | bytearray | memoryview) -> T:
        try:
            return self._decoder.decode(payload)
        except msgspec.ValidationError as exc:
            raise ContractError("invalid", str(exc)) from None
        except msgspec.DecodeError as exc:
            raise ContractError("malformed", str(exc)) from None
        except RecursionError:
            raise ContractError("malformed", NESTED_TOO_DEEPLY) from None

    def encode(self, message: T) -> bytes:
        return self._encoder.encode(message)


READINGS: Final = Codec(ReadingsMessage)
STATUS: Final = Codec(StatusMessage)
ACK: Final = Codec(AckMessage)
ALERT: Final = Codec(Alert)
ALERT_EVENT: Final = Codec(AlertEvent)
ALERT_COMMAND: Final = Codec(AlertCommand)
REFUSAL: Final = Codec(RefusalMessage)
