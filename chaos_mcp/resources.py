"""What a target physically is, asked of the system itself, never read off a DSN or URL string.

Two names, `localhost` and `127.0.0.1`, a socket path or a proxy in front all fool a string
comparison; the system's own answer does not:

    PostgreSQL cluster   its system identifier (pg_control_system())
    PostgreSQL database  the cluster + the database's OID
    Redis server         its run_id (INFO server); a numbered database = the server + the number
    proxy listener       the proxy daemon's API + the listen address, nested under the upstream
                         target's own resource when that is known
    schedule working copy  the target + the path of its working copy
    process ballast      the host: no resource shared with anyone, so nothing to hold
    tcp endpoint         the Redis server answering there (run_id) when it answers as one; otherwise
                         nothing beyond its name and proxy listener

A resource key is a path: `pg:<sysid>` contains `pg:<sysid>/db:<oid>`, `redis:<run_id>` contains
`redis:<run_id>/db:<n>`. Two keys overlap when one is the other or contains it; that is all the
holds need. Identity is resolved when needed (inject, list_targets) with short timeouts; a target
that does not answer has an unknown identity, with the reason.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio

from chaos_mcp.config import PostgresTarget, RedisTarget, ScheduleTarget, Settings, Target, TcpTarget
from chaos_mcp.faults.base import Reach
from chaos_mcp.secrets import redact_text, secrets_in_url

TIMEOUT = 2.0


@dataclass(frozen=True)
class Identity:
    """One target as the system sees it. Keys are None where the target has no such resource."""

    target: str
    family: str | None = None  # "postgres" | "redis": targets of one family may share an instance
    instance: str | None = None
    database: str | None = None
    working_copy: str | None = None
    listener: str | None = None
    label: str = ""
    instance_label: str = ""
    how: str = ""
    unknown: str | None = None  # why the shared resources could not be identified


@dataclass(frozen=True)
class Resource:
    key: str
    label: str


def overlaps(a: str, b: str) -> bool:
    """One key is the other, or contains it (a server its databases, a database its proxy)."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def dsn_database(dsn: str) -> str:
    """The database libpq connects a DSN to: its dbname, else PGDATABASE, else the user name (given, PGUSER,
    or the operating-system user), never a guessed 'postgres'. A DSN naming a `service` may set its dbname
    in a service file libpq reads and psycopg does not: name the database in the DSN then."""
    from psycopg import pq
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(dsn)
    defaults = {o.keyword.decode(): o.val.decode() for o in pq.Conninfo.get_defaults() if o.val}
    return str(
        given.get("dbname")
        or defaults.get("dbname")
        or given.get("user")
        or defaults.get("user")
        or "postgres"
    )


def resource_for(identity: Identity, reach: Reach) -> Resource | None:
    """The resource a fault of this reach acts on; None when it shares nothing (host-level ballast).

    Raises LookupError with the reason when the resource exists but could not be identified.
    """
    if reach == "host":
        return None
    if reach == "working_copy":
        return (
            Resource(identity.working_copy, f"the working copy of {identity.target!r}")
            if identity.working_copy
            else None
        )
    if reach == "listener":
        if identity.listener is None:
            return None
        return Resource(identity.listener, f"the proxy listener of {identity.target!r}")
    key = identity.instance if reach == "instance" else identity.database
    if key is None:
        raise LookupError(identity.unknown or f"target {identity.target!r} has no {reach} to act on")
    return Resource(key, identity.instance_label if reach == "instance" else identity.label)


async def identify(name: str, target: Target, settings: Settings) -> Identity:
    """Ask the system what `target` is; never raises: failures become `unknown` with the reason."""
    listener = _listener_key(settings, target)
    working_copy = _working_copy_key(name) if isinstance(target, ScheduleTarget) else None
    base = Identity(target=name, listener=listener, working_copy=working_copy, label=f"target {name!r}")
    try:
        with anyio.fail_after(TIMEOUT + 1):
            found = await _ask(name, target)
    except TimeoutError:
        found = _unknown(name, target, f"no answer within {TIMEOUT + 1:g}s")
    except Exception as exc:  # whatever the client library raises: the reason, without secrets
        found = _unknown(name, target, _clean(exc, target))
    if found is None:
        return base
    nested = f"{found.database}/{listener}" if listener and found.database else listener
    return Identity(
        target=name,
        family=found.family,
        instance=found.instance,
        database=found.database,
        working_copy=working_copy,
        listener=nested,
        label=found.label,
        instance_label=found.instance_label,
        how=found.how,
        unknown=found.unknown,
    )


async def identify_all(settings: Settings) -> dict[str, Identity]:
    """Every configured target at once (concurrently, each bounded by TIMEOUT)."""
    found: dict[str, Identity] = {}

    async def one(name: str, target: Target) -> None:
        found[name] = await identify(name, target, settings)

    async with anyio.create_task_group() as tg:
        for name, target in settings.targets.items():
            tg.start_soon(one, name, target)
    return {name: found[name] for name in settings.targets}


def sharing(identities: dict[str, Identity]) -> dict[str, list[str]]:
    """For each target, the other targets served by the same instance (Redis server, PG cluster)."""
    result: dict[str, list[str]] = {}
    for name, identity in identities.items():
        result[name] = sorted(
            other
            for other, seen in identities.items()
            if other != name and identity.instance is not None and seen.instance == identity.instance
        )
    return result


# ---------------------------------------------------------------- asking each kind of system


async def _ask(name: str, target: Target) -> Identity | None:
    if isinstance(target, PostgresTarget):
        from chaos_mcp.scenarios.infrastructure import database_of

        return await _postgres(name, target.dsn, database_of(target))
    if isinstance(target, ScheduleTarget) and target.source == "postgres" and target.dsn:
        return await _postgres(name, target.dsn, dsn_database(target.dsn))
    if isinstance(target, RedisTarget):
        return await _redis(name, target.url)
    if isinstance(target, TcpTarget):
        return await _tcp(name, target.address)
    return None


TCP_HANDSHAKE = 0.5


async def _tcp(name: str, address: str) -> Identity | None:
    """A plain TCP endpoint is asked whether it is a Redis server (INFO server: its run_id), briefly.

    Only Redis can be told this way: an endpoint that does not answer as Redis within TCP_HANDSHAKE
    (another protocol, a Redis that needs a password, nothing listening) keeps no identity, as before,
    so it is held only through its own name and proxy listener.
    """
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    client = aioredis.Redis(
        host=host.strip("[]"),
        port=int(port),
        socket_connect_timeout=TCP_HANDSHAKE,
        socket_timeout=TCP_HANDSHAKE,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        with anyio.fail_after(TCP_HANDSHAKE * 2):
            info = await client.info("server")
        run_id = str(info["run_id"])
    except Exception:  # anything but a Redis answer: not identifiable this way
        return None
    finally:
        await client.aclose()
    return _redis_identity(name, run_id, None, f"(answering at {address})")


async def _postgres(name: str, dsn: str, database: str) -> Identity:
    import psycopg

    from chaos_mcp.faults.postgres import admin_database

    # The target database may be the one a fault blocks: ask through the admin connection's own
    # database, or the maintenance database when that is the target (as the faults do).
    conninfo = psycopg.conninfo.make_conninfo(
        dsn,
        dbname=admin_database(dsn, database, "postgres"),
        connect_timeout=int(TIMEOUT),
        application_name="chaos-mcp-identify",
    )
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cluster, how = await _cluster_id(conn)
        cursor = await conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (database,))
        row = await cursor.fetchone()
    instance = f"pg:{cluster}"
    instance_label = f"PostgreSQL cluster {cluster[:12]}"
    if row is None:
        return Identity(
            target=name,
            family="postgres",
            instance=instance,
            instance_label=instance_label,
            how=how,
            unknown=f"database {database!r} does not exist on that server",
        )
    return Identity(
        target=name,
        family="postgres",
        instance=instance,
        database=f"{instance}/db:{row[0]}",
        label=f"database {database!r} (OID {row[0]}) on {instance_label}",
        instance_label=instance_label,
        how=how,
    )


async def _cluster_id(conn: Any) -> tuple[str, str]:
    """The cluster's own identifier, from the strongest source this role may read.

    1. pg_control_system().system_identifier: fixed at initdb, the same through every address and
       for every role (PUBLIC may call it unless an administrator revoked that).
    2. data_directory + port (needs pg_read_all_settings): one cluster on one host; two hosts with
       the same path and port would look like one cluster, which only asks a person more often.
    3. port + postmaster start time: what any role can read, the same through a socket or TCP, but
       new after a restart.
    Roles that reach one cluster through different sources get different keys, so the operator's
    admin DSNs should be able to call pg_control_system() (the default); list_targets shows the
    source as `identified_by`.
    """
    import psycopg

    try:
        cursor = await conn.execute("SELECT system_identifier::text FROM pg_control_system()")
        row = await cursor.fetchone()
        if row and row[0]:
            return str(row[0]), "system_identifier"
    except psycopg.errors.InsufficientPrivilege:
        pass
    try:
        cursor = await conn.execute(
            "SELECT current_setting('data_directory') || ':' || current_setting('port')"
        )
        row = await cursor.fetchone()
        return _digest(str(row[0])), "data_directory"
    except psycopg.errors.InsufficientPrivilege:
        pass
    cursor = await conn.execute("SELECT current_setting('port') || '@' || pg_postmaster_start_time()::text")
    row = await cursor.fetchone()
    return _digest(str(row[0])), "start_time"


async def _redis(name: str, url: str) -> Identity:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    try:
        info = await client.info("server")
        number = int(client.connection_pool.connection_kwargs.get("db") or 0)
    finally:
        await client.aclose()
    return _redis_identity(name, str(info["run_id"]), number, "")


def _redis_identity(name: str, run_id: str, number: int | None, where: str) -> Identity:
    """A Redis server is its `run_id`; one of its numbered databases, that plus the number."""
    instance = f"redis:{run_id}"
    instance_label = f"Redis server {run_id[:12]}"
    label = f"{instance_label} {where}" if number is None else f"Redis database {number} on {instance_label}"
    return Identity(
        target=name,
        family="redis",
        instance=instance,
        database=None if number is None else f"{instance}/db:{number}",
        label=label,
        instance_label=instance_label,
        how="run_id",
    )


def _unknown(name: str, target: Target, reason: str) -> Identity:
    family = {"redis": "redis", "postgres": "postgres", "schedule": "postgres"}.get(target.kind)
    return Identity(target=name, family=family, unknown=f"target {name!r} could not be identified: {reason}")


def _listener_key(settings: Settings, target: Target) -> str | None:
    if target.proxy is None:
        return None
    api = urlsplit(settings.proxy.api)
    daemon = f"{_host(api.hostname or '')}:{api.port or 8474}"
    host, _, port = target.proxy.listen.rpartition(":")
    return f"proxy:{_digest(daemon + '|' + _host(host) + ':' + port)}"


def _host(host: str) -> str:
    """Loopback spelled any way is one host; other names are kept as they are (lower case)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    return "127.0.0.1" if address.is_loopback else str(address)


def _working_copy_key(name: str) -> str:
    from chaos_mcp.schedule.overlay import overlay_path

    return f"wc:{_digest(name + '|' + str(overlay_path(name).resolve()))}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _clean(exc: BaseException, target: Target) -> str:
    secrets: set[str] = set()
    for attr in ("dsn", "url"):
        value = getattr(target, attr, None)
        if value:
            secrets |= secrets_in_url(value)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact_text(f"{type(exc).__name__}: {message}"[:300], secrets)
