"""Prompts and resources listed and fetched through the MCP Inspector CLI against a stdio server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from chaos_mcp.config import embedded_default
from chaos_mcp.engine.core import Engine
from tests.helpers import valid_design

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
pytestmark = [pytest.mark.inspector, pytest.mark.slow]


def server_command() -> list[str]:
    return [sys.executable, "-m", "chaos_mcp.cli", "serve"]


def inspector(state: Path, *args: str) -> Any:
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx (Node.js) is needed for the MCP Inspector CLI; .ci/run installs it")
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"} | {
        "CHAOS_MCP_STATE_DIR": str(state)
    }
    done = subprocess.run(
        # the Inspector passes the server only a default environment: the state dir goes with -e
        [npx, "-y", INSPECTOR, "--cli", "-e", f"CHAOS_MCP_STATE_DIR={state}", *server_command(), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=Path(__file__).parents[2],
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return json.loads(done.stdout)


async def _experiment() -> str:
    async with Engine.running(embedded_default()) as engine:
        experiment_id: str = engine.design(valid_design(duration="5s"))["experiment_id"]
        await engine.measure(experiment_id)
        await engine.inject(experiment_id, "test", "schedule")
        await engine.rollback(experiment_id)
        return experiment_id


def test_the_inspector_lists_and_gets_the_prompts(tmp_path: Path) -> None:
    listed = inspector(tmp_path, "--method", "prompts/list")
    names = {p["name"] for p in listed["prompts"]}
    assert names == {
        "chaos_delegation",
        "n1_contingency_test",
        "db_connection_failure_test",
        "chaos_experiment_template",
    }
    got = inspector(
        tmp_path,
        "--method",
        "prompts/get",
        "--prompt-name",
        "chaos_experiment_template",
        "--prompt-args",
        "name=Cache outage",
        "condition=Redis stops answering",
        "behavior=serve reads from PostgreSQL",
        "target_component=schedule",
    )
    text = got["messages"][0]["content"]["text"]
    assert text.startswith("## Chaos Experiment: Cache outage")
    assert "When Redis stops answering, the system should serve reads from PostgreSQL." in text


def test_the_inspector_lists_and_reads_the_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOS_MCP_STATE_DIR", str(tmp_path))
    experiment_id = anyio.run(_experiment)
    resources = inspector(tmp_path, "--method", "resources/list")
    assert {"chaos://targets", "chaos://scenarios"} <= {r["uri"] for r in resources["resources"]}
    templates = inspector(tmp_path, "--method", "resources/templates/list")
    assert {t["uriTemplate"] for t in templates["resourceTemplates"]} == {
        "chaos://experiments/{experiment_id}",
        "chaos://experiments/{experiment_id}/report",
    }
    targets = inspector(tmp_path, "--method", "resources/read", "--uri", "chaos://targets")
    assert json.loads(targets["contents"][0]["text"])["targets"][0]["name"] == "schedule"
    report = inspector(
        tmp_path, "--method", "resources/read", "--uri", f"chaos://experiments/{experiment_id}/report"
    )
    content = report["contents"][0]
    assert content["mimeType"] == "text/markdown"
    assert content["text"].startswith("## Chaos Experiment Report") and "### Quality Gates" in content["text"]
