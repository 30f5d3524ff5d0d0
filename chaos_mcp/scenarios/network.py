"""Network chaos through the fault proxy: API latency, and generic latency / down / reset / bandwidth.

The blast radius is enforced, not only recorded: `routes` become HTTP-aware toxics that touch
only those path prefixes, and `max_traffic_percent` becomes the share of connections (or of
matching requests) affected. Every toxic carries the deadline as its expiry.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chaos_mcp.config import HttpTarget, Target
from chaos_mcp.faults.base import Fault, fault_from_record
from chaos_mcp.scenarios.base import Scenario, ScenarioContext, register_scenario

ANY_PROXIED = frozenset({"postgres", "redis", "http", "tcp"})


def _toxic(
    ctx: ScenarioContext,
    toxic_type: str,
    name: str,
    attributes: dict[str, Any],
    stream: str,
    toxicity: float = 1.0,
) -> Fault:
    return fault_from_record(
        {
            "kind": "proxy.toxic",
            "fields": {
                "api_url": ctx.settings.proxy.api,
                "proxy": ctx.target_name,
                "toxic_type": toxic_type,
                "toxic_name": f"{ctx.experiment_id}-{name}",
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
                "expires_at": ctx.deadline,
            },
        }
    )


def proxy_down(ctx: ScenarioContext) -> Fault:
    return fault_from_record(
        {
            "kind": "proxy.down",
            "fields": {
                "api_url": ctx.settings.proxy.api,
                "proxy": ctx.target_name,
                "expires_at": ctx.deadline,
                "toxic_name": f"{ctx.experiment_id}-down",
            },
        }
    )


def _share(ctx: ScenarioContext) -> float:
    percent = ctx.blast_radius.get("max_traffic_percent")
    return 1.0 if percent is None else float(percent) / 100.0


class _Proxied(Scenario):
    uses_proxy = True
    target_kinds = ANY_PROXIED
    experiment_type = "infrastructure"

    def check_target(self, target_name: str, target: Target) -> list[str]:
        if target.proxy is None:
            return [
                f"{self.name} goes through the fault proxy, and target {target_name!r} has no `proxy = "
                "{ listen, upstream }` in chaos.toml; ask the operator to add one, or pick a native scenario"
            ]
        return []


class Latency(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latency_ms: int = Field(1000, ge=1, le=60_000, description="added delay in milliseconds (1 to 60000)")
    jitter_ms: int = Field(0, ge=0, le=60_000, description="± random milliseconds (0 to 60000)")


class ApiLatencyParameters(Latency):
    method: str = Field("", max_length=16, description="only this HTTP method (e.g. GET); empty: any")


@register_scenario
class ApiLatency(_Proxied):
    name = "api_latency"
    title = "API Latency"
    target_kinds = frozenset({"http"})
    purpose = "Backend endpoints: test timeout handling"
    Parameters = ApiLatencyParameters
    automatic_revert = (
        "the proxy removes the latency toxics at the deadline by itself; rollback removes them at once"
    )

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        assert isinstance(params, ApiLatencyParameters) and isinstance(ctx.target, HttpTarget)
        routes = ctx.blast_radius.get("routes") or []
        if not routes:
            attributes = {"latency": params.latency_ms, "jitter": params.jitter_ms}
            return [_toxic(ctx, "latency", "latency", attributes, "downstream", _share(ctx))]
        return [
            _toxic(
                ctx,
                "http_latency",
                f"route{index}",
                {
                    "latency": params.latency_ms,
                    "method": params.method,
                    "path_prefix": route,
                    "percentage": _share(ctx) * 100,
                },
                "upstream",
            )
            for index, route in enumerate(routes)
        ]


@register_scenario
class NetworkLatency(_Proxied):
    name = "network_latency"
    title = "Network Latency"
    purpose = "Any proxied dependency: test slow responses"
    Parameters = Latency
    automatic_revert = "the proxy removes the latency toxic at the deadline by itself"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        assert isinstance(params, Latency)
        attributes = {"latency": params.latency_ms, "jitter": params.jitter_ms}
        return [_toxic(ctx, "latency", "latency", attributes, "downstream", _share(ctx))]


class NoParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_scenario
class NetworkDown(_Proxied):
    name = "network_down"
    title = "Network Down"
    purpose = "Any proxied dependency: connections refused and dropped"
    Parameters = NoParameters
    automatic_revert = "the proxy comes back up at the deadline by itself"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        return [proxy_down(ctx)]


class Reset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after_ms: int = Field(
        0, ge=0, le=600_000, description="milliseconds before each connection is reset (0: at once)"
    )


@register_scenario
class NetworkReset(_Proxied):
    name = "network_reset"
    title = "Network Reset"
    purpose = "Any proxied dependency: connections reset by peer"
    Parameters = Reset
    automatic_revert = "the proxy removes the reset toxic at the deadline by itself"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        assert isinstance(params, Reset)
        return [_toxic(ctx, "reset_peer", "reset", {"timeout": params.after_ms}, "downstream", _share(ctx))]


class Bandwidth(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate_kbps: int = Field(64, ge=1, le=10_000_000, description="bandwidth in KB/s (1 to 10000000)")


@register_scenario
class BandwidthLimit(_Proxied):
    name = "bandwidth_limit"
    title = "Bandwidth Limit"
    purpose = "Any proxied dependency: a thin pipe"
    Parameters = Bandwidth
    automatic_revert = "the proxy removes the bandwidth toxic at the deadline by itself"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        assert isinstance(params, Bandwidth)
        return [_toxic(ctx, "bandwidth", "bandwidth", {"rate": params.rate_kbps}, "downstream", _share(ctx))]
