"""The schedule-domain scenarios and analyze_contingency through the MCP tools."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from tests.e2e.conftest import result_data, result_text
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio


async def during(client: Client, scenario: str, **parameters: Any) -> tuple[str, dict[str, Any]]:
    design = valid_design(scenario=scenario, parameters=parameters or None)
    experiment_id = result_data(await client.call_tool("design_experiment", design))["experiment_id"]
    assert result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))[
        "steady"
    ]
    result_data(
        await client.call_tool(
            "inject_failure",
            {"experiment_id": experiment_id, "environment": "test", "target_component": "schedule"},
        )
    )
    return experiment_id, result_data(
        await client.call_tool("measure_steady_state", {"experiment_id": experiment_id})
    )


async def finish(client: Client, experiment_id: str) -> None:
    rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
    assert rollback["status"] == "COMPLETE" and rollback["integrity"]["intact"], rollback


async def test_n1_removal_suggests_coverage_from_the_remaining_faculty(client: Client) -> None:
    experiment_id, measured = await during(client, "n1_removal")
    repair = measured["observation"]["suggested_repair"]
    assert repair["status"] in ("optimal", "feasible") and repair["assignments"]
    await finish(client, experiment_id)


async def test_n2_removal_takes_out_the_most_critical_pair(client: Client) -> None:
    experiment_id, measured = await during(client, "n2_removal")
    record = result_data(await client.call_tool("get_experiment", {"experiment_id": experiment_id}))
    assert record["faults"][0]["kind"] == "schedule.remove_faculty"
    assert "suggested_repair" in measured["observation"]
    await finish(client, experiment_id)


async def test_solver_timeout_answers_gracefully_under_a_forced_short_limit(client: Client) -> None:
    experiment_id, measured = await during(client, "solver_timeout", seconds=0.001)
    repair = measured["observation"]["suggested_repair"]
    assert repair["status"] in ("optimal", "feasible", "timeout_no_solution", "no_feasible_repair")
    assert repair["solve_time_s"] < 2
    await finish(client, experiment_id)


async def test_constraint_conflict_is_named_by_validation(client: Client) -> None:
    experiment_id, measured = await during(client, "constraint_conflict", conflict="missing_credential")
    conflicts = measured["observation"]["validation"]["conflicts"]
    assert conflicts and "credential" in str(conflicts[0]).lower()
    await finish(client, experiment_id)


async def test_bad_scenario_parameters_are_refused_with_what_is_accepted(client: Client) -> None:
    result = await client.call_tool(
        "design_experiment", valid_design(scenario="solver_timeout", parameters={"seconds": 60, "x": 1})
    )
    text = result_text(result)
    assert result.is_error and "parameters.seconds" in text and "parameters.x" in text


async def test_analyze_contingency_reports_n1_and_all_n2_pairs(client: Client) -> None:
    analysis = result_data(
        await client.call_tool("analyze_contingency", {"target_component": "schedule", "depth": 2})
    )
    assert analysis["summary"]
    refused = await client.call_tool("analyze_contingency", {"target_component": "nope", "depth": 3})
    assert refused.is_error and "depth" in result_text(refused)
