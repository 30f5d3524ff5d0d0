"""The application under test (API + PostgreSQL pool + Redis cache) and chaos-mcp settings that target it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos_mcp.config import Settings, parse_settings
from tests.e2e.conftest import settings_with_journal
from tests.fixtures.services import PostgresDatabase, RedisServer
from tests.integration.app.runner import RunningApp, running_app, seed

CACHE_TTL = 3.0


@dataclasses.dataclass(frozen=True)
class Stack:
    app: RunningApp
    postgres: PostgresDatabase
    redis: RedisServer
    settings: Settings


def stack_settings(tmp_path: Path, app_url: str, postgres: PostgresDatabase, redis_url: str) -> Settings:
    """chaos.toml's equivalent: the API, its database (admin DSN) and its cache, plus a temp journal."""
    toml = "\n".join(
        [
            '[targets.api]\nkind = "http"\nenvironment = "test"',
            f'base_url = {json.dumps(app_url)}\nhealth = "/health"',
            '[targets.db]\nkind = "postgres"\nenvironment = "test"',
            f"dsn = {json.dumps(postgres.admin_dsn)}",
            '[targets.cache]\nkind = "redis"\nenvironment = "test"',
            f"url = {json.dumps(redis_url)}",
        ]
    )
    return settings_with_journal(tmp_path, parse_settings(toml))


@pytest.fixture
def stack(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase, own_redis: RedisServer
) -> Iterator[Stack]:
    seed(own_postgres.app_dsn)
    with running_app(own_postgres.app_dsn, own_redis.url, cache_ttl=CACHE_TTL) as app:
        yield Stack(
            app, own_postgres, own_redis, stack_settings(tmp_path, app.base_url, own_postgres, own_redis.url)
        )


def design(**extra: Any) -> dict[str, Any]:
    """db_connection_loss on the app's database, the API inside the blast radius."""
    return {
        "experiment_type": "infrastructure",
        "target_component": "db",
        "scenario": "db_connection_loss",
        "hypothesis": "When the database connection is lost, the API should serve cached schedules "
        "and report itself degraded.",
        "environment": "test",
        "blast_radius": {
            "scope": "the test API and its database",
            "targets": ["db", "api"],
            "routes": ["/api/v1/schedules"],
        },
        "duration": "20s",
        "rollback_plan": ["Allow connections to the database again", "Verify /health answers 200"],
        **extra,
    }


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
