"""TCP probe: can a connection be opened, and how fast?

One `sample()` opens `connects` TCP connections to `address` (host:port), one after the
other, each closed at once. Figures: `connect_time_p50/_p95` (ms) of the ones that opened,
`requests`, `errors`, `error_rate` (refused, unreachable, or no answer within the timeout).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

from chaos_mcp.probes import catalog
from chaos_mcp.probes.base import Measurement, Probe, ProbeError
from chaos_mcp.probes.statistics import Window, error_measurements, latency_measurements


@dataclass
class TcpProbe(Probe):
    name: str
    address: str
    connects: int = 3
    timeout: float = 3.0

    def __post_init__(self) -> None:
        host, _, port = self.address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ProbeError(
                f"{self.name}: address must be host:port, e.g. 127.0.0.1:8080; got {self.address!r}"
            )
        if isinstance(self.connects, bool) or not isinstance(self.connects, int) or self.connects < 1:
            raise ProbeError(f"{self.name}: connects must be a whole number ≥ 1, got {self.connects!r}")
        if not self.timeout > 0:
            raise ProbeError(f"{self.name}: timeout must be a positive number of seconds")
        self._host, self._port = host.strip("[]"), int(port)

    def metrics(self) -> list[catalog.MetricSpec]:
        return catalog.latency("connect_time", (50, 95), (), "time to open a connection") + catalog.errors()

    async def sample(self) -> list[Measurement]:
        started = time.time()
        timings: list[float] = []
        failures: list[str] = []
        with anyio.move_on_after(self.timeout) as scope:
            for _ in range(self.connects):
                begin = time.perf_counter()
                try:
                    stream = await anyio.connect_tcp(self._host, self._port)
                except OSError as exc:
                    failures.append(_describe(exc))
                    continue
                timings.append((time.perf_counter() - begin) * 1000.0)
                await stream.aclose()
        if scope.cancelled_caught:
            failures.append(f"no connection within {self.timeout:g}s")
        attempts = len(timings) + len(failures)
        note = f"{len(failures)} of {attempts} failed; first: {failures[0]}" if failures else ""
        window = Window(self.name, started, time.time())
        return latency_measurements(window, "connect_time", timings, (50, 95)) + error_measurements(
            window, len(failures), attempts, note
        )


def _describe(exc: OSError) -> str:
    """anyio reports "All connection attempts failed"; the cause says why (refused, unreachable)."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    return f"{type(cause).__name__}: {cause.strerror or cause}"
