"""Redis probe: PING and GET latency, errors.

One `sample()` sends `commands` PINGs and as many GETs of `key` (a missing key is a fine
answer), alternating, over one connection. Figures: `latency_p50/_p95` (ms) overall and per
command (labels {"command": "PING" | "GET"}), `requests`, `errors`, `error_rate`.

A paused or hung Redis must not hang the probe: every socket operation has a timeout
(`command_timeout`, default a third of `timeout`), retries are off, and the whole sample is
bounded by `timeout` — a command cut off then counts as an error. Only a URL redis-py cannot
read raises `ProbeError`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from chaos_mcp.probes import catalog
from chaos_mcp.probes.base import Measurement, Probe, ProbeError
from chaos_mcp.probes.statistics import Window, error_measurements, latency_measurements
from chaos_mcp.secrets import redact_text, redact_url, secrets_in_url

CALLS: dict[str, Callable[[aioredis.Redis, str], Awaitable[object]]] = {
    "PING": lambda client, key: client.ping(),
    "GET": lambda client, key: client.get(key),
}
COMMANDS = tuple(CALLS)


@dataclass
class RedisProbe(Probe):
    name: str
    url: str
    key: str = "chaos-mcp:probe"
    commands: int = 10
    timeout: float = 3.0
    command_timeout: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.commands, bool) or not isinstance(self.commands, int) or self.commands < 1:
            raise ProbeError(f"{self.name}: commands must be a whole number ≥ 1, got {self.commands!r}")
        if not self.timeout > 0 or (self.command_timeout is not None and not self.command_timeout > 0):
            raise ProbeError(f"{self.name}: timeout and command_timeout must be positive numbers of seconds")
        try:
            parse_url(self.url)
        except ValueError as exc:
            raise ProbeError(
                f"{self.name}: cannot use Redis URL {redact_url(self.url)}: {self._redact(str(exc))}; "
                "expected redis://[:password@]host:port/db"
            ) from None

    def _connect(self) -> aioredis.Redis:
        wait = self.command_timeout or self.timeout / 3
        return aioredis.Redis.from_url(
            self.url,
            socket_timeout=wait,
            socket_connect_timeout=wait,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            single_connection_client=True,
        )

    def metrics(self) -> list[catalog.MetricSpec]:
        found = catalog.latency("latency", (50, 95), ("command",), "command time (PING, GET)")
        return found + catalog.errors()

    async def sample(self) -> list[Measurement]:
        timings: dict[str, list[float]] = {command: [] for command in COMMANDS}
        failures: list[str] = []
        attempts = 0
        started = time.time()
        client = self._connect()  # one per sample: a connection hurt by a timeout is not reused
        pending = ""
        try:
            with anyio.move_on_after(self.timeout):
                for index in range(self.commands * len(COMMANDS)):
                    pending = COMMANDS[index % len(COMMANDS)]
                    attempts += 1
                    failure = await self._timed(client, pending, timings[pending])
                    pending = ""
                    if failure:
                        failures.append(failure)
            if pending:
                failures.append(f"{pending}: no answer within {self.timeout:g}s")
        finally:
            with anyio.move_on_after(1.0, shield=True):
                await client.aclose()
        return self._measurements(timings, failures, attempts, Window(self.name, started, time.time()))

    async def _timed(self, client: aioredis.Redis, command: str, timings: list[float]) -> str:
        begin = time.perf_counter()
        try:
            await CALLS[command](client, self.key)
        except (RedisError, OSError) as exc:
            return f"{command}: {self._describe(exc)}"
        timings.append((time.perf_counter() - begin) * 1000.0)
        return ""

    def _measurements(
        self, timings: dict[str, list[float]], failures: list[str], attempts: int, window: Window
    ) -> list[Measurement]:
        note = f"{len(failures)} of {attempts} failed; first: {failures[0]}" if failures else ""
        overall = [ms for command in COMMANDS for ms in timings[command]]
        found = latency_measurements(window, "latency", overall, (50, 95))
        for command in COMMANDS:
            found += latency_measurements(
                window.with_labels(command=command), "latency", timings[command], (50, 95)
            )
        return found + error_measurements(window, len(failures), attempts, note)

    def _describe(self, exc: BaseException) -> str:
        text = str(exc) or "no detail"
        return self._redact(f"{type(exc).__name__}: {text}")

    def _redact(self, text: str) -> str:
        return redact_text(text, secrets_in_url(self.url))
