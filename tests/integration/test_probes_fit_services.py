"""Probes that fit real services (issue 14, points 6(c) and 9), against the application under test:
only the experiment's targets are observed, a probe that cannot run says why while the rest goes on,
an HTTP target sends its credential header from the environment (never shown), a readiness body
decides health, and the service's own request log is scanned for errors and leaked secrets."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters

from chaos_mcp.config import Settings, parse_settings
from chaos_mcp.contract import validate_design
from chaos_mcp.criteria import parse_criterion
from chaos_mcp.engine.measure import Measurer
from chaos_mcp.engine.verdicts import evaluate_all
from chaos_mcp.probes.base import Measurement
from tests.e2e.conftest import result_data, result_text, settings_with_journal
from tests.fixtures.services import PostgresDatabase, RedisServer
from tests.helpers import free_port, kill_matching
from tests.integration.app.runner import RunningApp, running_app, seed
from tests.integration.conftest import design

pytestmark = pytest.mark.anyio
TOKEN_VARIABLE = "CHAOS_TEST_API_TOKEN"


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    value = "tok-" + secrets.token_hex(12)
    monkeypatch.setenv(TOKEN_VARIABLE, f"Bearer {value}")
    return value


@pytest.fixture
def app_log(tmp_path: Path) -> Path:
    log = tmp_path / "app.log"
    log.write_text("")
    return log


def config_text(app: RunningApp, postgres: PostgresDatabase, log: Path, **api: str) -> str:
    """The API (bearer token from the environment, its request log) and its database (app role DSN)."""
    extra = "".join(f"{key} = {value}\n" for key, value in api.items())
    return (
        f'[targets.api]\nkind = "http"\nenvironment = "test"\nbase_url = "{app.base_url}"\n'
        f'logs = "{log}"\nheaders = {{ Authorization = {{ env = "{TOKEN_VARIABLE}" }} }}\n{extra}'
        f'[targets.db]\nkind = "postgres"\nenvironment = "test"\ndsn = {json.dumps(postgres.app_dsn)}\n'
    )


def settings_for(tmp_path: Path, text: str) -> Settings:
    return settings_with_journal(tmp_path, parse_settings(text))


def measured(found: list[Measurement], metric: str, target: str = "api") -> float:
    (one,) = [m for m in found if m.probe == target and m.metric == metric and not m.labels]
    return one.value


@pytest.fixture
def leaky_app(
    token: str, app_log: Path, own_postgres: PostgresDatabase, own_redis: RedisServer
) -> Iterator[RunningApp]:
    seed(own_postgres.app_dsn)
    with running_app(own_postgres.app_dsn, own_redis.url, log=app_log, token=token, leak_dsn=True) as app:
        yield app


@pytest.fixture
def careful_app(
    token: str, app_log: Path, own_postgres: PostgresDatabase, own_redis: RedisServer
) -> Iterator[RunningApp]:
    seed(own_postgres.app_dsn)
    with running_app(own_postgres.app_dsn, own_redis.url, log=app_log, token=token) as app:
        yield app


async def traffic(app: RunningApp, n: int = 5) -> None:
    async with httpx.AsyncClient(headers=app.headers(), trust_env=False, timeout=5) as client:
        for _ in range(n):
            assert (await client.get(f"{app.base_url}/api/v1/schedules")).status_code == 200


async def test_a_password_the_service_leaks_into_its_log_is_counted_and_fails_the_criterion(
    tmp_path: Path, leaky_app: RunningApp, own_postgres: PostgresDatabase, app_log: Path
) -> None:
    settings = settings_for(tmp_path, config_text(leaky_app, own_postgres, app_log))
    measurer = Measurer(settings)
    experiment = validate_design(design(), settings)
    await measurer.sample(experiment)  # the baseline: the log is followed from here
    await traffic(leaky_app)
    found = await measurer.sample(experiment)
    assert own_postgres.password in app_log.read_text()
    assert measured(found, "log_secrets") >= 5 and measured(found, "log_errors") == 0
    (verdict,) = evaluate_all([parse_criterion("api.log_secrets == 0")], found)
    assert not verdict.passed
    assert own_postgres.password not in json.dumps([m.as_dict() for m in found])


async def test_a_service_that_logs_carefully_has_no_log_secrets_and_its_503s_are_error_lines(
    tmp_path: Path, careful_app: RunningApp, own_postgres: PostgresDatabase, app_log: Path
) -> None:
    settings = settings_for(tmp_path, config_text(careful_app, own_postgres, app_log))
    measurer = Measurer(settings)
    experiment = validate_design(design(), settings)
    await measurer.sample(experiment)
    await traffic(careful_app)
    careful_app.set_failing(True)
    async with httpx.AsyncClient(headers=careful_app.headers(), trust_env=False, timeout=5) as client:
        assert (await client.get(f"{careful_app.base_url}/api/v1/schedules")).status_code == 503
    found = await measurer.sample(experiment)
    assert measured(found, "log_lines") >= 6 and measured(found, "log_secrets") == 0
    assert measured(found, "log_errors") >= 1
    (verdict,) = evaluate_all([parse_criterion("api.log_secrets == 0")], found)
    assert verdict.passed


async def test_a_readiness_body_saying_not_ready_reads_unhealthy_though_the_status_is_200(
    tmp_path: Path, careful_app: RunningApp, own_postgres: PostgresDatabase, app_log: Path
) -> None:
    text = config_text(
        careful_app,
        own_postgres,
        app_log,
        health='"/ready"',
        health_body='{ path = "status", accepted = ["ready"] }',
    )
    measurer = Measurer(settings_for(tmp_path, text))
    experiment = validate_design(design(), measurer.settings)
    assert measured(await measurer.sample(experiment), "healthy") == 1.0
    careful_app.set_ready(False)
    found = await measurer.sample(experiment)
    healthy = next(m for m in found if m.probe == "api" and m.metric == "healthy")
    assert healthy.value == 0.0 and '"not_ready"' in healthy.note
    statuses = {m.labels["status"] for m in found if m.probe == "api" and m.metric == "responses"}
    assert statuses == {"200"}


async def test_targets_outside_the_blast_radius_are_not_probed_and_a_broken_probe_says_why(
    tmp_path: Path,
    careful_app: RunningApp,
    own_postgres: PostgresDatabase,
    app_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = free_port()
    text = config_text(careful_app, own_postgres, app_log) + (
        f'[targets.elsewhere]\nkind = "http"\nenvironment = "test"\nbase_url = "http://127.0.0.1:{closed}"\n'
        '[targets.lost_db]\nkind = "postgres"\nenvironment = "test"\n'
        f'dsn = "postgresql://nobody:x@127.0.0.1:{closed}/nothing"\n'
    )
    measurer = Measurer(settings_for(tmp_path, text))
    experiment = validate_design(design(), measurer.settings)
    result = await measurer.measure(experiment)
    assert result["observed"] == ["api", "db"] and result["probe_errors"] == []
    assert result["steady"], result["verdicts"]
    assert not {m["probe"] for m in result["measurements"]} - {"api", "db"}

    monkeypatch.setenv(TOKEN_VARIABLE, "")  # the credential went away after the configuration loaded
    fresh = Measurer(measurer.settings)
    result = await fresh.measure(experiment)
    (error,) = result["probe_errors"]
    assert error["target"] == "api" and "Authorization" in error["why"] and "chaos.toml" in error["why"]
    assert any(m["probe"] == "db" and m["metric"] == "error_rate" for m in result["measurements"])


async def test_the_header_comes_from_the_environment_and_never_shows_in_results_or_logs(
    tmp_path: Path,
    state_dir: Path,
    careful_app: RunningApp,
    own_postgres: PostgresDatabase,
    app_log: Path,
    token: str,
) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text(config_text(careful_app, own_postgres, app_log))
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"}
    env |= {"CHAOS_MCP_STATE_DIR": str(state_dir)}
    command = (
        f'exec "{sys.executable}" -m chaos_mcp.cli serve --config "{config}" --log-level DEBUG 2>>"{log}"'
    )
    outputs: list[str] = []
    try:
        async with Client(
            StdioServerParameters(command="sh", args=["-c", command], env=env), mode="legacy"
        ) as client:
            outputs.append(result_text(await client.call_tool("list_targets", {})))
            plan = result_data(await client.call_tool("design_experiment", design()))
            ref: dict[str, Any] = {"experiment_id": plan["experiment_id"]}
            result = result_data(await client.call_tool("measure_steady_state", ref))
            outputs.append(json.dumps(result))
            outputs.append(json.dumps(plan))
    finally:
        kill_matching(f"chaos_mcp.engine.warden .*{state_dir.name}")
    assert result["steady"], result
    served = [line for line in app_log.read_text().splitlines() if " GET /health " in line]
    assert served and all(line.split()[4] == "200" for line in served)  # no 401: the header was sent
    everything = "\n".join(outputs) + log.read_text()
    assert token not in everything
