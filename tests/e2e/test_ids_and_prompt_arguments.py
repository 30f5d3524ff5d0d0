"""Ids with control characters and prompts without their arguments are refused at the edge (issue 13).

The outside attacker's finding 5: a NUL in `experiment_id` reached a PostgreSQL journal and came back
as "failed unexpectedly (DataError)"; prompts/get without its arguments answered code 0.
"""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from tests.e2e.conftest import result_text

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("get_experiment", {"experiment_id": "exp-\x00x"}, "experiment_id"),
        ("rollback", {"experiment_id": "exp-1\x00"}, "experiment_id"),
        ("generate_report", {"experiment_id": "\x00"}, "experiment_id"),
        ("list_experiments", {"state": "injected\x00"}, "state"),
    ],
)
async def test_a_control_character_in_an_id_or_state_is_refused_naming_the_field(
    client: Client, tool: str, arguments: dict[str, str], field: str
) -> None:
    result = await client.call_tool(tool, arguments)
    text = result_text(result)
    assert result.is_error and f"- {field}:" in text and "pattern" in text, text
    assert "DataError" not in text and "recover" not in text, text


async def test_prompts_get_without_its_required_arguments_is_invalid_params_naming_them(
    client: Client,
) -> None:
    with pytest.raises(MCPError) as caught:
        await client.get_prompt("chaos_experiment_template", {"name": "x"})
    assert caught.value.code == INVALID_PARAMS
    assert "condition, behavior, target_component" in caught.value.message, caught.value.message
    assert "Traceback" not in caught.value.message
