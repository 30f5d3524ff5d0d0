"""Live supervision against a small realistic application: an API over a PostgreSQL pool and a Redis cache.

The story of issue 4: during `db_connection_loss` the API's error rate rises (the Redis cache hides
the loss from /api/v1/schedules for a few seconds while /health reports it at once); when the cached
copy expires the error rate passes the abort condition, the supervisor reverts on its own and the
experiment becomes `aborted`; rollback measures recovery; the blast radius shows the database and the
API moved while Redis did not.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from mcp import Client

from chaos_mcp.engine.supervisor import sampling_interval
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data
from tests.integration.conftest import CACHE_TTL, Stack, design

pytestmark = pytest.mark.anyio
SLACK = 0.5  # scheduling slack allowed on top of the sampling interval between two samples


def overall(measurement: dict[str, Any], probe: str, metric: str) -> float | None:
    for m in measurement["measurements"]:
        if m["probe"] == probe and m["metric"] == metric and not m["labels"]:
            return float(m["value"])
    return None


async def wait_for_state(client: Client, experiment_id: str, state: str, within: float) -> dict[str, Any]:
    with anyio.fail_after(within):
        while True:
            record = result_data(await client.call_tool("get_experiment", {"experiment_id": experiment_id}))
            if record["state"] == state:
                return record
            await anyio.sleep(0.1)


def of_kind(record: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in record["events"] if e["kind"] == kind]


def at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["at"]).timestamp()


def database_accepts_connections(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


async def test_db_connection_loss_raises_the_api_error_rate_and_the_abort_condition_reverts_on_its_own(
    stack: Stack,
) -> None:
    raw = design(
        abort_conditions=["api.error_rate > 50%"],
        detection_signals=["api.healthy == 0"],
        success_criteria=["recovery_time < 30 s", "detection_time < 10 s"],
        steady_state=[
            "api.error_rate < 0.1%",
            "api.healthy == 1",
            "db.error_rate < 0.1%",
            "cache.error_rate < 0.1%",
        ],
    )
    async with Client(build_server(stack.settings), mode="legacy") as client:
        experiment_id = result_data(await client.call_tool("design_experiment", raw))["experiment_id"]
        ref = {"experiment_id": experiment_id}
        baseline = result_data(await client.call_tool("measure_steady_state", ref))
        assert baseline["phase"] == "baseline" and baseline["steady"], baseline["verdicts"]
        assert overall(baseline, "api", "error_rate") == 0.0

        # The app caches the schedules for CACHE_TTL seconds: fresh right before the fault.
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            warm = await http.get(f"{stack.app.base_url}/api/v1/schedules")
        assert warm.json()["source"] == "db"
        injected = result_data(
            await client.call_tool("inject_failure", ref | {"environment": "test", "target_component": "db"})
        )
        assert injected["state"] == "injected"

        # During: /health fails at once, /api/v1/schedules is still served from the cache.
        during = result_data(await client.call_tool("measure_steady_state", ref))
        assert during["phase"] == "during" and not during["steady"]
        assert overall(during, "db", "error_rate") == 1.0
        assert overall(during, "api", "healthy") == 0.0
        api_error_rate = overall(during, "api", "error_rate")
        assert api_error_rate is not None and 0.0 < api_error_rate <= 0.5, during["measurements"]

        # Nobody calls rollback: the cached copy expires, the error rate passes 50 %, the supervisor reverts.
        record = await wait_for_state(client, experiment_id, "aborted", within=CACHE_TTL + 10)
        assert database_accepts_connections(stack.postgres.app_dsn), "the abort did not revert the fault"
        aborted = of_kind(record, "aborted")[-1]
        assert aborted["data"]["reason"].startswith("abort condition held: api.error_rate > 50%")
        [evidence] = aborted["data"]["evidence"]
        assert (
            evidence["criterion"] == "api.error_rate > 50%" and evidence["passed"] and evidence["actual"] > 50
        )
        samples = of_kind(record, "sample")
        firing = [s for s in samples if any(c["passed"] for c in s["data"]["abort_checks"])]
        assert len(firing) == 1 and at(firing[0]) <= at(aborted), (
            "the firing sample is journaled before the abort"
        )
        assert all(not c["passed"] for s in samples if s is not firing[0] for c in s["data"]["abort_checks"])
        assert overall(firing[0]["data"], "api", "error_rate") == 1.0
        interval = sampling_interval(20)
        times = [at(s) for s in samples]
        assert len(times) >= 2 and max(b - a for a, b in itertools.pairwise(times)) <= interval + SLACK, times

        [detected] = of_kind(record, "detected")
        assert 0 <= detected["data"]["detection_time_s"] < 10
        assert detected["data"]["signals"][0]["criterion"] == "api.healthy == 0"

        rollback = result_data(await client.call_tool("rollback", ref))
        assert rollback["status"] == "COMPLETE" and rollback["state"] == "rolled_back", rollback
        recovery = rollback["recovery"]
        assert recovery["recovered"] and 0 <= recovery["recovery_time_s"] < 30, recovery
        assert recovery["samples"] >= 2  # the steady state held for 2 consecutive samples

        report = result_data(await client.call_tool("generate_report", ref | {"format": "json"}))["json"]
    results = {r["metric"]: r for r in report["results"]}
    assert results["recovery_time"]["status"] == "PASS" and results["detection_time"]["status"] == "PASS", (
        results
    )
    blast = report["blast_radius"]
    moved = {m["target"]: {x["metric"] for x in m["metrics"]} for m in blast["moved"]}
    assert blast["measured"] and blast["declared"] == ["db", "api"]
    assert "error_rate" in moved.get("db", set()) and "error_rate" in moved.get("api", set()), moved
    assert "cache" not in moved, f"Redis was not touched, yet its figures moved: {moved.get('cache')}"
    assert blast["expansion"] == []


async def test_inject_failure_with_wait_reports_progress_and_returns_when_the_deadline_reverts(
    stack: Stack,
) -> None:
    duration = 4.0
    raw = design(
        duration=f"{duration:g}s", blast_radius={"scope": "the test database", "targets": ["db", "api"]}
    )
    updates: list[tuple[float, float | None, str | None, float]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message, time.time()))

    async with Client(build_server(stack.settings), mode="legacy") as client:
        experiment_id = result_data(await client.call_tool("design_experiment", raw))["experiment_id"]
        ref = {"experiment_id": experiment_id}
        assert result_data(await client.call_tool("measure_steady_state", ref))["steady"]
        began = time.time()
        with anyio.fail_after(duration + 10):
            answer = result_data(
                await client.call_tool(
                    "inject_failure",
                    ref | {"environment": "test", "target_component": "db", "wait": True},
                    progress_callback=on_progress,
                )
            )
        returned = time.time()
        assert returned - began >= duration - 0.1, "wait: true returned before the window ended"
        assert database_accepts_connections(stack.postgres.app_dsn), "the deadline did not revert the fault"
        record = result_data(await client.call_tool("get_experiment", ref))
        [auto] = of_kind(record, "auto_reverted")
        assert auto["data"]["reason"] == "deadline reached"
        assert all(f["status"] != "injected" for f in record["faults"])
        assert answer["experiment_id"] == experiment_id
        rollback = result_data(await client.call_tool("rollback", ref))
        assert rollback["status"] == "COMPLETE" and rollback["recovery"]["recovered"], rollback

    interval = sampling_interval(duration)
    assert len(updates) >= duration / interval - 2, updates
    assert all(total == duration for _, total, _, _ in updates)
    assert [p[0] for p in updates] == sorted(p[0] for p in updates) and updates[-1][0] <= duration + SLACK
    assert all(message and "of 4s" in message for _, _, message, _ in updates)
    arrivals = [p[3] for p in updates]
    assert max(b - a for a, b in itertools.pairwise([began, *arrivals])) <= interval + SLACK + 0.5
