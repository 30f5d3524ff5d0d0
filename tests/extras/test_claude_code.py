"""The Claude Code integration: .mcp.json starts the server, the settings allow exactly the read-only
tools, and the agents name real tools and carry a delegation example the server accepts."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from chaos_mcp.config import embedded_default
from chaos_mcp.contract import validate_design
from chaos_mcp.server import build_server
from tests.helpers import multi_target_settings

ROOT = Path(__file__).parents[2]
PREFIX = "mcp__chaos-mcp__"
EXPANSION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


def expand(value: str, env: dict[str, str]) -> str:
    """Claude Code's ${VAR} and ${VAR:-default} expansion in .mcp.json."""
    return EXPANSION.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def front_matter(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), path
    head = text.split("---\n", 2)[1]
    return dict(line.split(": ", 1) for line in head.strip().splitlines())


async def server_tools() -> dict[str, Any]:
    async with Client(build_server(embedded_default()), mode="legacy") as client:  # type: ignore[arg-type]
        return {t.name: t for t in (await client.list_tools()).tools}


@pytest.mark.anyio
async def test_the_mcp_json_server_entry_starts_chaos_mcp_over_stdio(tmp_path: Path) -> None:
    entry = json.loads((ROOT / ".mcp.json").read_text(encoding="utf-8"))["mcpServers"]["chaos-mcp"]
    env = {k: v for k, v in os.environ.items() if k not in ("CHAOS_MCP_CONFIG", "CHAOS_MCP_PYTHON")}
    env |= {"CHAOS_MCP_PYTHON": sys.executable, "CHAOS_MCP_STATE_DIR": str(tmp_path)}
    command = expand(entry["command"], env)
    server_env = env | {k: expand(v, env) for k, v in entry["env"].items()}
    params = StdioServerParameters(
        command=command, args=[expand(a, env) for a in entry["args"]], env=server_env, cwd=str(ROOT)
    )
    async with Client(params, mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert {"design_experiment", "inject_failure", "rollback", "generate_report"} <= names
    assert expand(entry["command"], {}) == ".venv/bin/python", "without CHAOS_MCP_PYTHON: the repo's venv"


@pytest.mark.anyio
async def test_the_settings_allow_exactly_the_read_only_tools() -> None:
    settings = json.loads((ROOT / ".claude" / "settings.json").read_text(encoding="utf-8"))
    allowed = set(settings["permissions"]["allow"])
    tools = await server_tools()
    read_only = {PREFIX + n for n, t in tools.items() if t.annotations and t.annotations.read_only_hint}
    assert allowed == read_only
    assert settings["enabledMcpjsonServers"] == ["chaos-mcp"]


@pytest.mark.anyio
@pytest.mark.parametrize("agent", ["chaos-engineer", "coord-resilience"])
async def test_each_agent_has_a_description_and_names_only_real_chaos_mcp_tools(agent: str) -> None:
    meta = front_matter(ROOT / ".claude" / "agents" / f"{agent}.md")
    assert meta["name"] == agent and len(meta["description"]) > 40
    named = [t.strip() for t in meta["tools"].split(",") if t.strip().startswith(PREFIX)]
    tools = await server_tools()
    assert named and {t.removeprefix(PREFIX) for t in named} <= set(tools)


def test_the_coordinators_delegation_example_is_a_design_the_server_accepts() -> None:
    text = (ROOT / ".claude" / "agents" / "coord-resilience.md").read_text(encoding="utf-8")
    raw = json.loads(re.search(r"Call design_experiment with exactly:\n(\{.*?\n\})", text, re.S).group(1))  # type: ignore[union-attr]
    design = validate_design(raw | {"dry_run": True}, multi_target_settings())
    assert design.scenario == "db_connection_loss" and design.blast_radius.targets == ["db", "api"]
