"""PostgreSQL probe: connect time, query latency, errors and connections in use.

One `sample()` opens `connects` fresh connections (each timed: `connect_time_p50/_p95`),
then on one of them runs `SELECT 1` `queries` times (`latency_p50/_p95`, unlabelled) and
the configured `query` as many times (`latency_p50/_p95` with labels {"query": "configured"}),
and reads `connections_in_use`: backends of the database in pg_stat_activity.

Every attempt (connect or query) counts in `requests`; a refused or timed-out connection,
a failed query or a query cut off by `timeout` counts in `errors` / `error_rate`. Only a
DSN that cannot be parsed, or a configured query PostgreSQL rejects as a syntax error,
raises `ProbeError`. Passwords never appear in notes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import anyio
import psycopg
from psycopg import conninfo, errors

from chaos_mcp.probes import catalog
from chaos_mcp.probes.base import Measurement, Probe, ProbeError
from chaos_mcp.probes.statistics import Window, error_measurements, latency_measurements
from chaos_mcp.secrets import redact_text, secrets_in_url

_IN_USE = "SELECT count(*) FROM pg_stat_activity WHERE datname = coalesce(%s, current_database())"


@dataclass
class _Tally:
    connect_ms: list[float] = field(default_factory=list)
    select_ms: list[float] = field(default_factory=list)
    query_ms: list[float] = field(default_factory=list)
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    in_use: int | None = None
    pending: str = ""  # the attempt awaiting an answer, if any


@dataclass
class PostgresProbe(Probe):
    name: str
    dsn: str
    query: str | None = None
    database: str | None = None
    connects: int = 3
    queries: int = 10
    timeout: float = 5.0
    _secrets: set[str] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        self._secrets = secrets_in_url(self.dsn) | _kv_password(self.dsn)
        try:
            conninfo.conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError as exc:
            raise ProbeError(
                f"{self.name}: the DSN cannot be read ({self._redact(str(exc))}); "
                "expected postgresql://user@host:port/db or 'host=… dbname=…'"
            ) from None
        for key in ("connects", "queries"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ProbeError(f"{self.name}: {key} must be a whole number ≥ 1, got {value!r}")
        if not self.timeout > 0:
            raise ProbeError(
                f"{self.name}: timeout must be a positive number of seconds, got {self.timeout!r}"
            )

    def metrics(self) -> list[catalog.MetricSpec]:
        found = catalog.latency("connect_time", (50, 95), (), "time to open a connection")
        found += catalog.latency("latency", (50, 95), ("query",), "query time (SELECT 1; query=configured)")
        found += catalog.errors()
        found.append(catalog.MetricSpec("connections_in_use", "count", (), "backends of the database"))
        return found

    async def sample(self) -> list[Measurement]:
        tally = _Tally()
        started = time.time()
        conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        try:
            with anyio.move_on_after(self.timeout) as scope:
                conn = await self._connections(tally)
                if conn is not None:
                    await self._queries(conn, tally)
            if scope.cancelled_caught and tally.pending:
                tally.failures.append(f"{tally.pending}: no answer within {self.timeout:g}s")
        finally:
            if conn is not None:
                with anyio.move_on_after(1.0, shield=True):
                    await conn.close()
        return self._measurements(tally, Window(self.name, started, time.time()))

    async def _connections(self, tally: _Tally) -> psycopg.AsyncConnection[tuple[object, ...]] | None:
        kept: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        for _ in range(self.connects):
            tally.attempts += 1
            tally.pending = "connect"
            begin = time.perf_counter()
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn, connect_timeout=max(2, math.ceil(self.timeout)), autocommit=True
                )
            except psycopg.Error as exc:
                tally.pending = ""
                tally.failures.append(f"connect: {self._describe(exc)}")
                continue
            tally.pending = ""
            tally.connect_ms.append(_ms_since(begin))
            if kept is None:
                kept = conn
            else:
                await conn.close()
        return kept

    async def _queries(self, conn: psycopg.AsyncConnection[tuple[object, ...]], tally: _Tally) -> None:
        plan = [("SELECT 1", tally.select_ms)] + ([(self.query, tally.query_ms)] if self.query else [])
        for _ in range(self.queries):
            for sql, timings in plan:
                await self._timed(conn, sql, timings, tally)
        tally.attempts += 1
        tally.pending = "pg_stat_activity"
        try:  # a timeout here leaves `pending` set: the cut-off attempt counts as an error
            cursor = await conn.execute(_IN_USE, (self.database,))
            row = await cursor.fetchone()
            tally.in_use = int(str(row[0])) if row else None
        except psycopg.Error as exc:
            tally.failures.append(f"pg_stat_activity: {self._describe(exc)}")
        tally.pending = ""

    async def _timed(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], sql: str, timings: list[float], tally: _Tally
    ) -> None:
        tally.attempts += 1
        tally.pending = "query"
        begin = time.perf_counter()
        try:
            cursor = await conn.execute(sql.encode())
            if cursor.description is not None:
                await cursor.fetchall()
        except errors.SyntaxError as exc:
            raise ProbeError(
                f"{self.name}: the configured query is not valid SQL: {self._describe(exc)}"
            ) from None
        except psycopg.Error as exc:
            tally.pending = ""
            tally.failures.append(f"query: {self._describe(exc)}")
            return
        tally.pending = ""
        timings.append(_ms_since(begin))

    def _measurements(self, tally: _Tally, window: Window) -> list[Measurement]:
        note = _failure_note(tally)
        found = latency_measurements(window, "connect_time", tally.connect_ms, (50, 95))
        found += latency_measurements(window, "latency", tally.select_ms, (50, 95))
        found += latency_measurements(
            window.with_labels(query="configured"), "latency", tally.query_ms, (50, 95)
        )
        found += error_measurements(window, len(tally.failures), tally.attempts, note)
        if tally.in_use is not None:
            found.append(window.measurement("connections_in_use", float(tally.in_use), "count", 1))
        return found

    def _describe(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return self._redact(f"{type(exc).__name__}: {text}")

    def _redact(self, text: str) -> str:
        return redact_text(text, self._secrets)


def _failure_note(tally: _Tally) -> str:
    if not tally.failures:
        return ""
    return f"{len(tally.failures)} of {tally.attempts} failed; first: {tally.failures[0]}"


def _kv_password(dsn: str) -> set[str]:
    try:
        password = conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return set()
    return {str(password)} if password else set()


def _ms_since(begin: float) -> float:
    return (time.perf_counter() - begin) * 1000.0
