"""The tool contract as an MCP client sees it, in both protocol eras."""

from __future__ import annotations

import pytest
from mcp import Client

from chaos_mcp.contract import REQUIRED_FIELDS
from tests.e2e.conftest import result_data, result_text
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio

TOOLS = {
    "design_experiment",
    "measure_steady_state",
    "inject_failure",
    "rollback",
    "generate_report",
    "abort_all",
    "list_targets",
    "list_scenarios",
    "get_experiment",
    "list_experiments",
    "analyze_contingency",
}


async def test_every_tool_is_listed_with_flat_described_inputs_and_honest_annotations(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    design = tools["design_experiment"].input_schema
    assert sorted(design["required"]) == sorted(REQUIRED_FIELDS)
    assert "success_criteria" in design["properties"] and "success_criteria" not in design["required"]
    assert "$ref" not in str(design)
    for tool in tools.values():
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    assert tools["inject_failure"].annotations.destructive_hint is True
    assert tools["list_targets"].annotations.read_only_hint is True
    assert tools["rollback"].annotations.idempotent_hint is True


async def test_an_empty_design_names_all_seven_required_fields_in_one_error(client: Client) -> None:
    result = await client.call_tool("design_experiment", {})
    assert result.is_error
    text = result_text(result)
    for name in REQUIRED_FIELDS:
        assert f"- {name}: required and missing" in text
    assert "Traceback" not in text


async def test_vague_input_is_refused_field_by_field(client: Client) -> None:
    result = await client.call_tool(
        "design_experiment",
        valid_design(
            hypothesis="When [failure condition], the system should [expected behavior].",
            duration="1 hour",
            target_component="prod",
            rollback_plan=[],
        ),
    )
    text = result_text(result)
    assert result.is_error
    for name in ("hypothesis", "duration", "target_component", "rollback_plan"):
        assert f"- {name}:" in text
    assert "configured targets: schedule (schedule, test)" in text


async def test_a_dry_run_returns_the_plan_without_recording_anything(client: Client) -> None:
    plan = result_data(await client.call_tool("design_experiment", valid_design(dry_run=True)))
    assert plan["experiment_id"] is None and plan["faults"]
    listed = result_data(await client.call_tool("list_experiments", {}))
    assert listed["experiments"] == []


async def test_read_only_tools_describe_targets_and_scenarios(client: Client) -> None:
    targets = result_data(await client.call_tool("list_targets", {}))["targets"]
    assert [t["name"] for t in targets] == ["schedule"]
    scenarios = {s["name"] for s in result_data(await client.call_tool("list_scenarios", {}))["scenarios"]}
    assert {"n1_removal", "n2_removal"} <= scenarios


async def test_unknown_experiments_get_an_error_that_says_what_to_do(client: Client) -> None:
    result = await client.call_tool("get_experiment", {"experiment_id": "exp-nope"})
    assert result.is_error and "design_experiment" in result_text(result)
    result = await client.call_tool("measure_steady_state", {})
    assert result.is_error and "experiment_id: required and missing" in result_text(result)


async def test_a_misspelt_field_is_reported_not_silently_ignored(client: Client) -> None:
    result = await client.call_tool(
        "design_experiment", valid_design(sucess_criteria=["recovery_time < 2 min"])
    )
    text = result_text(result)
    assert result.is_error and "- sucess_criteria: unknown field; accepted fields:" in text
    assert "success_criteria" in text
    result = await client.call_tool("get_experiment", {"experiment_id": "exp-x", "verbose": True})
    assert result.is_error and "- verbose: unknown field; accepted fields: experiment_id" in result_text(
        result
    )
