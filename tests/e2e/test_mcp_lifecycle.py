"""A whole experiment through an MCP client: the lifecycle, out-of-order refusals, the journal."""

from __future__ import annotations

import pytest
from mcp import Client

from tests.e2e.conftest import result_data, result_text
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio


async def test_the_n1_experiment_runs_end_to_end_with_refusals_out_of_order(client: Client) -> None:
    design = valid_design(duration="20s", success_criteria=["coverage_pct >= 100%", "recovery_time < 2 min"])
    plan = result_data(await client.call_tool("design_experiment", design))
    experiment_id = plan["experiment_id"]
    assert plan["state"] == "designed" and plan["next"] == "measure_steady_state"

    early = await client.call_tool(
        "inject_failure",
        {"experiment_id": experiment_id, "environment": "test", "target_component": "schedule"},
    )
    assert (
        early.is_error and "measure_steady_state" in result_text(early) and "'designed'" in result_text(early)
    )
    early_report = await client.call_tool("generate_report", {"experiment_id": experiment_id})
    assert early_report.is_error and "rolled back" in result_text(early_report)

    baseline = result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
    assert baseline["phase"] == "baseline" and baseline["steady"] is True

    drift = await client.call_tool(
        "inject_failure",
        {"experiment_id": experiment_id, "environment": "staging", "target_component": "schedule"},
    )
    assert drift.is_error and "context drift" in result_text(drift)

    injected = result_data(
        await client.call_tool(
            "inject_failure",
            {"experiment_id": experiment_id, "environment": "test", "target_component": "schedule"},
        )
    )
    assert injected["state"] == "injected" and injected["deadline"]

    during = result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
    assert during["phase"] == "during"
    coverage = [m for m in during["measurements"] if m["metric"] == "coverage_pct"]
    assert coverage and coverage[0]["value"] < 100, "removing the busiest faculty member must open a gap"

    rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
    assert rollback["status"] == "COMPLETE", rollback
    assert all(step["status"] == "COMPLETE" for step in rollback["steps"])
    assert rollback["recovery"]["recovered"] is True and rollback["integrity"]["intact"] is True
    again = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
    assert again["status"] == "COMPLETE" and again["repeated"] is True

    report = result_data(await client.call_tool("generate_report", {"experiment_id": experiment_id}))
    assert "## Chaos Experiment Report" in report["markdown"]
    assert "| Metric | Expected | Actual | Pass/Fail |" in report["markdown"]
    assert report["status"] == "HYPOTHESIS_REJECTED"

    record = result_data(await client.call_tool("get_experiment", {"experiment_id": experiment_id}))
    assert record["state"] == "reported"
    kinds = [e["kind"] for e in record["events"]]
    for kind in (
        "designed",
        "measurement",
        "fault_written_ahead",
        "faults_injected",
        "fault_reverted",
        "rollback",
        "reported",
    ):
        assert kind in kinds
    assert kinds.index("fault_written_ahead") < kinds.index("faults_injected")


async def test_the_kill_switch_reverts_and_refuses_until_re_armed(client: Client) -> None:
    plan = result_data(await client.call_tool("design_experiment", valid_design()))
    experiment_id = plan["experiment_id"]
    result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
    result_data(
        await client.call_tool(
            "inject_failure",
            {"experiment_id": experiment_id, "environment": "test", "target_component": "schedule"},
        )
    )
    aborted = result_data(await client.call_tool("abort_all", {"reason": "test of the kill switch"}))
    assert aborted["aborted"] == [experiment_id]
    assert all(s["status"] == "COMPLETE" for s in aborted["reverted"])
    state = result_data(await client.call_tool("get_experiment", {"experiment_id": experiment_id}))["state"]
    assert state == "aborted"

    second = result_data(await client.call_tool("design_experiment", valid_design()))["experiment_id"]
    result_data(await client.call_tool("measure_steady_state", {"experiment_id": second}))
    refused = await client.call_tool(
        "inject_failure", {"experiment_id": second, "environment": "test", "target_component": "schedule"}
    )
    assert refused.is_error and "chaos-mcp arm" in result_text(refused)
