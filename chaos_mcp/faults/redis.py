"""Native Redis faults, through the target's URL.

    redis.client_pause   CLIENT PAUSE with Redis's own timeout = the window (revert: CLIENT UNPAUSE)
    redis.client_kill    kill the clients of one type, or one address (one shot)
    redis.maxmemory      lower maxmemory (policy noeviction by default: writes fail with OOM);
                         revert restores the previous maxmemory and policy exactly

A note on `CLIENT PAUSE … ALL`: Redis (7.x at least) postpones *every* command of every client
during such a pause, `CLIENT UNPAUSE` included, so one long pause ALL could not be lifted early.
Mode ALL is therefore a chain of short pauses kept up by a detached helper (see `_pauser`), which
Redis ends by itself within one slice of the helper stopping; mode WRITE is a single pause.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chaos_mcp.faults import _detached
from chaos_mcp.faults.base import Fault, FaultError, NotInjected, register_fault
from chaos_mcp.secrets import redact_text, redact_url, secrets_in_url

TIMEOUT = 2.0
PROBE_WINDOW = 0.1
PAUSE_MODES = ("ALL", "WRITE")
CLIENT_TYPES = ("normal", "pubsub", "replica", "master")
KEEP_DATA_POLICIES = ("noeviction",)
EVICTING_POLICIES = (
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)


def client_for(url: str, timeout: float | None = TIMEOUT) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=timeout)


async def command(client: aioredis.Redis, *args: Any) -> Any:
    """One raw command (redis-py's execute_command is untyped)."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


@asynccontextmanager
async def connect(url: str, read_timeout: float | None = TIMEOUT) -> AsyncIterator[aioredis.Redis]:
    """A client of its own; Redis errors come back as FaultError without credentials."""
    client = client_for(url, read_timeout)
    try:
        yield client
    except RedisError as exc:
        message = redact_text(str(exc), secrets_in_url(url))
        raise FaultError(f"Redis at {redact_url(url)} refused or failed: {message}") from None
    finally:
        await client.aclose()


async def answers_within(url: str, probe: tuple[Any, ...], window: float = PROBE_WINDOW) -> bool:
    """From a fresh connection: does `probe` get any reply within `window` seconds?"""
    client = client_for(url, timeout=None)
    try:
        with anyio.move_on_after(window):
            await command(client, *probe)
            return True
        return False
    except RedisError:
        return True  # an error reply is still an answer
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(1):
            await client.aclose()


@register_fault
@dataclasses.dataclass
class ClientPause(Fault):
    """Pause clients (ALL commands, or only WRITE ones) until `expires_at`, ended by Redis itself.

    WRITE: one `CLIENT PAUSE <window> WRITE`; Redis lifts it at the deadline, revert UNPAUSEs.
    ALL: a detached pauser (`chaos_mcp.faults._pauser`) renews `slice_ms` pauses back to back
    until the deadline; if it stops or dies, Redis lifts the pause within one slice. Revert
    stops the pauser and returns once Redis answers again.
    """

    kind = "redis.client_pause"
    reach = "instance"

    url: str
    expires_at: float
    mode: str = "ALL"
    slice_ms: int = 200
    tag: str = dataclasses.field(default_factory=lambda: f"chaos-mcp-pause-{uuid.uuid4().hex[:12]}")
    pid: int | None = None
    start_ticks: int | None = None

    def __post_init__(self) -> None:
        self.mode = self.mode.upper()
        if self.mode not in PAUSE_MODES:
            raise FaultError(f"mode must be ALL or WRITE; got {self.mode!r}")
        if not 50 <= self.slice_ms <= 5000:
            raise FaultError(f"slice_ms must be between 50 and 5000; got {self.slice_ms}")

    async def inject(self) -> None:
        window_ms = math.ceil((self.expires_at - time.time()) * 1000)
        if window_ms <= 0:
            raise NotInjected("expires_at is already past; Redis was not paused")
        try:
            if self.mode == "WRITE":
                async with connect(self.url) as client:
                    await command(client, "CLIENT", "PAUSE", window_ms, "WRITE")
                return
            payload = {"url": self.url, "expires_at": self.expires_at, "slice_ms": self.slice_ms}
            worker = await _detached.spawn("chaos_mcp.faults._pauser", self.tag, payload, ready_timeout=10)
        except FaultError as exc:
            if _no_permission(str(exc)):  # the ACL refused CLIENT PAUSE: Redis ran nothing
                raise NotInjected(
                    f"{exc}. The Redis user may not run CLIENT PAUSE, so nothing was paused; grant it "
                    "the `client` command (ACL SETUSER <user> +client) or use another user"
                ) from None
            raise
        self.pid, self.start_ticks = worker.pid, worker.start_ticks

    async def revert(self) -> None:
        """Stop the pauser, UNPAUSE, and return once Redis answers again (bounded)."""
        _detached.stop_workers(self.tag, _detached.known(self.pid, self.start_ticks))
        await _detached.wait_gone(self.tag)
        bound = min(max(self.expires_at - time.time(), 0), 3 * self.slice_ms / 1000) + 2 * TIMEOUT
        try:
            with anyio.fail_after(bound):
                async with connect(self.url, read_timeout=None) as client:
                    await command(client, "CLIENT", "UNPAUSE")
        except TimeoutError:
            raise FaultError(
                f"Redis at {_where(self.url)} still does not answer {bound:.1f}s after the pause was "
                "lifted; check the server (another pause, or overload) and run rollback again"
            ) from None

    async def verify(self) -> bool:
        """True if an independent client's probe gets no answer within 100 ms."""
        probe = ("PING",) if self.mode == "ALL" else ("DEL", f"chaos-mcp:probe:{self.tag}")
        return not await answers_within(self.url, probe)

    def describe(self) -> str:
        what = "all commands" if self.mode == "ALL" else "write commands"
        return f"pause {what} of Redis at {_where(self.url)} until the deadline"


@register_fault
@dataclasses.dataclass
class ClientKill(Fault):
    """One shot: kill the clients of one type, or the client at one address (never our own)."""

    kind = "redis.client_kill"
    reach = "instance"
    one_shot = True

    url: str
    client_type: str | None = None
    addr: str | None = None
    killed: int = 0
    before_id: int | None = None

    def __post_init__(self) -> None:
        if (self.client_type is None) == (self.addr is None):
            raise FaultError("give exactly one of client_type (normal|pubsub|replica|master) or addr")
        if self.client_type is not None and self.client_type not in CLIENT_TYPES:
            accepted = ", ".join(CLIENT_TYPES)
            raise FaultError(f"client_type must be one of {accepted}; got {self.client_type!r}")

    async def inject(self) -> None:
        selector = ("TYPE", self.client_type) if self.client_type else ("ADDR", self.addr)
        async with connect(self.url) as client:
            self.before_id = int(await command(client, "CLIENT", "ID"))
            self.killed = int(await command(client, "CLIENT", "KILL", *selector, "SKIPME", "yes"))

    async def revert(self) -> None:
        """Nothing to restore: killed clients reconnect by themselves."""

    async def verify(self) -> bool:
        """True if none of the matching clients that existed at injection time is still connected."""
        if self.before_id is None:
            return False
        selector = ("TYPE", self.client_type) if self.client_type else ()
        async with connect(self.url) as client:
            listing = await command(client, "CLIENT", "LIST", *selector)
        return not any(
            int(entry.get("id", "0")) < self.before_id
            and (self.client_type or entry.get("addr") == self.addr)
            for entry in _client_list(listing)
        )

    def describe(self) -> str:
        who = f"the {self.client_type} clients" if self.client_type else f"the client at {self.addr}"
        return f"kill {who} of Redis at {_where(self.url)}"


@register_fault
@dataclasses.dataclass
class MaxMemory(Fault):
    """Lower maxmemory (and set a policy) so writes fail; revert restores both exactly.

    limit_bytes defaults to half of the memory in use at prepare time, so with the default policy
    `noeviction` every write that needs memory is refused with OOM while reads keep working.
    Evicting policies delete data; they are refused unless allow_eviction is true.
    With `expires_at`, a detached warden restores both at that time if nobody did.
    """

    kind = "redis.maxmemory"
    reach = "instance"

    url: str
    limit_bytes: int | None = None
    policy: str = "noeviction"
    allow_eviction: bool = False
    previous_maxmemory: str | None = None
    previous_policy: str | None = None
    expires_at: float | None = None
    warden_tag: str = dataclasses.field(default_factory=lambda: f"chaos-mcp-warden-{uuid.uuid4().hex[:12]}")

    def __post_init__(self) -> None:
        if self.policy not in KEEP_DATA_POLICIES + EVICTING_POLICIES:
            accepted = ", ".join(KEEP_DATA_POLICIES + EVICTING_POLICIES)
            raise FaultError(f"policy must be one of {accepted}; got {self.policy!r}")
        if self.policy in EVICTING_POLICIES and not self.allow_eviction:
            raise FaultError(
                f"policy {self.policy} evicts (deletes) keys; use noeviction, or set allow_eviction "
                "to true if losing data is part of the experiment"
            )
        if self.limit_bytes is not None and self.limit_bytes < 1:
            raise FaultError(f"limit_bytes must be at least 1; got {self.limit_bytes}")

    async def prepare(self) -> None:
        """Record the current values once (preparing again never overwrites them) and pick the limit."""
        async with connect(self.url) as client:
            current = await client.config_get("maxmemory*")
            used = int((await client.info("memory"))["used_memory"])
        if self.previous_maxmemory is None or self.previous_policy is None:
            self.previous_maxmemory = str(current["maxmemory"])
            self.previous_policy = str(current["maxmemory-policy"])
        if self.limit_bytes is None:
            self.limit_bytes = max(used // 2, 1)
        previous = int(self.previous_maxmemory)
        if previous and self.limit_bytes >= previous:
            raise FaultError(
                f"limit_bytes {self.limit_bytes} is not lower than the current maxmemory {previous}; "
                "ask for less to create memory pressure"
            )

    async def inject(self) -> None:
        if self.previous_maxmemory is None or self.limit_bytes is None:
            raise FaultError("prepare() must record maxmemory before inject(); nothing was changed")
        if self.expires_at is not None:
            if self.expires_at <= time.time():
                raise FaultError("expires_at is already past; nothing was changed")
            await _detached.start_warden(self.warden_tag, self.to_record(), self.expires_at)
        try:
            async with connect(self.url) as client:
                await client.config_set("maxmemory-policy", self.policy)  # first: lowering must not evict
        except FaultError as exc:
            if not _no_permission(str(exc)):
                raise
            await _detached.stop_warden(self.warden_tag)
            raise NotInjected(
                f"{exc}. The Redis user may not run CONFIG SET, so nothing was changed; grant it "
                "(ACL SETUSER <user> +config|set) or use another user"
            ) from None
        async with connect(self.url) as client:
            await client.config_set("maxmemory", self.limit_bytes)

    async def revert(self) -> None:
        if self.previous_maxmemory is None or self.previous_policy is None:
            return  # prepare never recorded anything, so inject never changed anything
        async with connect(self.url) as client:  # limit first: never evict under the old policy
            await client.config_set("maxmemory", self.previous_maxmemory)
            await client.config_set("maxmemory-policy", self.previous_policy)
        await _detached.stop_warden(self.warden_tag)

    async def verify(self) -> bool:
        async with connect(self.url) as client:
            current = await client.config_get("maxmemory*")
        limit, policy = str(current["maxmemory"]), str(current["maxmemory-policy"])
        return limit == str(self.limit_bytes) and policy == self.policy

    def describe(self) -> str:
        return f"lower maxmemory of Redis at {_where(self.url)} to {self.limit_bytes} bytes ({self.policy})"


def _where(url: str) -> str:
    """host:port/db of a Redis URL, without credentials."""
    return redact_url(url).split("@")[-1].split("://")[-1]


def _client_list(listing: Any) -> list[dict[str, str]]:
    text = listing.decode() if isinstance(listing, bytes) else str(listing)
    entries = []
    for line in text.splitlines():
        pairs = (field.partition("=") for field in line.split(" ") if "=" in field)
        entries.append({key: value for key, _, value in pairs})
    return entries


def _no_permission(message: str) -> bool:
    """Redis's NOPERM reply (an ACL refusal: the command was not run), as redis-py words it."""
    return "NOPERM" in message or "no permissions to run" in message
