"""No configured secret leaves: not on any process's command line, not on any log line (library
loggers included, every line JSON), not in the journal's bytes or rows, not in reports or the Chaos
Toolkit export. Real PostgreSQL (journal and target, each with a password), Redis with a password,
an HTTP target with credentials in its base_url."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from mcp import Client, StdioServerParameters

from chaos_mcp.config import parse_settings
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.journal import Journal
from chaos_mcp.interop import export_experiment, export_journal
from chaos_mcp.reports.render import view_of
from tests.e2e.conftest import result_data
from tests.e2e.test_http_transport import wait_listening
from tests.fixtures.services import PostgresDatabase, RedisServer
from tests.helpers import free_port, kill_matching, static_site, valid_design

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def infrastructure(target: str, scenario: str) -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": target,
        "scenario": scenario,
        "hypothesis": f"When {target} fails, the application should recover once it is back.",
        "environment": "test",
        "blast_radius": {"scope": "test instance only", "targets": [target]},
        "duration": "60s",
        "rollback_plan": ["Revert the fault", "Verify the service"],
    }


@pytest.fixture
def web_app(tmp_path: Path) -> Iterator[int]:
    root = tmp_path / "site"
    root.mkdir()
    (root / "health").write_text("ok")
    with static_site(root) as port:
        yield port


class Secrets:
    def __init__(self) -> None:
        self.target_pg = f"pgadmin-{secrets.token_hex(8)}"  # trust auth accepts any password
        self.redis = f"redispw-{secrets.token_hex(8)}"
        self.http = f"httppw-{secrets.token_hex(8)}"
        self.values: list[str] = [self.target_pg, self.redis, self.http]

    def assert_absent(self, where: str, text: str) -> None:
        for value in self.values:
            assert value not in text, f"a configured secret is in {where}"


def configuration(
    tmp_path: Path,
    journal_url: str,
    target: PostgresDatabase,
    own_redis: RedisServer,
    web_app: int,
    found: Secrets,
) -> Path:
    redis.Redis(host=own_redis.host, port=own_redis.port).config_set("requirepass", found.redis)
    config = tmp_path / "chaos.toml"
    config.write_text(
        f'[journal]\nurl = "{journal_url}"\n\n'
        f'[targets.db]\nkind = "postgres"\nenvironment = "test"\n'
        f'dsn = "postgresql://postgres:{found.target_pg}@127.0.0.1:5432/{target.database}"\n\n'
        f'[targets.cache]\nkind = "redis"\nenvironment = "test"\n'
        f'url = "redis://:{found.redis}@{own_redis.host}:{own_redis.port}/0"\n\n'
        f'[targets.api]\nkind = "http"\nenvironment = "test"\n'
        f'base_url = "http://probe:{found.http}@127.0.0.1:{web_app}"\nhealth = "/health"\n\n'
        '[targets.schedule]\nkind = "schedule"\nenvironment = "test"\n'
    )
    return config


def command_lines() -> str:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return "\n".join(lines)


def assert_json_lines(log: str) -> None:
    for line in log.splitlines():
        if line.strip():
            try:
                json.loads(line)
            except ValueError:
                pytest.fail(f"a stderr line is not JSON: {line[:300]}")


async def a_session(client: Client, found: Secrets) -> list[str]:
    """Inject faults whose helpers carry secrets, scan every command line meanwhile, roll back, report."""
    outputs: list[str] = []
    ids = []
    for target, scenario in (("db", "db_connection_loss"), ("cache", "redis_timeout")):
        plan = result_data(await client.call_tool("design_experiment", infrastructure(target, scenario)))
        ref = {"experiment_id": plan["experiment_id"]}
        assert result_data(await client.call_tool("measure_steady_state", ref))["steady"]
        ref_inject = {**ref, "environment": "test", "target_component": target}
        outputs.append(json.dumps(result_data(await client.call_tool("inject_failure", ref_inject))))
        ids.append(plan["experiment_id"])
    found.assert_absent("a process's command line", command_lines())
    for experiment_id in ids:
        rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
        assert rollback["status"] == "COMPLETE", rollback
    probe = valid_design(blast_radius={"scope": "program and its API", "targets": ["schedule", "api"]})
    plan = result_data(await client.call_tool("design_experiment", probe))
    measured = result_data(
        await client.call_tool("measure_steady_state", {"experiment_id": plan["experiment_id"]})
    )
    outputs.append(json.dumps(measured))
    for experiment_id in ids:
        for fmt in ("markdown", "json", "html"):
            report = await client.call_tool(
                "generate_report", {"experiment_id": experiment_id, "format": fmt}
            )
            outputs.append(json.dumps(result_data(report)))
    period = await client.call_tool("generate_report", {"since": "2026-01-01", "format": "html"})
    outputs.append(json.dumps(result_data(period)))
    return outputs


def exports(config: Path) -> str:
    settings = parse_settings(config.read_text(), source=str(config))
    journal = Journal(settings.journal.resolved_url())
    engine = Engine(settings, journal)
    out = []
    for row in journal.list_experiments(limit=100):
        view = view_of(engine, row.id)
        out.append(json.dumps(export_experiment(view.design, row.id)) + json.dumps(export_journal(view)))
    journal.close()
    return "\n".join(out)


@pytest.mark.parametrize("journal_kind", ["postgresql", "sqlite"])
async def test_no_secret_on_a_command_line_a_log_line_the_journal_a_report_or_an_export(
    tmp_path: Path,
    state_dir: Path,
    postgres_factory: Callable[[], PostgresDatabase],
    own_redis: RedisServer,
    web_app: int,
    journal_kind: str,
) -> None:
    found = Secrets()
    target = postgres_factory()
    if journal_kind == "postgresql":
        journal_db = postgres_factory()
        journal_url = journal_db.app_dsn  # its role's password is in the URL
        found.values.append(journal_db.password)
    else:
        journal_url = f"sqlite:///{state_dir / 'journal.sqlite3'}"
    config = configuration(tmp_path, journal_url, target, own_redis, web_app, found)
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"} | {
        "CHAOS_MCP_STATE_DIR": str(state_dir)
    }
    command = f'exec "{sys.executable}" -m chaos_mcp.cli serve --config "{config}" 2>>"{log}"'
    try:
        async with Client(
            StdioServerParameters(command="sh", args=["-c", command], env=env), mode="legacy"
        ) as client:
            outputs = await a_session(client, found)
    finally:
        kill_matching(f"chaos_mcp.engine.warden .*{state_dir.name}")
    logs = log.read_text()
    assert "HTTP Request" in logs, "httpx logged nothing: the scan of its lines would prove nothing"
    assert_json_lines(logs)
    assert "Traceback" not in logs
    found.assert_absent("serve's stderr", logs)
    for helper_log in state_dir.glob("*.log"):  # helpers' and the proxy daemon's own streams
        found.assert_absent(helper_log.name, helper_log.read_text(errors="replace"))
    found.assert_absent("a tool result or report", "\n".join(outputs))
    found.assert_absent("the Chaos Toolkit export", exports(config))
    key = state_dir / ("journal.key" if journal_kind == "postgresql" else "journal.sqlite3.key")
    assert key.stat().st_mode & 0o777 == 0o600
    if journal_kind == "postgresql":
        with psycopg.connect(journal_url) as conn:
            rows = [
                str(conn.execute(f"SELECT t::text FROM {table} t").fetchall())
                for table in ("experiments", "events", "faults", "holds", "control")
            ]
        assert any("sealed" in row for row in rows), "no sealed fault record: the scan would prove nothing"
        found.assert_absent("the journal's rows", "\n".join(rows))
    else:
        raw = b"".join(
            p.read_bytes() for p in state_dir.glob("journal.sqlite3*") if not p.name.endswith(".key")
        )
        assert b"sealed" in raw
        found.assert_absent("the journal's bytes", raw.decode(errors="replace"))


async def test_serve_over_http_logs_only_redacted_json(tmp_path: Path, state_dir: Path, web_app: int) -> None:
    password = f"httppw-{secrets.token_hex(8)}"
    config = tmp_path / "chaos.toml"
    config.write_text(
        f'[targets.api]\nkind = "http"\nenvironment = "test"\n'
        f'base_url = "http://probe:{password}@127.0.0.1:{web_app}"\nhealth = "/health"\n\n'
        '[targets.schedule]\nkind = "schedule"\nenvironment = "test"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CHAOS_MCP_CONFIG", "CHAOS_MCP_TOKEN")}
    env["CHAOS_MCP_STATE_DIR"] = str(state_dir)
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaos_mcp.cli",
                "serve",
                "--transport",
                "http",
                "--port",
                str(port),
                "--config",
                str(config),
                "--log-level",
                "DEBUG",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_listening(port, process)
        async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:
            probe = valid_design(
                blast_radius={"scope": "program and its API", "targets": ["schedule", "api"]}
            )
            plan = result_data(await client.call_tool("design_experiment", probe))
            ref = {"experiment_id": plan["experiment_id"]}
            measured = result_data(await client.call_tool("measure_steady_state", ref))
        assert password not in json.dumps(measured)
    finally:
        process.terminate()
        process.wait(timeout=15)
    logs = log.read_text()
    assert "HTTP Request" in logs, "httpx logged nothing: the scan of its lines would prove nothing"
    assert_json_lines(logs)
    assert password not in logs and "Traceback" not in logs
