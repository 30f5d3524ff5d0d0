"""Prometheus probe: one instant query against a Prometheus-compatible HTTP API.

`GET {base_url}/api/v1/query?query=…` and turn the answer into measurements named `metric`
(default "value") in `unit`:

    scalar                      one measurement
    vector with one series      one measurement, labelled with the series' labels
    vector with several series  one measurement per series, each labelled

Anything else is a bad answer, reported as data, not raised: `errors` = 1 and `error_rate`
= 1.0 with a note saying what came back (an error status, a body that is not Prometheus
JSON, a string or matrix result, a non-numeric or NaN value, no series). A good answer
carries `errors` = 0 and `error_rate` = 0.0. Only a malformed configuration — a base URL
that is not http(s), an empty query — raises `ProbeError`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from chaos_mcp.probes import catalog
from chaos_mcp.probes.base import Measurement, Probe, ProbeError
from chaos_mcp.probes.statistics import Window, error_measurements
from chaos_mcp.secrets import redact_text, redact_url, secrets_in_url


class BadAnswer(Exception):
    """The server answered, but not with a numeric Prometheus result."""


@dataclass
class PrometheusProbe(Probe):
    name: str
    base_url: str
    query: str
    metric: str = "value"
    unit: str = ""
    timeout: float = 5.0

    def __post_init__(self) -> None:
        try:
            url = httpx.URL(self.base_url)
        except (httpx.InvalidURL, TypeError):
            url = httpx.URL("invalid:")
        if url.scheme not in ("http", "https") or not url.host:
            raise ProbeError(
                f"{self.name}: Prometheus base_url must be http(s)://host:port, e.g. http://127.0.0.1:9090; "
                f"got {redact_url(str(self.base_url))}"
            )
        if not isinstance(self.query, str) or not self.query.strip():
            raise ProbeError(f'{self.name}: query must be a PromQL expression, e.g. up{{job="api"}}')
        if not self.metric.isidentifier():
            raise ProbeError(f"{self.name}: metric must be a name such as alert_firing, got {self.metric!r}")
        if not self.timeout > 0:
            raise ProbeError(f"{self.name}: timeout must be a positive number of seconds")

    def metrics(self) -> list[catalog.MetricSpec]:
        query = catalog.MetricSpec(
            self.metric, self.unit or "count", (), f"Prometheus query {self.query!r}", any_labels=True
        )
        return [query, *catalog.errors()]

    async def sample(self) -> list[Measurement]:
        started = time.time()
        try:
            with anyio.fail_after(self.timeout):
                values = await self._query()
        except (BadAnswer, httpx.HTTPError, TimeoutError) as exc:
            window = Window(self.name, started, time.time())
            return error_measurements(window, 1, 1, self._describe(exc))
        window = Window(self.name, started, time.time())
        found = [
            window.with_labels(**labels).measurement(self.metric, value, self.unit, 1)
            for labels, value in values
        ]
        return found + error_measurements(window, 0, 1)

    async def _query(self) -> list[tuple[dict[str, str], float]]:
        url = self.base_url.rstrip("/") + "/api/v1/query"
        async with httpx.AsyncClient(timeout=self.timeout, trust_env=False) as client:
            response = await client.get(url, params={"query": self.query})
        try:
            body = response.json()
        except ValueError:
            raise BadAnswer(
                f"HTTP {response.status_code} with a body that is not Prometheus JSON: "
                f"{response.text[:120]!r}"
            ) from None
        return parse_answer(body, response.status_code)

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            text = f"no answer within {self.timeout:g}s"
        else:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return redact_text(f"query {self.query!r}: {text}", secrets_in_url(self.base_url))


def parse_answer(body: Any, status_code: int = 200) -> list[tuple[dict[str, str], float]]:
    """(labels, value) per series of an instant-query answer; BadAnswer says what is wrong."""
    if not isinstance(body, dict) or "status" not in body:
        raise BadAnswer(f"HTTP {status_code} with JSON that is not a Prometheus answer (no 'status')")
    if body["status"] != "success":
        raise BadAnswer(f"Prometheus error {body.get('errorType', '?')}: {body.get('error', 'no detail')}")
    data = body.get("data")
    if not isinstance(data, dict) or "result" not in data:
        raise BadAnswer("Prometheus answer without data.result")
    kind, result = data.get("resultType"), data["result"]
    if kind == "scalar":
        return [({}, _number(result))]
    if kind == "vector":
        if not isinstance(result, list) or not result:
            raise BadAnswer("the query matched no series (empty vector); use `… or vector(0)` for a default")
        return [(_labels(series), _number(series.get("value"))) for series in result]
    raise BadAnswer(f"result type {kind!r} is not a number; an instant query must give a scalar or a vector")


def _labels(series: Any) -> dict[str, str]:
    if not isinstance(series, dict):
        raise BadAnswer("a vector element is not an object")
    labels = series.get("metric", {})
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _number(sample: Any) -> float:
    if not isinstance(sample, list) or len(sample) != 2:
        raise BadAnswer(f'expected [timestamp, "value"], got {sample!r}'[:160])
    try:
        value = float(sample[1])
    except (TypeError, ValueError):
        raise BadAnswer(f"value {sample[1]!r} is not a number"[:160]) from None
    if math.isnan(value):
        raise BadAnswer("value is NaN")
    return value
