"""Proxy scenarios end to end: the engine starts the fault proxy, route-scoped latency, proxy-only loss."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from mcp import Client

from chaos_mcp.config import ProxySpec, parse_settings
from chaos_mcp.probes.via_proxy import dsn_via
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, settings_with_journal
from tests.fixtures.services import PostgresDatabase
from tests.helpers import proxied_target_toml, static_site

pytestmark = pytest.mark.anyio


@pytest.fixture
def web_app(tmp_path: Path) -> Iterator[int]:
    """A real HTTP server with /health and /api/v1/schedules."""
    root = tmp_path / "site"
    (root / "api" / "v1").mkdir(parents=True)
    (root / "health").write_text("ok")
    (root / "api" / "v1" / "schedules").write_text('[{"block": 1}]')
    with static_site(root) as port:
        yield port


def design(target: str, scenario: str, blast: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": target,
        "scenario": scenario,
        "hypothesis": f"When {target} is slow or unreachable, clients should time out cleanly and recover.",
        "environment": "test",
        "blast_radius": {"scope": "through the proxy only", "targets": [target], **blast},
        "duration": "30s",
        "rollback_plan": ["Remove the toxic", "Verify latency is back to normal"],
        "parameters": parameters,
    }


def timed_get(url: str) -> float:
    began = time.perf_counter()
    assert httpx.get(url, timeout=10).status_code == 200
    return time.perf_counter() - began


async def run(client: Client, plan_input: dict[str, Any]) -> str:
    experiment_id = result_data(await client.call_tool("design_experiment", plan_input))["experiment_id"]
    assert result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))[
        "steady"
    ]
    target = plan_input["target_component"]
    result_data(
        await client.call_tool(
            "inject_failure",
            {"experiment_id": experiment_id, "environment": "test", "target_component": target},
        )
    )
    return str(experiment_id)


async def test_api_latency_slows_only_the_declared_route(
    tmp_path: Path, state_dir: Path, web_app: int, proxy_port: int
) -> None:
    toml, listen = proxied_target_toml(
        proxy_port,
        "api",
        f'kind = "http"\nenvironment = "test"\nbase_url = "http://127.0.0.1:{web_app}"\n',
        web_app,
    )
    via = f"http://127.0.0.1:{listen}"
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        experiment_id = await run(
            client, design("api", "api_latency", {"routes": ["/api/v1/schedules"]}, latency_ms=300)
        )
        assert timed_get(f"{via}/api/v1/schedules") >= 0.3
        assert timed_get(f"{via}/health") < 0.2
        rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
        assert rollback["status"] == "COMPLETE", rollback
        assert "proxy_lost" not in rollback  # its daemon ran throughout the window
    assert timed_get(f"{via}/api/v1/schedules") < 0.2


async def test_db_connection_loss_through_the_proxy_leaves_direct_connections_alone(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase, proxy_port: int
) -> None:
    fields = f'kind = "postgres"\nenvironment = "test"\ndsn = "{own_postgres.admin_dsn}"\n'
    toml, listen = proxied_target_toml(proxy_port, "db", fields, own_postgres.port)
    spec = ProxySpec(listen=f"127.0.0.1:{listen}", upstream=f"127.0.0.1:{own_postgres.port}")
    through_proxy = dsn_via(own_postgres.app_dsn, spec)
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        experiment_id = await run(client, design("db", "db_connection_loss", {}, method="proxy"))
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(through_proxy, connect_timeout=2).close()
        with psycopg.connect(own_postgres.app_dsn) as direct:
            assert direct.execute("SELECT 1").fetchone() == (1,)
        rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
        assert rollback["status"] == "COMPLETE", rollback
    with psycopg.connect(through_proxy) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
