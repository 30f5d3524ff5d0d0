"""The private-service fixtures: isolated, usable, and gone afterwards."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import redis

from tests.fixtures.services import PostgresDatabase, RedisServer


def test_each_private_redis_is_its_own_server(redis_factory: Callable[[], RedisServer]) -> None:
    first, second = redis_factory(), redis_factory()
    assert first.port != second.port
    with redis.Redis.from_url(first.url) as a, redis.Redis.from_url(second.url) as b:
        a.set("only-here", "1")
        assert b.get("only-here") is None
        assert a.config_get("save")["save"] == ""


def test_the_private_database_belongs_to_its_own_role_with_a_password(own_postgres: PostgresDatabase) -> None:
    assert own_postgres.password in own_postgres.app_dsn
    assert own_postgres.password not in own_postgres.admin_dsn
    with psycopg.connect(own_postgres.app_dsn) as conn:
        row = conn.execute(
            "SELECT current_user, pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert row == (own_postgres.role, own_postgres.role)


def test_private_databases_are_dropped_with_their_roles(
    postgres_factory: Callable[[], PostgresDatabase],
) -> None:
    from tests.fixtures import services

    made = postgres_factory()
    with services._admin() as conn:
        services._drop(conn, made.database)
        left = conn.execute(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname = %s) + "
            "(SELECT count(*) FROM pg_roles WHERE rolname = %s)",
            (made.database, made.role),
        ).fetchone()
    assert left == (0,)
