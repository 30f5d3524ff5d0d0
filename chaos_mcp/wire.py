"""One JSON-RPC message off the wire: on to the SDK, or answered here with the error the spec prescribes.

Shared by the stdio and HTTP transports, so no input is dropped in silence: a message that cannot be
parsed gets -32700 with id null; one that parses but is no JSON-RPC message gets -32600; one whose
params exceed the argument bounds (contract.py) gets -32602, both with the request's id when it can
be read. Notifications and responses are never answered (JSON-RPC forbids it); the transports log
every rejection either way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NoReturn

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from chaos_mcp.contract import (
    LIMITS_TEXT,
    MAX_MESSAGE_BYTES,
    MAX_SAFE_INTEGER,
    OversizedNumber,
    bounds_violation,
)

_INLINE_BYTES = 64 * 1024
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32602, -32603
RequestId = int | str

# The id of a message we could not parse whole, read from its head when "id" comes before anything
# nested (clients write jsonrpc, id, method, params in that order); otherwise the id stays unknown.
_HEAD_ID = re.compile(
    rb'\s*\{\s*(?:"[^"\\]{0,64}"\s*:\s*(?:"[^"\\]{0,256}"|[-\w.+]{1,32})\s*,\s*){0,8}?'
    rb'"id"\s*:\s*(?:(?P<number>-?\d{1,16})|"(?P<text>[^"\\]{0,256})")\s*[,}]'
)


@dataclass(frozen=True)
class Rejected:
    """A message answered here; `reply` is None when JSON-RPC allows no answer (a notification)."""

    reply: dict[str, Any] | None
    reason: str


Inbound = SessionMessage | Rejected


def error_reply(request_id: RequestId | None, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def read_message(raw: bytes) -> Inbound:
    """Check one message's size, encoding, JSON, bounds and JSON-RPC shape; the SDK sees only what passes."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return oversized(raw[:4096], len(raw))
    try:
        parsed = json.loads(raw.decode("utf-8"), parse_int=_bounded_int, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        return _parse_error(f"the message is not valid UTF-8 (byte {exc.start}); send UTF-8 JSON")
    except RecursionError:
        return _rejected(
            _head_id(raw), INVALID_REQUEST, f"the message is nested too deep to read; limits: {LIMITS_TEXT}"
        )
    except ValueError as exc:
        return _parse_error(f"the message is not valid JSON ({_short(exc)}); send one JSON-RPC object")
    if not isinstance(parsed, dict):
        return _rejected(None, INVALID_REQUEST, "expected one JSON-RPC object; batches are not supported")
    return _checked(parsed)


async def read_message_off_loop(raw: bytes) -> Inbound:
    """`read_message`, in a worker thread when the message is large enough to hold up the event loop."""
    if len(raw) <= _INLINE_BYTES:
        return read_message(raw)
    return await anyio.to_thread.run_sync(read_message, raw)


def oversized(head: bytes, size: int) -> Rejected:
    return _rejected(
        _head_id(head),
        INVALID_REQUEST,
        f"the message is {size:,} bytes; the limit is {MAX_MESSAGE_BYTES:,} bytes per message "
        f"(limits: {LIMITS_TEXT})",
    )


def _checked(message: dict[str, Any]) -> Inbound:
    request_id = _readable_id(message)
    # JSON-RPC answers requests and malformed messages, never notifications or a client's responses.
    answer = ("method" in message and "id" in message) or not ({"method", "result", "error"} & message.keys())
    violation = bounds_violation(message)
    if violation is not None:
        where, what = violation
        code = INVALID_PARAMS if where.startswith("params") and "method" in message else INVALID_REQUEST
        return _rejected(request_id, code, f"{where}: {what} (limits: {LIMITS_TEXT})", answer=answer)
    if "id" in message and request_id is None:
        # Otherwise the SDK would read a request with an id it cannot use as a notification.
        return _rejected(None, INVALID_REQUEST, '"id" must be a string or an integer within ±(2^53 - 1)')
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_python(message, by_name=False))
    except ValidationError:
        return _rejected(
            request_id,
            INVALID_REQUEST,
            'not a JSON-RPC 2.0 message: a request needs "jsonrpc": "2.0", an "id" (string or integer) and '
            'a "method" string; a notification has no id; "params" must be an object',
            answer=answer,
        )


def _rejected(request_id: RequestId | None, code: int, message: str, *, answer: bool = True) -> Rejected:
    reply = error_reply(request_id, code, message) if answer else None
    return Rejected(reply, message)


def _parse_error(message: str) -> Rejected:
    return Rejected(error_reply(None, PARSE_ERROR, message), message)


def _readable_id(message: dict[str, Any]) -> RequestId | None:
    value = message.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER:
        return value
    if isinstance(value, str) and bounds_violation(value) is None:
        return value
    return None


def _head_id(head: bytes) -> RequestId | None:
    found = _HEAD_ID.match(head)
    if found is None:
        return None
    if found["number"] is not None:
        return int(found["number"])
    try:
        return found["text"].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _bounded_int(digits: str) -> int | OversizedNumber:
    # int() of a long digit string is quadratic (and refused past 4,300 digits); never convert one.
    return int(digits) if len(digits) <= 20 else OversizedNumber(len(digits.lstrip("-")))


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _short(exc: ValueError) -> str:
    return str(exc).split(":", 1)[0][:120]
