"""HTTP probe: latency percentiles, error rate, status mix and health of a web service.

One `sample()` sends `requests` GETs (or keeps sending for `window` seconds) spread
round-robin over `routes`, from `concurrency` workers sharing one keep-alive
`httpx.AsyncClient`. Figures come overall (no labels) and per route (`{"route": …}`):

    latency_p50 / _p95 / _p99   ms, over every request that got a response or timed out
                                (a refused connection has no latency and is not timed)
    requests, errors            count; an error is a status outside 2xx/3xx, a timeout or
    error_rate                  a transport error (refused, reset); ratio of requests
    responses                   count per status, labels {"status": "200" | "timeout" | …}
    healthy                     1/0: the latest answer of the health route was 2xx (and, for
                                a JSON object with a "status", that status reads as healthy;
                                with `health_body`, the value at its path is one it accepts)
    not_sent                    count (paced probes only): sends that could not start on time
                                because `concurrency` requests were still in flight

With `rate` (requests/s) the sample is a paced stream: send i is due at start + i/rate and
starts only if fewer than `concurrency` requests are in flight; otherwise it is counted as not
sent (the service is too slow to sample at this rate), never queued into a burst. Without
`rate`, `concurrency` workers send back to back. `headers` go with every request and never
appear in a measurement. The whole sample is bounded by `timeout`: requests still in flight
then count as timeouts.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import ssl
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc
import httpx

from chaos_mcp.probes import catalog
from chaos_mcp.probes.base import Measurement, Probe, ProbeError
from chaos_mcp.probes.statistics import Window, error_measurements, latency_measurements
from chaos_mcp.secrets import redact_text, redact_url, secrets_in_url

NOT_SENT = "not sent (the service is too slow to sample at this rate)"
HEALTHY_STATUSES = frozenset({"ok", "healthy", "up", "pass", "passing", "green", "ready"})


@dataclass(frozen=True)
class Outcome:
    route: str
    status: str  # "200", "timeout", "connect_error", "error"
    latency_ms: float | None
    healthy: bool  # meaningful for the health route only
    detail: str = ""  # why it failed, or why the health route reads unhealthy

    @property
    def failed(self) -> bool:
        return not (self.status.isdigit() and 200 <= int(self.status) < 400)


@dataclass
class HttpProbe(Probe):
    name: str
    base_url: str
    routes: Sequence[str] = ()
    health: str | None = "/health"
    requests: int = 20
    window: float | None = None
    concurrency: int = 4
    timeout: float = 5.0
    request_timeout: float | None = None
    rate: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    health_body: tuple[str, Sequence[object]] | None = None
    _plan: list[str] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        try:
            url = httpx.URL(self.base_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ProbeError(
                f"{self.name}: base_url {redact_url(str(self.base_url))} is not a URL: {exc}"
            ) from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ProbeError(
                f"{self.name}: base_url must be http:// or https:// with a host, e.g. http://127.0.0.1:8000; "
                f"got {redact_url(self.base_url)}"
            )
        routes = list(self.routes) or ([self.health] if self.health else [])
        if self.health and self.health not in routes:
            routes.append(self.health)
        bad = [r for r in routes if not isinstance(r, str) or not r.startswith("/")]
        if not routes or bad:
            raise ProbeError(
                f"{self.name}: routes must be paths starting with '/', e.g. /health; got {bad or routes}"
            )
        _positive(self.name, requests=self.requests, concurrency=self.concurrency, timeout=self.timeout)
        if self.request_timeout is not None:
            _positive(self.name, request_timeout=self.request_timeout)
        if self.rate is not None:
            _positive(self.name, rate=self.rate)
        if self.window is not None:
            _positive(self.name, window=self.window)
            if self.window >= self.timeout:
                raise ProbeError(
                    f"{self.name}: window ({self.window:g}s) must be shorter than timeout ({self.timeout:g}s)"
                )
        self._plan = routes

    async def sample(self) -> list[Measurement]:
        outcomes: list[Outcome] = []
        started = time.time()
        plan = self._requests()
        deadline = math.inf if self.window is None else time.monotonic() + self.window
        timeout = httpx.Timeout(self.request_timeout or self.timeout)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        base = self.base_url.rstrip("/")
        not_sent = 0
        async with httpx.AsyncClient(
            timeout=timeout, limits=limits, trust_env=False, headers=dict(self.headers), verify=_tls()
        ) as client:
            with anyio.move_on_after(self.timeout):
                async with anyio.create_task_group() as group:
                    if self.rate is None:
                        for _ in range(self.concurrency):
                            group.start_soon(self._worker, client, base, plan, deadline, outcomes)
                    else:
                        not_sent = await self._paced(group, client, base, plan, deadline, outcomes)
        found = self._measurements(outcomes, Window(self.name, started, time.time()))
        if self.rate is not None:
            note = f"{not_sent} {NOT_SENT}" if not_sent else ""
            window = Window(self.name, started, time.time())
            found.append(window.measurement("not_sent", float(not_sent), "count", len(outcomes), note))
        return found

    async def _paced(
        self,
        group: anyio.abc.TaskGroup,
        client: httpx.AsyncClient,
        base: str,
        plan: Iterator[str],
        deadline: float,
        out: list[Outcome],
    ) -> int:
        """Start send i at start + i/rate when a slot is free; returns how many could not start."""
        period = 1.0 / (self.rate or 1.0)
        begin = time.monotonic()
        in_flight = 0
        not_sent = 0

        async def send(route: str) -> None:
            nonlocal in_flight
            try:
                out.append(await self._one(client, base, route, out))
            finally:
                in_flight -= 1

        for index, route in enumerate(plan):
            due = begin + index * period
            if due >= deadline:
                break
            await anyio.sleep(max(0.0, due - time.monotonic()))
            if in_flight >= self.concurrency:
                not_sent += 1
                continue
            in_flight += 1
            group.start_soon(send, route)
        return not_sent

    def metrics(self) -> list[catalog.MetricSpec]:
        found = catalog.latency("latency", (50, 95, 99), ("route",), "response time")
        found += catalog.errors(("route",))
        found.append(
            catalog.MetricSpec(
                "responses", "count", ("status", "route"), "answers per status (200, 503, timeout, …)"
            )
        )
        if self.health:
            found.append(catalog.MetricSpec("healthy", "bool", (), f"1 when {self.health} reads healthy"))
        found.append(catalog.MetricSpec("not_sent", "count", (), NOT_SENT))
        return found

    def _requests(self) -> Iterator[str]:
        routes = itertools.cycle(self._plan)
        return routes if self.window is not None else itertools.islice(routes, self.requests)

    async def _worker(
        self, client: httpx.AsyncClient, base: str, plan: Iterator[str], deadline: float, out: list[Outcome]
    ) -> None:
        for route in plan:
            if time.monotonic() >= deadline:
                return
            out.append(await self._one(client, base, route, out))

    async def _one(self, client: httpx.AsyncClient, base: str, route: str, out: list[Outcome]) -> Outcome:
        begin = time.perf_counter()
        try:
            response = await client.get(base + route)
        except anyio.get_cancelled_exc_class():
            # The probe's own timeout ended this request: it counts, as a timeout.
            out.append(
                Outcome(route, "timeout", _ms_since(begin), False, f"no answer within {self.timeout:g}s")
            )
            raise
        except httpx.TimeoutException as exc:
            return Outcome(route, "timeout", _ms_since(begin), False, self._redact(exc))
        except httpx.ConnectError as exc:
            return Outcome(route, "connect_error", None, False, self._redact(exc))
        except httpx.TransportError as exc:
            return Outcome(route, "error", _ms_since(begin), False, self._redact(exc))
        latency = _ms_since(begin)
        if route != self.health:
            return Outcome(route, str(response.status_code), latency, healthy=False)
        why_not = _health_of(response, self.health_body)
        return Outcome(route, str(response.status_code), latency, healthy=not why_not, detail=why_not)

    def _redact(self, exc: Exception) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return redact_text(text, secrets_in_url(self.base_url))

    def _measurements(self, outcomes: list[Outcome], window: Window) -> list[Measurement]:
        found = _figures(window, outcomes)
        for route in self._plan:
            found += _figures(window.with_labels(route=route), [o for o in outcomes if o.route == route])
        if self.health:
            health = [o for o in outcomes if o.route == self.health]
            healthy = bool(health) and health[-1].healthy
            note = "" if healthy else _unhealthy_note(self.health, health)
            found.append(window.measurement("healthy", 1.0 if healthy else 0.0, "bool", len(health), note))
        return found


def _figures(window: Window, outcomes: list[Outcome]) -> list[Measurement]:
    latencies = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    errors = sum(o.failed for o in outcomes)
    found = latency_measurements(window, "latency", latencies)
    found += error_measurements(window, errors, len(outcomes), _failure_note(outcomes))
    mix = Counter(o.status for o in outcomes)
    found += [
        window.with_labels(status=status).measurement("responses", float(n), "count", len(outcomes))
        for status, n in sorted(mix.items())
    ]
    return found


def _failure_note(outcomes: list[Outcome]) -> str:
    failed = [o for o in outcomes if o.failed]
    if not failed:
        return ""
    mix = Counter(o.status for o in failed)
    kinds = ", ".join(f"{status} x{n}" for status, n in mix.most_common())
    detail = next((o.detail for o in failed if o.detail), "")
    return f"{len(failed)} of {len(outcomes)} failed ({kinds})" + (f"; first: {detail}" if detail else "")


def _health_of(response: httpx.Response, body_rule: tuple[str, Sequence[object]] | None = None) -> str:
    """ "" when the answer reads healthy, else why not."""
    if not 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}"
    if body_rule is not None:
        return _body_verdict(response, *body_rule)
    if "json" not in response.headers.get("content-type", ""):
        return ""
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    status = body.get("status") if isinstance(body, dict) else None
    if isinstance(status, str) and status.lower() not in HEALTHY_STATUSES:
        return f"status {status!r}"
    return ""


def _body_verdict(response: httpx.Response, path: str, accepted: Sequence[object]) -> str:
    """The declared healthy body: the value at the dotted `path` of the JSON answer is accepted."""
    try:
        value: object = json.loads(response.content)
    except ValueError:
        return f"the answer is not JSON, so {path} cannot be read"
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return f"the JSON answer has no {path}"
        value = value[key]
    if any(value == ok and type(value) is type(ok) for ok in accepted):
        return ""
    shown = (
        json.dumps(value)[:80]
        if isinstance(value, str | int | float | bool) or value is None
        else "an object"
    )
    return f"{path} is {shown}; accepted: {', '.join(json.dumps(a) for a in accepted)}"


def _unhealthy_note(route: str, health: list[Outcome]) -> str:
    if not health:
        return f"no request to {route} finished"
    latest = health[-1]
    return f"latest answer of {route}: {latest.status}" + (f" ({latest.detail})" if latest.detail else "")


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default trust, built once: building it costs ~40 ms, too much to pay every sample."""
    return httpx.create_ssl_context()


def _ms_since(begin: float) -> float:
    return (time.perf_counter() - begin) * 1000.0


def _positive(probe: str, **values: float | int) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ProbeError(f"{probe}: {key} must be a positive number, got {value!r}")
