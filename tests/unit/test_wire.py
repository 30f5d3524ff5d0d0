"""One JSON-RPC message off the wire: within the bounds it reaches the SDK, otherwise it gets the error
JSON-RPC prescribes, naming the field and the limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp.shared.message import SessionMessage

from chaos_mcp.contract import MAX_DEPTH, MAX_ITEMS, MAX_MESSAGE_BYTES, MAX_STRING_CHARS
from chaos_mcp.wire import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, Rejected, read_message


def request(arguments: Any, request_id: Any = 7) -> bytes:
    params = {"name": "design_experiment", "arguments": arguments}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}).encode()


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("arguments", "field", "limit"),
    [
        ({"hypothesis": "h" * (MAX_STRING_CHARS + 1)}, "params.arguments.hypothesis", "65,536 per string"),
        ({"rollback_plan": ["s"] * (MAX_ITEMS + 1)}, "params.arguments.rollback_plan", "1,000 per list"),
        ({"parameters": {f"k{i}": i for i in range(MAX_ITEMS + 1)}}, "params.arguments.parameters", "1,000"),
        ({"system_state": deep(MAX_DEPTH)}, "params.arguments.system_state[0]", f"deeper than {MAX_DEPTH}"),
        ({"duration": 2**53}, "params.arguments.duration", "9,007,199,254,740,991"),
        ({"scenario": "\ud800"}, "params.arguments.scenario", "lone UTF-16 surrogate"),
        ({"k" * (MAX_STRING_CHARS + 1): 1}, "params.arguments.'kkkk", "65,536 per string"),
    ],
)
def test_an_argument_beyond_a_limit_is_refused_naming_its_field_and_the_limit(
    arguments: dict[str, Any], field: str, limit: str
) -> None:
    verdict = read_message(request(arguments))
    assert isinstance(verdict, Rejected) and verdict.reply is not None
    error = verdict.reply["error"]
    assert verdict.reply["id"] == 7 and error["code"] == INVALID_PARAMS
    assert error["message"].startswith(field) and limit in error["message"], error["message"]


def test_a_huge_integer_is_refused_without_ever_being_converted() -> None:
    raw = (
        b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","arguments":{"n":'
        + b"9" * 100_000
    )
    verdict = read_message(raw + b"}}}")
    assert isinstance(verdict, Rejected) and verdict.reply is not None
    assert verdict.reply["id"] == 3 and "100,000 digits" in verdict.reply["error"]["message"]


def test_arguments_at_every_limit_reach_the_sdk() -> None:
    arguments = {
        "hypothesis": "h" * MAX_STRING_CHARS,
        "rollback_plan": ["s"] * MAX_ITEMS,
        "system_state": deep(MAX_DEPTH - 4),
        "duration": 2**53 - 1,
        "scenario": "é😀",
    }
    verdict = read_message(request(arguments))
    assert isinstance(verdict, SessionMessage)
    assert verdict.message.model_dump(by_alias=True)["params"]["arguments"] == arguments


@pytest.mark.parametrize(
    ("raw", "code", "request_id"),
    [
        (b"{not json", PARSE_ERROR, None),
        (b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"\xc3"}', PARSE_ERROR, None),
        # Too deep for the parser, whether or not it would have closed: the id is read from the head.
        (b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":' + b"[" * 100_000, INVALID_REQUEST, 9),
        (b'{"id":9,"jsonrpc":"2.0","params":' + b"[" * 5_000 + b"]" * 5_000 + b"}", INVALID_REQUEST, 9),
        (b'{"jsonrpc":"2.0","id":"a-b","params":{}}', INVALID_REQUEST, "a-b"),
        (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', INVALID_REQUEST, None),
        (b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', INVALID_REQUEST, None),
    ],
)
def test_what_cannot_be_parsed_or_is_no_request_gets_the_prescribed_error(
    raw: bytes, code: int, request_id: Any
) -> None:
    verdict = read_message(raw)
    assert isinstance(verdict, Rejected) and verdict.reply is not None
    assert (verdict.reply["error"]["code"], verdict.reply["id"]) == (code, request_id)


def test_an_oversized_message_is_answered_with_the_id_its_head_carries() -> None:
    verdict = read_message(request({"hypothesis": "h" * MAX_MESSAGE_BYTES}, request_id="big-1"))
    assert isinstance(verdict, Rejected) and verdict.reply is not None
    assert (verdict.reply["error"]["code"], verdict.reply["id"]) == (INVALID_REQUEST, "big-1")
    assert f"{MAX_MESSAGE_BYTES:,} bytes" in verdict.reply["error"]["message"]


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"x": "\ud800"}},
        {"jsonrpc": "2.0", "id": 4, "result": {"content": ["x"] * (MAX_ITEMS + 1)}},
    ],
)
def test_a_notification_or_a_client_response_out_of_bounds_is_dropped_unanswered(
    message: dict[str, Any],
) -> None:
    verdict = read_message(json.dumps(message).encode())
    assert isinstance(verdict, Rejected) and verdict.reply is None and verdict.reason
