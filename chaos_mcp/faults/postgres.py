"""Native PostgreSQL faults, through the target's admin DSN.

    postgres.terminate_backends   end the sessions of one database (optionally one application/role)
    postgres.block_connections    refuse new sessions to one database; restore the exact previous setting
    postgres.lock_table           hold ACCESS EXCLUSIVE on one table until a deadline, from a helper process

Administrative statements run on a maintenance database (`postgres` by default) whenever the
admin DSN points at the target database itself, so blocking the target never locks us out.
Only the named database is ever touched: every query filters on it, never on the whole cluster.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import sql

from chaos_mcp.faults import _detached
from chaos_mcp.faults.base import Fault, FaultError, NotInjected, register_fault
from chaos_mcp.secrets import redact_text, secrets_in_url

CONNECT_TIMEOUT = 3
APPLICATION = "chaos-mcp"
BLOCK_MODES = ("disallow", "limit_zero")
Conn = psycopg.AsyncConnection[tuple[Any, ...]]


def conninfo(dsn: str, dbname: str, application_name: str = APPLICATION) -> str:
    return psycopg.conninfo.make_conninfo(
        dsn, dbname=dbname, connect_timeout=CONNECT_TIMEOUT, application_name=application_name
    )


def admin_database(dsn: str, target: str, maintenance_db: str) -> str:
    """The DSN's own database, unless that is the target: then the maintenance database."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    own = str(params.get("dbname") or params.get("user") or "postgres")
    return maintenance_db if own == target else own


@asynccontextmanager
async def connect(dsn: str, dbname: str) -> AsyncIterator[Conn]:
    """An autocommit connection; errors come back as FaultError without credentials."""
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo(dsn, dbname), autocommit=True)
    except psycopg.Error as exc:
        raise FaultError(
            f"cannot connect to database {dbname!r} with the admin DSN: {_clean(exc, dsn)}"
        ) from None
    async with conn:
        try:
            yield conn
        except psycopg.Error as exc:
            raise FaultError(f"PostgreSQL refused: {_clean(exc, dsn)}") from None


def _clean(exc: Exception, dsn: str) -> str:
    return redact_text(str(exc).strip(), secrets_in_url(dsn))


async def terminate(
    conn: Conn,
    database: str,
    application_name: str | None = None,
    role: str | None = None,
) -> int:
    """Terminate client backends of one database (never our own); wait up to 5 s for each to end."""
    cursor = await conn.execute(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
        " WHERE datname = %(db)s AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        " AND (%(app)s::text IS NULL OR application_name = %(app)s)"
        " AND (%(role)s::text IS NULL OR usename = %(role)s)",
        {"db": database, "app": application_name, "role": role},
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def database_settings(conn: Conn, database: str) -> tuple[bool, int]:
    cursor = await conn.execute(
        "SELECT datallowconn, datconnlimit FROM pg_database WHERE datname = %s", (database,)
    )
    row = await cursor.fetchone()
    if row is None:
        names = await conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")
        known = ", ".join(str(r[0]) for r in await names.fetchall())
        raise FaultError(f"database {database!r} does not exist; databases on this server: {known}")
    return bool(row[0]), int(row[1])


async def start_warden(fault: BlockConnections) -> None:
    if fault.expires_at is None:
        return
    if fault.expires_at <= time.time():
        raise FaultError("expires_at is already past; nothing was changed")
    await _detached.start_warden(fault.warden_tag, fault.to_record(), fault.expires_at)


def _check_target(database: str, maintenance_db: str) -> None:
    if database in ("template0", "template1", maintenance_db):
        raise FaultError(
            f"refusing to act on database {database!r}: it is a template or the maintenance database "
            f"the admin connection falls back to; point the fault at the application's database"
        )


@register_fault
@dataclasses.dataclass
class TerminateBackends(Fault):
    """One shot: end the client sessions of `database` (optionally only one application_name / role).

    Nothing to undo: clients reconnect by themselves (combine with block_connections to keep them
    out). `verify()` is True when none of the matching sessions that existed at injection survived.
    """

    kind = "postgres.terminate_backends"
    reach = "database"
    one_shot = True

    dsn: str
    database: str
    application_name: str | None = None
    role: str | None = None
    maintenance_db: str = "postgres"
    injected_at: float | None = None
    terminated: int = 0

    async def prepare(self) -> None:
        _check_target(self.database, self.maintenance_db)
        async with connect(self.dsn, self._admin_db()) as conn:
            await database_settings(conn, self.database)

    async def inject(self) -> None:
        async with connect(self.dsn, self._admin_db()) as conn:
            cursor = await conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8")
            row = await cursor.fetchone()
            self.injected_at = float(row[0]) if row else time.time()
            self.terminated = await terminate(conn, self.database, self.application_name, self.role)

    async def revert(self) -> None:
        """Nothing to restore: terminated sessions are gone and new ones are allowed."""

    async def verify(self) -> bool:
        """True if no matching session that started before the injection is still there."""
        if self.injected_at is None:
            return False
        async with connect(self.dsn, self._admin_db()) as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                " AND backend_start < to_timestamp(%(at)s)"
                " AND (%(app)s::text IS NULL OR application_name = %(app)s)"
                " AND (%(role)s::text IS NULL OR usename = %(role)s)",
                {"db": self.database, "at": self.injected_at} | self._filters(),
            )
            row = await cursor.fetchone()
            return row is not None and int(row[0]) == 0

    def _filters(self) -> dict[str, str | None]:
        return {"app": self.application_name, "role": self.role}

    def describe(self) -> str:
        scope = "".join(
            f" with {label} {value!r}"
            for label, value in (("application_name", self.application_name), ("role", self.role))
            if value
        )
        return f"terminate the sessions of database {self.database!r}{scope}"

    def _admin_db(self) -> str:
        return admin_database(self.dsn, self.database, self.maintenance_db)


@register_fault
@dataclasses.dataclass
class BlockConnections(Fault):
    """Refuse new sessions to `database` and end the existing ones; revert restores the exact setting.

    mode "disallow" sets ALLOW_CONNECTIONS false (refuses everyone, superusers included);
    mode "limit_zero" sets CONNECTION LIMIT 0 (refuses all but superusers).
    With `expires_at`, a detached warden restores the setting at that time if nobody did.
    """

    kind = "postgres.block_connections"
    reach = "database"

    dsn: str
    database: str
    mode: str = "disallow"
    terminate_existing: bool = True
    maintenance_db: str = "postgres"
    previous_allow_connections: bool | None = None
    previous_connection_limit: int | None = None
    expires_at: float | None = None
    warden_tag: str = dataclasses.field(default_factory=lambda: f"chaos-mcp-warden-{uuid.uuid4().hex[:12]}")

    def __post_init__(self) -> None:
        if self.mode not in BLOCK_MODES:
            raise FaultError(f"mode must be one of {', '.join(BLOCK_MODES)}; got {self.mode!r}")

    async def prepare(self) -> None:
        """Record the current setting, once: preparing again never overwrites the original."""
        _check_target(self.database, self.maintenance_db)
        async with connect(self.dsn, self._admin_db()) as conn:
            allow, limit = await database_settings(conn, self.database)
        if self.previous_allow_connections is None or self.previous_connection_limit is None:
            self.previous_allow_connections, self.previous_connection_limit = allow, limit

    async def inject(self) -> None:
        if self.previous_allow_connections is None or self.previous_connection_limit is None:
            raise FaultError("prepare() must record the current setting before inject(); nothing was changed")
        option = "ALLOW_CONNECTIONS false" if self.mode == "disallow" else "CONNECTION LIMIT 0"
        await start_warden(self)
        refused = None
        async with connect(self.dsn, self._admin_db()) as conn:
            try:
                await conn.execute(
                    sql.SQL("ALTER DATABASE {} WITH " + option).format(sql.Identifier(self.database))
                )
            except psycopg.errors.InsufficientPrivilege as exc:  # nothing was changed
                refused = _clean(exc, self.dsn)
            else:
                if self.terminate_existing:
                    await terminate(conn, self.database)
        if refused is not None:
            await _detached.stop_warden(self.warden_tag)
            raise NotInjected(
                f"PostgreSQL refused ALTER DATABASE: {refused}. Nothing was changed; the admin DSN's role "
                "must own the database or be a superuser"
            )

    async def revert(self) -> None:
        if self.previous_allow_connections is None or self.previous_connection_limit is None:
            return  # prepare never recorded anything, so inject never changed anything
        async with connect(self.dsn, self._admin_db()) as conn:
            await conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {} CONNECTION LIMIT {}").format(
                    sql.Identifier(self.database),
                    sql.SQL("true" if self.previous_allow_connections else "false"),
                    sql.Literal(self.previous_connection_limit),
                )
            )
        await _detached.stop_warden(self.warden_tag)

    async def verify(self) -> bool:
        async with connect(self.dsn, self._admin_db()) as conn:
            allow, limit = await database_settings(conn, self.database)
        return not allow if self.mode == "disallow" else limit == 0

    def describe(self) -> str:
        how = "ALLOW_CONNECTIONS false" if self.mode == "disallow" else "CONNECTION LIMIT 0"
        ending = ", ending its open sessions" if self.terminate_existing else ""
        return f"block new connections to database {self.database!r} ({how}){ending}"

    def _admin_db(self) -> str:
        return admin_database(self.dsn, self.database, self.maintenance_db)


@register_fault
@dataclasses.dataclass
class LockTable(Fault):
    """Hold ACCESS EXCLUSIVE on `schema.table` until `expires_at` (epoch seconds).

    The lock lives in a detached helper (`chaos_mcp.faults._lock_holder`) whose session is
    tagged with `tag` as application_name; the helper releases the lock and exits at the deadline,
    and the server ends the session by itself shortly after (idle_in_transaction_session_timeout).
    Revert terminates the tagged session and kills the helper.
    """

    kind = "postgres.lock_table"
    reach = "database"

    dsn: str
    database: str
    table: str
    expires_at: float
    schema: str = "public"
    lock_timeout_ms: int = 5000
    maintenance_db: str = "postgres"
    tag: str = dataclasses.field(default_factory=lambda: f"chaos-mcp-lock-{uuid.uuid4().hex[:12]}")
    pid: int | None = None
    start_ticks: int | None = None

    async def prepare(self) -> None:
        async with connect(self.dsn, self.database) as conn:
            cursor = await conn.execute("SELECT to_regclass(%s)", (self._qualified(),))
            row = await cursor.fetchone()
        if row is None or row[0] is None:
            raise FaultError(
                f"table {self.schema}.{self.table} does not exist in database {self.database!r}; "
                f"name an existing table (schema defaults to public)"
            )

    async def inject(self) -> None:
        if self.expires_at <= time.time():
            raise FaultError("expires_at is already past; no lock was taken")
        payload = {
            "conninfo": conninfo(self.dsn, self.database, application_name=self.tag),
            "schema": self.schema,
            "table": self.table,
            "expires_at": self.expires_at,
            "lock_timeout_ms": self.lock_timeout_ms,
        }
        worker = await _detached.spawn(
            "chaos_mcp.faults._lock_holder", self.tag, payload, ready_timeout=self.lock_timeout_ms / 1000 + 10
        )
        self.pid, self.start_ticks = worker.pid, worker.start_ticks

    async def revert(self) -> None:
        _detached.stop_workers(self.tag, _detached.known(self.pid, self.start_ticks))
        async with connect(self.dsn, self._admin_db()) as conn:
            await terminate(conn, self.database, application_name=self.tag)
        await _detached.wait_gone(self.tag)

    async def verify(self) -> bool:
        async with connect(self.dsn, self._admin_db()) as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE a.application_name = %s AND l.locktype = 'relation'"
                " AND l.mode = 'AccessExclusiveLock' AND l.granted",
                (self.tag,),
            )
            row = await cursor.fetchone()
        return row is not None and int(row[0]) > 0

    def describe(self) -> str:
        return f"hold an ACCESS EXCLUSIVE lock on {self.schema}.{self.table} in database {self.database!r}"

    def __post_init__(self) -> None:
        if not 1 <= self.lock_timeout_ms <= 60_000:
            raise FaultError(f"lock_timeout_ms must be between 1 and 60000; got {self.lock_timeout_ms}")

    def _qualified(self) -> str:
        return sql.Identifier(self.schema, self.table).as_string()

    def _admin_db(self) -> str:
        return admin_database(self.dsn, self.database, self.maintenance_db)
