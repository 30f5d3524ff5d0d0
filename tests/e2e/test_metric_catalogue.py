"""The metric catalogue and the criteria grammar through the MCP tools.

A design may only name metrics that a probe of its blast radius measures (list_targets shows
them); everything else is refused in one message that lists what exists. A `recovery.` abort
condition acts only after the revert: it ends the experiment as aborted when it holds then, and
leaves it alone when it does not (even if it held during the window).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from chaos_mcp.config import parse_settings
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, result_text, settings_with_journal
from tests.fixtures.services import PostgresDatabase
from tests.helpers import free_port, multi_target_settings

pytestmark = pytest.mark.anyio


def cache_and_api_toml() -> str:
    return (
        f'[targets.cache]\nkind = "redis"\nenvironment = "test"\nurl = "redis://127.0.0.1:{free_port()}/0"\n'
        f'[targets.api]\nkind = "http"\nenvironment = "test"\nbase_url = "http://127.0.0.1:{free_port()}"\n'
    )


def cache_design(**extra: Any) -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": "cache",
        "scenario": "redis_timeout",
        "hypothesis": "When the cache stalls, the API should answer 503 quickly and recover by itself.",
        "environment": "test",
        "blast_radius": {"scope": "test cache and the API that uses it", "targets": ["cache", "api"]},
        "duration": "5s",
        "rollback_plan": ["Unpause the cache", "Verify the API answers 200"],
        "dry_run": True,
        **extra,
    }


async def test_list_targets_shows_each_targets_metrics_with_unit_and_labels(
    tmp_path: Path, state_dir: Path
) -> None:
    settings = settings_with_journal(tmp_path, parse_settings(cache_and_api_toml()))
    async with Client(build_server(settings), mode="legacy") as client:
        listed = result_data(await client.call_tool("list_targets", {}))
        resource = await client.read_resource("chaos://targets")
    targets = {t["name"]: t for t in listed["targets"]}
    api = {m["name"]: m for m in targets["api"]["metrics"]}
    assert api["responses"]["unit"] == "count" and "status" in api["responses"]["labels"]
    assert api["latency_p95"]["unit"] == "ms" and api["healthy"]["unit"] == "bool"
    cache = {m["name"]: m for m in targets["cache"]["metrics"]}
    assert cache["error_rate"]["unit"] == "ratio" and cache["latency_p95"]["labels"] == ["command"]
    assert "responses" not in cache
    assert {m["name"] for m in listed["derived_metrics"]} == {"recovery_time", "detection_time"}
    text = "".join(getattr(c, "text", "") for c in resource.contents)
    shown = {t["name"]: t for t in json.loads(text)["targets"]}
    assert shown["api"]["metrics"] == targets["api"]["metrics"]


async def test_criteria_on_metrics_labels_and_phases_nothing_measures_are_refused_in_one_message(
    tmp_path: Path, state_dir: Path
) -> None:
    settings = settings_with_journal(tmp_path, parse_settings(cache_and_api_toml()))
    raw = cache_design(
        success_criteria=["api.writes_queued >= 1", 'api.responses{colour="red"} == 0'],
        abort_conditions=["solver_time > 120 s", "recovery_time > 1 min"],
        steady_state=["bogus_metric_xyz < 5 s"],
        detection_signals=["recovry.api.error_rate > 50%"],
    )
    async with Client(build_server(settings), mode="legacy") as client:
        refused = await client.call_tool("design_experiment", raw)
    assert refused.is_error
    message = result_text(refused)
    assert "refused: 6 problem(s)" in message, message
    lines = {line.split(":", 1)[0].removeprefix("- "): line for line in message.splitlines()[1:]}
    assert "api does not measure 'writes_queued'" in lines["success_criteria[0]"]
    assert "responses{status,route} (count)" in lines["success_criteria[0]"]  # the metrics that exist
    assert "has no label 'colour'; its labels: status, route" in lines["success_criteria[1]"]
    assert "no probe of the blast radius measures 'solver_time'" in lines["abort_conditions[0]"]
    assert "could never fire" in lines["abort_conditions[0]"]
    assert "cache: latency_p50{command} (ms)" in lines["abort_conditions[0]"]
    assert "cannot serve in abort_conditions" in lines["abort_conditions[1]"]
    assert "bogus_metric_xyz" in lines["steady_state[0]"] and "api: " in lines["steady_state[0]"]
    assert (
        "'recovry' is not a phase; phases: baseline, during, response, recovery"
        in (lines["detection_signals[0]"])
    )


async def test_label_selectors_and_phases_in_both_forms_are_accepted_and_bare_metrics_resolve(
    tmp_path: Path, state_dir: Path
) -> None:
    settings = settings_with_journal(tmp_path, parse_settings(cache_and_api_toml()))
    raw = cache_design(
        success_criteria=[
            'api.responses{status="503"} >= 1',
            {"metric": "api.responses", "labels": {"status": "500"}, "op": "==", "threshold": 0},
            "recovery_time < 30 s",
        ],
        abort_conditions=[
            "recovery.api.error_rate > 50%",
            {"metric": "api.error_rate", "phase": "recovery", "op": ">", "threshold": 90, "unit": "%"},
            "healthy == 0",
        ],
    )
    async with Client(build_server(settings), mode="legacy") as client:
        plan = result_data(await client.call_tool("design_experiment", raw))
        both_measure = await client.call_tool(
            "design_experiment", cache_design(steady_state=["requests >= 1"])
        )
        bare = result_data(
            await client.call_tool("design_experiment", cache_design(steady_state=["error_rate < 1%"]))
        )
    assert plan["success_criteria"][:2] == [
        'api.responses{status="503"} >= 1',
        'api.responses{status="500"} == 0',
    ]
    assert plan["abort_conditions"][:2] == ["recovery.api.error_rate > 50%", "recovery.api.error_rate > 90%"]
    assert bare["steady_state"] == ["error_rate < 1%"]  # the target_component's own error rate
    # `requests` is measured by both targets; the target_component measures it, so it is the cache's.
    assert not both_measure.is_error, result_text(both_measure)


async def design_run(client: Client, abort_condition: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    raw = {
        "experiment_type": "infrastructure",
        "target_component": "db",
        "scenario": "db_connection_loss",
        "hypothesis": "When the database refuses connections, the service should recover once they return.",
        "environment": "test",
        "blast_radius": {"scope": "the test database", "targets": ["db"]},
        "duration": "2s",
        "rollback_plan": ["Allow connections again", "Verify SELECT 1 answers"],
        "abort_conditions": [abort_condition],
        **extra,
    }
    experiment_id = result_data(await client.call_tool("design_experiment", raw))["experiment_id"]
    ref = {"experiment_id": experiment_id}
    assert result_data(await client.call_tool("measure_steady_state", ref))["steady"]
    injected = {**ref, "environment": "test", "target_component": "db", "wait": True}
    result_data(await client.call_tool("inject_failure", injected))
    got = await client.call_tool("get_experiment", ref)
    assert result_data(got)["state"] != "aborted", "a recovery-phase condition must not act in the window"
    return experiment_id, result_data(await client.call_tool("rollback", ref))


async def test_a_recovery_phase_abort_condition_that_holds_after_the_revert_ends_the_experiment_aborted(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    toml = f'[targets.db]\nkind = "postgres"\nenvironment = "test"\ndsn = "{own_postgres.admin_dsn}"\n'
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as c:
        # Connections are back after the revert, so "fewer than half fail" holds at the first recovery sample.
        experiment_id, rollback = await design_run(c, "recovery.db.error_rate < 50%")
        report = result_data(
            await c.call_tool("generate_report", {"experiment_id": experiment_id, "format": "json"})
        )
    assert rollback["state"] == "aborted", rollback
    stopped = rollback["recovery"]["aborted"]
    assert stopped["phase"] == "recovery" and "recovery.db.error_rate < 50%" in stopped["reason"]
    assert stopped["evidence"][0]["actual"] < 50
    markdown = report["markdown"]
    assert "provisional" not in markdown, markdown
    unexpected = markdown.split("### Unexpected Behaviors", 1)[1].split("###", 1)[0]
    assert "a recovery stop condition held after the revert" in unexpected, markdown
    data = report["json"] if isinstance(report["json"], dict) else json.loads(report["json"])
    critical = [f for f in data["findings"] if f["severity"] == "critical"]
    assert any("recovery stop condition" in str(f) for f in critical), data["findings"]


async def test_a_recovery_phase_abort_condition_that_held_only_in_the_window_never_fires(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    toml = f'[targets.db]\nkind = "postgres"\nenvironment = "test"\ndsn = "{own_postgres.admin_dsn}"\n'
    settings = settings_with_journal(tmp_path, parse_settings(toml))
    async with Client(build_server(settings), mode="legacy") as c:
        experiment_id, rollback = await design_run(
            c, "recovery.db.error_rate > 50%", success_criteria=["recovery.db.error_rate < 1%"]
        )
        events = result_data(await c.call_tool("get_experiment", {"experiment_id": experiment_id}))
        ref = {"experiment_id": experiment_id, "format": "json"}
        report = result_data(await c.call_tool("generate_report", ref))["json"]
    [row] = [r for r in report["results"] if r["criterion"] == "recovery.db.error_rate < 1%"]
    # Judged on the samples rollback took after the revert, not on the window (where it was 100 %).
    assert row["status"] == "PASS" and row["observations"] >= 2 and row["actual"] == 0, row
    assert rollback["state"] == "rolled_back" and "aborted" not in rollback["recovery"], rollback
    assert rollback["recovery"]["recovered"], rollback["recovery"]
    window = [e for e in events["events"] if e["kind"] == "sample"]
    assert any(
        m["metric"] == "error_rate" and not m["labels"] and m["value"] > 0.5
        for e in window
        for m in e["data"]["measurements"]
    ), "the condition held during the window (the database refused connections), yet did not act there"


async def test_the_database_prompts_design_with_503_not_500_and_a_recovery_abort_is_accepted(
    tmp_path: Path, state_dir: Path
) -> None:
    settings = settings_with_journal(tmp_path, multi_target_settings())
    async with Client(build_server(settings), mode="legacy") as client:
        prompt = await client.get_prompt("db_connection_failure_test", {"target_component": "db"})
        text = "\n".join(getattr(m.content, "text", "") for m in prompt.messages)
        design = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
        plan = result_data(await client.call_tool("design_experiment", design | {"dry_run": True}))
    assert 'api.responses{status="500"} == 0' in plan["success_criteria"]
    assert "recovery.api.error_rate > 50%" in plan["abort_conditions"]
