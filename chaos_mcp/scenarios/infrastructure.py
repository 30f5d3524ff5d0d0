"""Infrastructure chaos with native faults: DB connection loss, Redis timeout, memory pressure."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chaos_mcp.config import PostgresTarget, ProcessTarget, RedisTarget, Target
from chaos_mcp.faults.base import Fault, fault_from_record
from chaos_mcp.scenarios.base import Scenario, ScenarioContext, register_scenario


def _fault(kind: str, **fields: object) -> Fault:
    return fault_from_record({"kind": kind, "fields": fields})


def database_of(target: PostgresTarget) -> str:
    """The database the target's faults act on: `database`, else the one libpq connects its DSN to."""
    if target.database:
        return target.database
    from chaos_mcp.resources import dsn_database

    return dsn_database(target.dsn)


class ConnectionLoss(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["native", "proxy"] = Field(
        "native",
        description="native: block new connections to the database and end the existing ones (admin DSN); "
        "proxy: take the target's proxy down (needs `proxy` in its config)",
    )
    application_name: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        description="native only: end only this application's sessions (one shot) instead of blocking "
        "the database",
    )
    mode: Literal["disallow", "limit_zero"] = Field(
        "disallow",
        description="disallow: ALLOW_CONNECTIONS false; limit_zero: CONNECTION LIMIT 0 (superusers pass)",
    )


@register_scenario
class DbConnectionLoss(Scenario):
    name = "db_connection_loss"
    title = "DB Connection Loss"
    experiment_type = "infrastructure"
    target_kinds = frozenset({"postgres"})
    purpose = "PostgreSQL: test connection pool recovery"
    Parameters = ConnectionLoss
    automatic_revert = "the database's previous ALLOW_CONNECTIONS / CONNECTION LIMIT are restored exactly"

    def check_parameters(self, parameters: BaseModel, target_name: str, target: Target) -> list[str]:
        assert isinstance(parameters, ConnectionLoss)
        if parameters.method == "proxy" and target.proxy is None:
            return [f"method 'proxy' needs a proxy for {target_name!r} in chaos.toml; use method 'native'"]
        return []

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        target = ctx.target
        assert isinstance(params, ConnectionLoss) and isinstance(target, PostgresTarget)
        if params.method == "proxy":
            from chaos_mcp.scenarios.network import proxy_down

            return [proxy_down(ctx)]
        database = database_of(target)
        if params.application_name:
            return [
                _fault(
                    "postgres.terminate_backends",
                    dsn=target.dsn,
                    database=database,
                    application_name=params.application_name,
                )
            ]
        return [
            _fault(
                "postgres.block_connections",
                dsn=target.dsn,
                database=database,
                mode=params.mode,
                terminate_existing=True,
                expires_at=ctx.deadline,
            )
        ]


class RedisPause(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["ALL", "WRITE"] = Field(
        "ALL", description="ALL: every command waits (a timeout for clients); WRITE: only writes wait"
    )


@register_scenario
class RedisTimeout(Scenario):
    name = "redis_timeout"
    title = "Redis Timeout"
    experiment_type = "infrastructure"
    target_kinds = frozenset({"redis"})
    purpose = "Cache/Celery: test queue resilience"
    Parameters = RedisPause
    automatic_revert = "Redis ends the pause itself by the deadline; rollback unpauses at once"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params, target = ctx.parameters, ctx.target
        assert isinstance(params, RedisPause) and isinstance(target, RedisTarget)
        return [_fault("redis.client_pause", url=target.url, expires_at=ctx.deadline, mode=params.mode)]


class Ballast(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size_mb: int = Field(
        256,
        ge=1,
        le=65536,
        description="memory to allocate and hold, in MiB (at most the target's max_memory_mb)",
    )


@register_scenario
class MemoryPressure(Scenario):
    name = "memory_pressure"
    title = "Memory Pressure"
    experiment_type = "infrastructure"
    target_kinds = frozenset({"process"})
    purpose = "Application: test OOM behaviour"
    Parameters = Ballast
    automatic_revert = "the ballast process exits by itself at the deadline; rollback kills it at once"

    def check_parameters(self, parameters: BaseModel, target_name: str, target: Target) -> list[str]:
        assert isinstance(parameters, Ballast) and isinstance(target, ProcessTarget)
        if parameters.size_mb > target.max_memory_mb:
            return [
                f"size_mb {parameters.size_mb} is above {target_name!r}'s max_memory_mb "
                f"({target.max_memory_mb}); ask for at most that"
            ]
        return []

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params, target = ctx.parameters, ctx.target
        assert isinstance(params, Ballast) and isinstance(target, ProcessTarget)
        return [
            _fault(
                "process.memory_ballast",
                size_mb=params.size_mb,
                expires_at=ctx.deadline,
                max_mb=target.max_memory_mb,
            )
        ]
