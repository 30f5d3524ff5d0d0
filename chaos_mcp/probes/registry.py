"""The default probes and steady state of each kind of target.

`probes_for_target(name, target, options)` gives the probes that measure a configured target
(the probe is named after the target); `options` tunes them and may add Prometheus
queries. `DEFAULT_STEADY_STATE[kind]` is the spec's definition of "normal" when a design
gives none: response time < 200 ms, error rate < 0.1 %, schedule coverage 100 %.

Options (all optional; an unknown key is a `ProbeError` listing the accepted ones):

    http      routes, requests, window, concurrency, timeout, request_timeout (the target's
              requests, concurrency and request_timeout are the defaults; its requests_per_second,
              headers and health_body always apply)
    postgres  query, connects, queries, timeout
    redis     key, commands, timeout, command_timeout
    tcp       connects, timeout
    process   address (host:port to connect-probe), connects, timeout
    schedule  (none)
    any kind  prometheus: a list of {base_url, query, metric?, unit?, timeout?}
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from functools import singledispatch
from typing import Any

from chaos_mcp.config import (
    HttpTarget,
    PostgresTarget,
    ProcessTarget,
    RedisTarget,
    ScheduleTarget,
    Target,
    TcpTarget,
)
from chaos_mcp.probes.base import Probe, ProbeError
from chaos_mcp.probes.catalog import PROBE_ERROR, PROBE_TIMEOUT, MetricSpec
from chaos_mcp.probes.http import HttpProbe
from chaos_mcp.probes.logs import FileSource, LogsProbe
from chaos_mcp.probes.postgres import PostgresProbe
from chaos_mcp.probes.prometheus import PrometheusProbe
from chaos_mcp.probes.redis import RedisProbe
from chaos_mcp.probes.tcp import TcpProbe
from chaos_mcp.probes.via_proxy import address_via, dsn_via, url_via

_SERVICE = ["latency_p95 < 200ms", "error_rate < 0.1%"]
DEFAULT_STEADY_STATE: dict[str, list[str]] = {
    "http": [*_SERVICE, "healthy == 1"],
    "postgres": list(_SERVICE),
    "redis": list(_SERVICE),
    "tcp": ["connect_time_p95 < 200ms", "error_rate < 0.1%"],
    "process": [],
    "schedule": ["coverage_pct >= 100%"],
}


def probes_for_target(
    name: str, target: Target, options: Mapping[str, Any] | None = None, secrets: frozenset[str] = frozenset()
) -> list[Probe]:
    """The default probes of `target` (named `name`), tuned by `options`.

    A target with `logs = "PATH"` also gets a logs probe, which counts lines carrying any of
    `secrets` (the configuration's credentials) among its `log_secrets`.
    """
    options = dict(options or {})
    extra = options.pop("prometheus", None) or []
    probes = _probes(target, name, options)
    probes += [_prometheus(name, spec) for spec in _as_list(name, extra)]
    if target.logs:
        probes.append(LogsProbe(name, FileSource(target.logs), secrets))
    return probes


def target_metrics(name: str, target: Target) -> list[MetricSpec]:
    """What the probes of `target` measure (its Prometheus queries included), one entry per metric name.

    Raises ProbeError when the target's probes are misconfigured.
    """
    options: dict[str, Any] = {}
    if target.prometheus:
        options["prometheus"] = [q.model_dump(exclude_none=True) for q in target.prometheus]
    found: dict[str, MetricSpec] = {}
    for probe in probes_for_target(name, target, options):
        for spec in probe.metrics():
            known = found.get(spec.name)
            if known is None:
                found[spec.name] = spec
            elif known.labels != spec.labels or spec.any_labels:
                labels = tuple(dict.fromkeys((*known.labels, *spec.labels)))
                found[spec.name] = dataclasses.replace(
                    known, labels=labels, any_labels=known.any_labels or spec.any_labels
                )
    if found:
        found.setdefault(PROBE_TIMEOUT.name, PROBE_TIMEOUT)
        found.setdefault(PROBE_ERROR.name, PROBE_ERROR)
    return list(found.values())


@singledispatch
def _probes(target: object, name: str, options: dict[str, Any]) -> list[Probe]:
    raise ProbeError(f"{name}: no probes for a target of type {type(target).__name__}")


@_probes.register
def _(target: HttpTarget, name: str, options: dict[str, Any]) -> list[Probe]:
    base_url = url_via(target.base_url, target.proxy)
    headers = target.header_values()
    unset = sorted(header for header, value in headers.items() if not value)
    if unset:
        raise ProbeError(
            f"{name}: header(s) {', '.join(unset)} have no value now (the environment variable or file "
            "named in chaos.toml is unset or empty); set it and try again"
        )
    body = (target.health_body.path, tuple(target.health_body.accepted)) if target.health_body else None
    paced = {
        "requests": target.requests,
        "concurrency": target.concurrency,
        "request_timeout": target.request_timeout,
    }
    return [
        _build(
            HttpProbe,
            name,
            {**paced, **options},
            base_url=base_url,
            health=target.health,
            headers=headers,
            health_body=body,
            rate=target.requests_per_second,
        )
    ]


@_probes.register
def _(target: PostgresTarget, name: str, options: dict[str, Any]) -> list[Probe]:
    return [
        _build(PostgresProbe, name, options, dsn=dsn_via(target.dsn, target.proxy), database=target.database)
    ]


@_probes.register
def _(target: RedisTarget, name: str, options: dict[str, Any]) -> list[Probe]:
    return [_build(RedisProbe, name, options, url=url_via(target.url, target.proxy))]


@_probes.register
def _(target: TcpTarget, name: str, options: dict[str, Any]) -> list[Probe]:
    return [_build(TcpProbe, name, options, address=address_via(target.address, target.proxy))]


@_probes.register
def _(target: ProcessTarget, name: str, options: dict[str, Any]) -> list[Probe]:
    """A process has no address of its own; with options["address"] it gets a TCP probe."""
    if "address" not in options:
        return []
    return [_build(TcpProbe, name, options)]


@_probes.register
def _(target: ScheduleTarget, name: str, options: dict[str, Any]) -> list[Probe]:
    if options:
        raise ProbeError(f"{name}: schedule probes take no options, got {sorted(options)}")
    # Imported on first use: the schedule model is heavy, and only schedule targets need it.
    schedule = importlib.import_module("chaos_mcp.probes.schedule")
    probe: Probe = schedule.ScheduleProbe(name, target)
    if target.source != "postgres":
        return [probe]
    data = importlib.import_module("chaos_mcp.probes.data")
    validator: Probe = data.DataProbe(name, target)
    return [probe, validator]


def _build(cls: type[Probe], name: str, options: dict[str, Any], **fixed: Any) -> Probe:
    accepted = {f.name for f in dataclasses.fields(cls) if f.init} - {"name"} - set(fixed)  # type: ignore[arg-type]
    unknown = set(options) - accepted
    if unknown:
        raise ProbeError(
            f"{name}: unknown probe option(s) {sorted(unknown)}; accepted: {', '.join(sorted(accepted))}"
        )
    try:
        return cls(name=name, **fixed, **options)  # type: ignore[call-arg]
    except TypeError as exc:
        raise ProbeError(f"{name}: bad probe options: {exc}") from None


def _prometheus(name: str, spec: object) -> Probe:
    if not isinstance(spec, Mapping):
        raise ProbeError(f"{name}: each prometheus entry must be a table with base_url and query")
    missing = {"base_url", "query"} - set(spec)
    if missing:
        raise ProbeError(f"{name}: prometheus entry lacks {sorted(missing)}; e.g. base_url, query = 'up'")
    return _build(PrometheusProbe, name, dict(spec))


def _as_list(name: str, value: object) -> list[object]:
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise ProbeError(f"{name}: prometheus must be a table or a list of tables")
