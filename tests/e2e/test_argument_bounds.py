"""The argument bounds hold for every transport, the in-memory one included (a backstop behind wire.py)."""

from __future__ import annotations

import pytest
from mcp import Client

from tests.e2e.conftest import result_text

pytestmark = pytest.mark.anyio


async def test_an_oversized_argument_is_refused_by_the_tool_naming_the_field_and_limit(
    client: Client,
) -> None:
    refused = await client.call_tool("list_experiments", {"state": "s" * 70_000})
    assert refused.is_error
    text = result_text(refused)
    assert "state: a string of 70,000 characters" in text and "65,536 per string" in text
    deep: list[object] = []
    for _ in range(40):
        deep = [deep]
    nested = await client.call_tool("design_experiment", {"system_state": {"a": deep}})
    assert nested.is_error and "deeper than 32 levels" in result_text(nested)
