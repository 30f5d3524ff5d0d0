from __future__ import annotations

import time

import pytest

from chaos_mcp.config import HttpTarget, PostgresTarget, ProcessTarget, RedisTarget, ScheduleTarget, TcpTarget
from chaos_mcp.probes.base import ProbeError
from chaos_mcp.probes.http import HttpProbe
from chaos_mcp.probes.postgres import PostgresProbe
from chaos_mcp.probes.prometheus import PrometheusProbe
from chaos_mcp.probes.redis import RedisProbe
from chaos_mcp.probes.registry import DEFAULT_STEADY_STATE, probes_for_target
from chaos_mcp.probes.tcp import TcpProbe
from chaos_mcp.probes.tolerance import evaluate_all, parse_criterion
from tests.probes.conftest import LocalServer
from tests.probes.helpers import pick

API = HttpTarget(kind="http", environment="test", base_url="http://127.0.0.1:8000", health="/healthz")


def test_an_http_target_gets_an_http_probe_on_its_health_route_named_after_it() -> None:
    (probe,) = probes_for_target("api", API)
    assert isinstance(probe, HttpProbe)
    assert (probe.name, probe.base_url, probe.health) == ("api", "http://127.0.0.1:8000", "/healthz")


def test_options_add_routes_and_tune_the_probe() -> None:
    (probe,) = probes_for_target("api", API, {"routes": ["/users"], "requests": 100, "concurrency": 8})
    assert isinstance(probe, HttpProbe)
    assert probe.routes == ["/users"] and probe.requests == 100 and probe.concurrency == 8


def test_an_unknown_option_is_refused_with_the_accepted_ones() -> None:
    with pytest.raises(
        ProbeError,
        match=r"unknown probe option\(s\) \['rps'\]; accepted: concurrency, request_timeout, requests",
    ):
        probes_for_target("api", API, {"rps": 5})


def test_postgres_redis_and_tcp_targets_get_their_probes() -> None:
    db = PostgresTarget(
        kind="postgres", environment="test", dsn="postgresql://postgres@127.0.0.1/test", database="app"
    )
    (pg,) = probes_for_target("db", db)
    assert isinstance(pg, PostgresProbe) and pg.dsn == db.dsn and pg.database == "app"
    (rd,) = probes_for_target(
        "cache", RedisTarget(kind="redis", environment="test", url="redis://127.0.0.1:6379/0")
    )
    assert isinstance(rd, RedisProbe) and rd.name == "cache"
    (tcp,) = probes_for_target("edge", TcpTarget(kind="tcp", environment="test", address="127.0.0.1:9000"))
    assert isinstance(tcp, TcpProbe) and tcp.address == "127.0.0.1:9000"


def test_a_process_target_is_probed_only_when_given_an_address() -> None:
    worker = ProcessTarget(kind="process", environment="test")
    assert probes_for_target("worker", worker) == []
    (probe,) = probes_for_target("worker", worker, {"address": "127.0.0.1:9100"})
    assert isinstance(probe, TcpProbe)


def test_prometheus_queries_can_be_added_to_any_target() -> None:
    spec = {"base_url": "http://127.0.0.1:9090", "query": "sum(alerts)", "metric": "alerts"}
    _, prom = probes_for_target("api", API, {"prometheus": [spec]})
    assert isinstance(prom, PrometheusProbe) and prom.name == "api" and prom.metric == "alerts"
    with pytest.raises(ProbeError, match="lacks"):
        probes_for_target("api", API, {"prometheus": {"query": "up"}})


def test_a_schedule_target_gets_the_schedule_probe() -> None:
    schedule = pytest.importorskip("chaos_mcp.probes.schedule")
    target = ScheduleTarget(kind="schedule", environment="test")
    (probe,) = probes_for_target("schedule", target)
    assert isinstance(probe, schedule.ScheduleProbe) and probe.name == "schedule"


@pytest.mark.parametrize("kind", ["http", "postgres", "redis", "tcp", "process", "schedule"])
def test_every_kind_has_default_steady_state_criteria_that_parse(kind: str) -> None:
    for text in DEFAULT_STEADY_STATE[kind]:
        parse_criterion(text)


def test_the_defaults_are_the_specs_numbers() -> None:
    http = [parse_criterion(text) for text in DEFAULT_STEADY_STATE["http"]]
    assert ("latency_p95", "<", 200.0, "ms") in [(c.metric, c.op, c.threshold, c.unit) for c in http]
    assert ("error_rate", "<", 0.1, "%") in [(c.metric, c.op, c.threshold, c.unit) for c in http]
    assert parse_criterion(DEFAULT_STEADY_STATE["schedule"][0]).threshold == 100.0


@pytest.mark.anyio
async def test_a_local_service_meets_the_default_http_steady_state(http_server: LocalServer) -> None:
    target = HttpTarget(kind="http", environment="test", base_url=http_server.url)
    (probe,) = probes_for_target("api", target, {"requests": 20})
    verdicts, steady = evaluate_all(DEFAULT_STEADY_STATE["http"], await probe.sample())
    assert steady, [v.note for v in verdicts]


@pytest.mark.anyio
async def test_a_tcp_probe_times_connections_and_counts_refusals(
    http_server: LocalServer, closed_port: int
) -> None:
    up = await TcpProbe("edge", f"127.0.0.1:{http_server.port}").sample()
    assert pick(up, "connect_time_p50").samples == 3 and pick(up, "error_rate").value == 0.0
    begin = time.monotonic()
    down = await TcpProbe("edge", f"127.0.0.1:{closed_port}").sample()
    assert time.monotonic() - begin < 2
    assert pick(down, "error_rate").value == 1.0 and "refused" in pick(down, "errors").note.lower()


def test_a_tcp_address_without_port_is_a_probe_error() -> None:
    with pytest.raises(ProbeError, match="host:port"):
        TcpProbe("edge", "127.0.0.1")
