"""The report's verdicts and gates as an MCP client reads them: what was compared, whose rows they are."""

from __future__ import annotations

import pytest
from mcp import Client

from tests.e2e.conftest import result_data
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio


async def test_the_report_says_what_integrity_compared_and_labels_the_servers_own_rows(
    client: Client,
) -> None:
    design = valid_design(duration="2s", success_criteria=["max_utilization < 0.8"])
    experiment_id = result_data(await client.call_tool("design_experiment", design))["experiment_id"]
    ref = {"experiment_id": experiment_id}
    result_data(await client.call_tool("measure_steady_state", ref))
    result_data(
        await client.call_tool(
            "inject_failure", ref | {"environment": "test", "target_component": "schedule", "wait": True}
        )
    )
    result_data(await client.call_tool("rollback", ref))
    report = result_data(await client.call_tool("generate_report", ref | {"format": "json"}))
    facts = report["json"]

    gates = {g["gate"]: g for g in facts["gates"]["mandatory"]}
    integrity = gates["No Data Corruption"]
    assert integrity["status"] == "PASS"
    assert integrity["evidence"].startswith("compared ") and "schedule.coverage_pct" in integrity["evidence"]
    assert gates["Hypothesis Tested"]["status"] == "PASS"
    assert "declared but never measured" not in gates["Hypothesis Tested"]["evidence"]

    origins = {r["metric"]: r["origin"] for r in facts["results"]}
    assert origins["max_utilization"] == "declared" and origins["recovery_time"] == "server"
    assert all(r["status"] in ("PASS", "FAIL") for r in facts["results"]), facts["results"]
    assert "| recovery_time (server's own observation) |" in report["markdown"]
