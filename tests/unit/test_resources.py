"""Identity comes from the system: two spellings of one server are one resource, two servers are two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from chaos_mcp.config import parse_settings
from chaos_mcp.resources import identify_all, resource_for, sharing
from tests.fixtures.services import PostgresDatabase, RedisServer
from tests.helpers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings(toml: str) -> Any:
    return parse_settings(toml)


async def test_one_database_reached_by_tcp_name_address_and_unix_socket_is_one_resource(
    state_dir: Path, own_postgres: PostgresDatabase, postgres_factory: Any
) -> None:
    other = postgres_factory()
    name = own_postgres.database
    toml = (
        f'[targets.a]\nkind = "postgres"\nenvironment = "test"\ndsn = "postgresql://postgres@127.0.0.1:5432/{name}"\n'
        f'[targets.b]\nkind = "postgres"\nenvironment = "test"\ndsn = "postgresql://postgres@localhost/{name}"\n'
        f'[targets.c]\nkind = "postgres"\nenvironment = "test"\n'
        f'dsn = "host=/var/run/postgresql user=postgres dbname=postgres"\ndatabase = "{name}"\n'
        f'[targets.d]\nkind = "postgres"\nenvironment = "production"\ndsn = "{other.admin_dsn}"\n'
    )
    found = await identify_all(settings(toml))
    assert found["a"].database == found["b"].database == found["c"].database
    assert found["a"].database is not None and found["d"].database != found["a"].database
    assert found["a"].instance == found["d"].instance
    with psycopg.connect(own_postgres.admin_dsn) as conn:
        row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
    assert row is not None and found["a"].instance == f"pg:{row[0]}"  # the cluster's own identifier
    assert sharing(found)["a"] == ["b", "c", "d"]
    assert resource_for(found["a"], "instance") is not None


async def test_one_redis_server_under_two_spellings_is_one_server_and_another_server_is_not(
    state_dir: Path, redis_factory: Any
) -> None:
    first, second = redis_factory(), redis_factory()
    toml = (
        f'[targets.a]\nkind = "redis"\nenvironment = "test"\nurl = "redis://127.0.0.1:{first.port}/0"\n'
        f'[targets.b]\nkind = "redis"\nenvironment = "test"\nurl = "redis://localhost:{first.port}/3"\n'
        f'[targets.c]\nkind = "redis"\nenvironment = "test"\nurl = "{second.url}"\n'
    )
    found = await identify_all(settings(toml))
    assert found["a"].instance == found["b"].instance != found["c"].instance
    assert found["a"].database != found["b"].database
    assert found["b"].database is not None and found["b"].database.endswith("/db:3")
    assert sharing(found) == {"a": ["b"], "b": ["a"], "c": []}


async def test_an_unreachable_target_is_unknown_with_a_reason_and_without_its_password(
    state_dir: Path, own_redis: RedisServer
) -> None:
    port = free_port()
    toml = (
        f'[targets.gone]\nkind = "redis"\nenvironment = "test"\nurl = "redis://:hunter2secret@127.0.0.1:{port}/0"\n'
        f'[targets.pg]\nkind = "postgres"\nenvironment = "test"\n'
        f'dsn = "postgresql://someone:pa55word-x@127.0.0.1:{port}/x"\n'
    )
    found = await identify_all(settings(toml))
    for name in ("gone", "pg"):
        assert found[name].instance is None and found[name].unknown
        assert f"{name!r} could not be identified" in found[name].unknown
        assert "hunter2secret" not in found[name].unknown and "pa55word-x" not in found[name].unknown
        with pytest.raises(LookupError):
            resource_for(found[name], "instance")


async def test_a_role_that_may_not_read_the_system_identifier_falls_back_to_what_it_may_read(
    state_dir: Path, postgres_factory: Any
) -> None:
    first, second = postgres_factory(), postgres_factory()
    with psycopg.connect(first.admin_dsn, autocommit=True) as conn:  # pg_proc is per database
        conn.execute("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")
    # The app role's own database is `first`, so identity is asked there, where it may not call it.
    dsn = first.app_dsn
    toml = "".join(
        f'[targets.{name}]\nkind = "postgres"\nenvironment = "test"\n'
        f'dsn = "{dsn.replace("127.0.0.1", host)}"\ndatabase = "{second.database}"\n'
        for name, host in (("a", "127.0.0.1"), ("b", "localhost"))
    )
    found = await identify_all(settings(toml))
    assert found["a"].how == found["b"].how == "start_time"
    assert found["a"].database is not None and found["a"].database == found["b"].database
