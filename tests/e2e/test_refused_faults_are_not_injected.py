"""A fault the target refuses (no permission) is journaled `not_injected`, never "could NOT be reverted".

Issue 13, the outside attacker's finding 4: a Redis ACL user without `client`, a PostgreSQL role that
does not own the database. The target's own state is checked by an independent client.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

from chaos_mcp.config import parse_settings
from chaos_mcp.engine.core import Engine, EngineError
from chaos_mcp.faults.base import NotInjected
from chaos_mcp.faults.redis import MaxMemory
from tests.e2e.conftest import settings_with_journal
from tests.e2e.test_shared_resources import allows_connections, design, postgres_target
from tests.fixtures.services import PostgresDatabase, RedisServer

pytestmark = pytest.mark.anyio


async def refused(engine: Engine, target: str, scenario: str, parameters: dict[str, str]) -> str:
    plan = engine.design(design(target, scenario) | {"parameters": parameters})
    experiment_id = str(plan["experiment_id"])
    await engine.measure(experiment_id)
    with pytest.raises(EngineError) as caught:
        await engine.inject(experiment_id, "test", target)
    text = str(caught.value)
    assert "refused before anything was changed" in text and "could NOT" not in text, text
    assert [f.status for f in engine.journal.faults(experiment_id)] == ["not_injected"]
    assert engine.journal.get_experiment(experiment_id).state == "failed"  # type: ignore[union-attr]
    assert experiment_id not in engine.journal.holds().values()
    return text


@pytest.mark.parametrize("mode", ["WRITE", "ALL"])
async def test_a_redis_user_without_client_permission_gets_a_pause_journaled_as_not_injected(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer, mode: str
) -> None:
    admin = redis.Redis(host=own_redis.host, port=own_redis.port, socket_timeout=5)
    admin.execute_command("ACL", "SETUSER", "weak", "on", ">weakpass1", "~*", "&*", "+@all", "-client")  # type: ignore[no-untyped-call]
    url = f"redis://weak:weakpass1@{own_redis.host}:{own_redis.port}/0"
    toml = f'[targets.cache]\nkind = "redis"\nenvironment = "test"\nurl = "{url}"\n'
    async with Engine.running(settings_with_journal(tmp_path, parse_settings(toml))) as engine:
        text = await refused(engine, "cache", "redis_timeout", {"mode": mode})
        assert "CLIENT PAUSE" in text and "weakpass1" not in text, text
    assert admin.ping() and admin.set("written", "1")  # nothing is paused
    admin.close()


async def test_a_role_that_does_not_own_the_database_gets_a_block_journaled_as_not_injected(
    tmp_path: Path, state_dir: Path, postgres_factory: Callable[[], PostgresDatabase]
) -> None:
    owner, other = postgres_factory(), postgres_factory()
    # `other`'s role may connect to `owner`'s database but does not own it: ALTER DATABASE is refused
    weak = f"postgresql://{other.role}:{other.password}@127.0.0.1:5432/{owner.database}"
    with psycopg.connect(owner.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(sql.Identifier(owner.database)))
    toml = postgres_target("db", weak)
    async with Engine.running(settings_with_journal(tmp_path, parse_settings(toml))) as engine:
        text = await refused(engine, "db", "db_connection_loss", {})
        assert "ALTER DATABASE" in text and other.password not in text, text
    assert allows_connections(owner)


async def test_a_redis_user_without_config_set_gets_maxmemory_refused_as_not_injected(
    own_redis: RedisServer,
) -> None:
    admin = redis.Redis(host=own_redis.host, port=own_redis.port, socket_timeout=5)
    admin.execute_command("ACL", "SETUSER", "reader", "on", ">readpass1", "~*", "&*", "+@all", "-config|set")  # type: ignore[no-untyped-call]
    before = admin.config_get("maxmemory*")
    fault = MaxMemory(url=f"redis://reader:readpass1@{own_redis.host}:{own_redis.port}/0")
    await fault.prepare()
    with pytest.raises(NotInjected, match="CONFIG SET"):
        await fault.inject()
    assert admin.config_get("maxmemory*") == before
    admin.close()
