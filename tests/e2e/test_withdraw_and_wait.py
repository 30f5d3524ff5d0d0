"""The agent's loose ends through an MCP client: withdrawing an experiment, `wait: true` after the window."""

from __future__ import annotations

from datetime import datetime

import pytest
from mcp import Client

from tests.e2e.conftest import result_data, result_text
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio
INJECT = {"environment": "test", "target_component": "schedule"}


async def test_rollback_withdraws_a_baselined_experiment_and_its_target_is_used_by_another_at_once(
    client: Client,
) -> None:
    first = result_data(await client.call_tool("design_experiment", valid_design()))["experiment_id"]
    ref = {"experiment_id": first}
    assert result_data(await client.call_tool("measure_steady_state", ref))["steady"] is True

    withdrawn = result_data(await client.call_tool("rollback", ref))
    assert withdrawn["state"] == "cancelled" and withdrawn["status"] == "WITHDRAWN"
    assert withdrawn["withdrawn"] is True and withdrawn["steps"] == []
    assert "nothing was injected" in withdrawn["note"] and "schedule" in withdrawn["note"]
    assert "design_experiment" in withdrawn["next"]

    record = result_data(await client.call_tool("get_experiment", ref))
    assert record["state"] == "cancelled" and record["faults_in_force"] == []
    assert any(e["kind"] == "cancelled" for e in record["events"])
    listed = result_data(await client.call_tool("list_experiments", {"state": "cancelled"}))
    assert [e["experiment_id"] for e in listed["experiments"]] == [first]

    # The withdrawn experiment can no longer be injected, measured or reported; a repeat is harmless.
    refused = await client.call_tool("inject_failure", ref | INJECT)
    assert refused.is_error and "'cancelled'" in result_text(refused) and "withdrawn" in result_text(refused)
    assert (await client.call_tool("measure_steady_state", ref)).is_error
    report = await client.call_tool("generate_report", ref)
    assert report.is_error and "design_experiment" in result_text(report)
    again = result_data(await client.call_tool("rollback", ref))
    assert again["state"] == "cancelled" and again["repeated"] is True

    # Its target is free: another experiment on it goes through to injection at once.
    second = result_data(await client.call_tool("design_experiment", valid_design()))["experiment_id"]
    other = {"experiment_id": second}
    assert result_data(await client.call_tool("measure_steady_state", other))["steady"] is True
    injected = result_data(await client.call_tool("inject_failure", other | INJECT))
    assert injected["state"] == "injected"
    rolled = result_data(await client.call_tool("rollback", other))
    assert rolled["state"] == "rolled_back"


async def test_a_designed_experiment_is_withdrawn_without_a_baseline(client: Client) -> None:
    experiment_id = result_data(await client.call_tool("design_experiment", valid_design()))["experiment_id"]
    withdrawn = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
    assert withdrawn["state"] == "cancelled" and "it was designed" in withdrawn["note"]


async def test_inject_with_wait_returns_the_state_after_the_deadline_and_the_real_next_step(
    client: Client,
) -> None:
    design = valid_design(duration="2s", success_criteria=["coverage_pct >= 100%"])
    experiment_id = result_data(await client.call_tool("design_experiment", design))["experiment_id"]
    ref = {"experiment_id": experiment_id}
    result_data(await client.call_tool("measure_steady_state", ref))

    waited = result_data(await client.call_tool("inject_failure", ref | INJECT | {"wait": True}))
    window = waited["window"]
    assert window["ended"] == "reverted at the deadline" and window["faults_in_force"] == []
    reverted_at = datetime.fromisoformat(window["reverted_at"]).timestamp()
    assert reverted_at >= datetime.fromisoformat(waited["deadline"]).timestamp() - 0.01
    assert "measure_steady_state" not in waited["next"] and waited["next"].startswith("rollback")
    assert window["samples"] >= 1
    [coverage] = window["criteria_so_far"]
    assert coverage["metric"] == "coverage_pct" and coverage["status"] == "FAIL", coverage
    assert coverage["observations"] >= 1 and coverage["worst"] != "not measured"

    rolled = result_data(await client.call_tool("rollback", ref))
    assert rolled["state"] == "rolled_back"


async def test_inject_with_wait_returns_aborted_with_the_condition_that_fired(client: Client) -> None:
    design = valid_design(duration="20s", abort_conditions=["coverage_pct < 100%"])
    experiment_id = result_data(await client.call_tool("design_experiment", design))["experiment_id"]
    ref = {"experiment_id": experiment_id}
    result_data(await client.call_tool("measure_steady_state", ref))

    waited = result_data(await client.call_tool("inject_failure", ref | INJECT | {"wait": True}))
    assert waited["state"] == "aborted"
    assert waited["window"]["ended"] == "aborted"
    assert waited["window"]["reason"].startswith("abort condition held: coverage_pct < 100%")
    assert waited["window"]["faults_in_force"] == []
    assert waited["next"].startswith("rollback")
    assert datetime.fromisoformat(waited["window"]["reverted_at"]) < datetime.fromisoformat(
        waited["deadline"]
    )
