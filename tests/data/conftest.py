"""Data chaos tests: seeded reference-schema databases on the shared cluster, owned by the test.

`seeded_module` is one database per test module (the property test reuses it across examples:
every example restores what it changed, which is what it checks); `seeded` is a fresh one per
test, for tests that write behind the fault's back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos_mcp.data.schema import migrate, seed
from chaos_mcp.schedule.synthetic import generate
from tests.fixtures.services import PostgresDatabase, _admin, _create_database, _drop


def seeded_database(database: PostgresDatabase) -> PostgresDatabase:
    migrate(database.app_dsn)  # the application's role owns its tables
    seed(database.app_dsn, generate(seed=7))
    return database


@pytest.fixture(scope="module")
def seeded_module() -> Iterator[PostgresDatabase]:
    database = _create_database()
    try:
        yield seeded_database(database)
    finally:
        with _admin() as conn:
            _drop(conn, database.database)


@pytest.fixture
def seeded(own_postgres: PostgresDatabase) -> PostgresDatabase:
    return seeded_database(own_postgres)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
