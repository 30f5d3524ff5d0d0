"""Production needs the operator's policy and a person's approval, asked through MCP elicitation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from chaos_mcp.config import parse_settings
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, result_text, settings_with_journal
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio

PRODUCTION = """
[policy]
allow_production = {allow}

[targets.schedule]
kind = "schedule"
environment = "production"
"""


def production(tmp_path: Path, allow: bool) -> Any:
    return settings_with_journal(tmp_path, parse_settings(PRODUCTION.format(allow=str(allow).lower())))


def answering(action: str, approve: bool = True) -> Any:
    asked: list[str] = []

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=action, content={"approve": approve} if action == "accept" else None)

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


async def baselined(client: Client) -> str:
    plan = result_data(await client.call_tool("design_experiment", valid_design(environment="production")))
    result_data(await client.call_tool("measure_steady_state", {"experiment_id": plan["experiment_id"]}))
    return str(plan["experiment_id"])


def inject_args(experiment_id: str) -> dict[str, Any]:
    return {"experiment_id": experiment_id, "environment": "production", "target_component": "schedule"}


async def test_production_is_refused_at_design_without_allow_production(
    tmp_path: Path, state_dir: Path, era: str
) -> None:
    async with Client(build_server(production(tmp_path, False)), mode=era) as client:  # type: ignore[arg-type]
        result = await client.call_tool("design_experiment", valid_design(environment="production"))
        assert result.is_error and "allow_production" in result_text(result)


async def test_an_approving_person_lets_the_injection_through(
    tmp_path: Path, state_dir: Path, era: str
) -> None:
    callback = answering("accept", approve=True)
    server = build_server(production(tmp_path, True))
    async with Client(server, mode=era, elicitation_callback=callback) as client:  # type: ignore[arg-type]
        experiment_id = await baselined(client)
        injected = result_data(await client.call_tool("inject_failure", inject_args(experiment_id)))
        assert injected["approvals"] == ["approved by a person: production"]
        assert callback.asked and "production" in callback.asked[0]
        result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))


@pytest.mark.parametrize(("action", "approve"), [("decline", False), ("cancel", False), ("accept", False)])
async def test_a_person_who_declines_stops_the_injection(
    tmp_path: Path, state_dir: Path, era: str, action: str, approve: bool
) -> None:
    server = build_server(production(tmp_path, True))
    async with Client(server, mode=era, elicitation_callback=answering(action, approve)) as client:  # type: ignore[arg-type]
        experiment_id = await baselined(client)
        result = await client.call_tool("inject_failure", inject_args(experiment_id))
        assert result.is_error and "declined" in result_text(result)
        record = result_data(await client.call_tool("get_experiment", {"experiment_id": experiment_id}))
        assert record["state"] == "baselined" and record["faults"] == []


async def test_a_client_that_cannot_ask_a_person_gets_a_refusal_saying_what_to_do(
    tmp_path: Path, state_dir: Path, era: str
) -> None:
    async with Client(build_server(production(tmp_path, True)), mode=era) as client:  # type: ignore[arg-type]
        experiment_id = await baselined(client)
        result = await client.call_tool("inject_failure", inject_args(experiment_id))
        text = result_text(result)
        assert result.is_error and "cannot ask" in text and "elicitation" in text
