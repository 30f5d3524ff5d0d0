"""503, not 500: status-class criteria measured against the real API while its database is gone.

The API answers /health with 503 when its database fails; the HTTP probe counts answers per status
(`responses{status=…}`), so `api.responses{status="503"} >= 1` and `api.responses{status="500"} == 0`
are judged on what the service really answered, and a status it never gave counts zero.
"""

from __future__ import annotations

import pytest
from mcp import Client

from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data
from tests.integration.conftest import Stack, design

pytestmark = pytest.mark.anyio


async def test_status_class_criteria_are_judged_on_the_answers_the_api_gave_during_the_window(
    stack: Stack,
) -> None:
    raw = design(
        duration="3s",
        success_criteria=[
            'api.responses{status="503"} >= 1',
            {"metric": "api.responses", "labels": {"status": "500"}, "op": "==", "threshold": 0},
            'api.responses{status="418"} >= 1',
        ],
    )
    async with Client(build_server(stack.settings), mode="legacy") as client:
        experiment_id = result_data(await client.call_tool("design_experiment", raw))["experiment_id"]
        ref = {"experiment_id": experiment_id}
        assert result_data(await client.call_tool("measure_steady_state", ref))["steady"]
        inject = ref | {"environment": "test", "target_component": "db", "wait": True}
        result_data(await client.call_tool("inject_failure", inject))
        result_data(await client.call_tool("rollback", ref))
        report = result_data(await client.call_tool("generate_report", ref | {"format": "json"}))["json"]
    rows = {r["criterion"]: r for r in report["results"] if r["metric"] == "api.responses"}
    got_503 = rows['api.responses{status="503"} >= 1']
    assert got_503["status"] == "PASS" and got_503["actual"] >= 1 and got_503["observations"] >= 2, got_503
    no_500 = rows['api.responses{status="500"} == 0']
    assert no_500["status"] == "PASS" and no_500["actual"] == 0 and no_500["measured"], no_500
    teapot = rows['api.responses{status="418"} >= 1']
    assert teapot["status"] == "FAIL" and teapot["actual"] == 0, "a status never answered is measured as zero"
