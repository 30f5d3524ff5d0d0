"""Every metric a probe emits is in its catalogue, with the catalogue's unit and only its labels.

Each probe samples a real service (a private redis-server, a fresh PostgreSQL database, a loopback
HTTP server that answers 200 and 503); the design-time check relies on this agreement.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlparse

import pytest

from chaos_mcp.probes.base import Measurement, Probe
from chaos_mcp.probes.catalog import MetricSpec
from chaos_mcp.probes.http import HttpProbe
from chaos_mcp.probes.logs import FileSource, LogsProbe
from chaos_mcp.probes.postgres import PostgresProbe
from chaos_mcp.probes.redis import RedisProbe
from chaos_mcp.probes.tcp import TcpProbe
from tests.fixtures.services import PostgresDatabase, RedisServer
from tests.integration.stand_ins import serving

pytestmark = pytest.mark.anyio


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503 if self.path == "/health" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def disagreements(probe: Probe, measured: list[Measurement]) -> list[str]:
    catalogue: dict[str, MetricSpec] = {m.name: m for m in probe.metrics()}
    found = []
    for m in measured:
        spec = catalogue.get(m.metric)
        if spec is None:
            found.append(f"{m.metric} is emitted but not declared")
        elif spec.unit != m.unit or not spec.accepts(m.labels):
            found.append(f"{m.metric} {m.unit} {sorted(m.labels)} vs declared {spec.text()}")
    return found


async def test_the_http_redis_postgres_and_tcp_probes_emit_only_what_they_declare(
    own_redis: RedisServer, own_postgres: PostgresDatabase
) -> None:
    with serving(Handler) as base_url:
        http = HttpProbe(name="api", base_url=base_url, routes=["/api"], requests=8, concurrency=2)
        probes: list[Probe] = [
            http,
            RedisProbe(name="cache", url=own_redis.url),
            PostgresProbe(name="db", dsn=own_postgres.admin_dsn, query="SELECT 2"),
            TcpProbe(name="port", address=f"127.0.0.1:{urlparse(own_redis.url).port}"),
        ]
        for probe in probes:
            measured = await probe.sample()
            assert measured and not disagreements(probe, measured), disagreements(probe, measured)
        statuses = {m.labels.get("status") for m in await http.sample() if m.metric == "responses"}
    assert statuses == {"200", "503"}


async def test_the_schedule_probe_emits_exactly_the_schedule_metrics_it_declares(state_dir: object) -> None:
    from chaos_mcp.probes.schedule import ScheduleProbe
    from tests.helpers import multi_target_settings

    target = multi_target_settings().targets["schedule"]
    probe = ScheduleProbe("schedule", target)  # type: ignore[arg-type]
    measured = await probe.sample()
    assert not disagreements(probe, measured), disagreements(probe, measured)
    assert {m.metric for m in measured} == {m.name for m in probe.metrics()}


async def test_the_logs_probe_emits_exactly_the_log_metrics_it_declares(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    probe = LogsProbe(name="api", source=FileSource(str(log)), secrets=frozenset({"hunter22"}))
    await probe.sample()  # the baseline: counting starts from here
    log.write_text("ERROR GET /x 500\nlogin password=hunter22\nTraceback (most recent call last):\n")
    measured = await probe.sample()
    assert {m.metric for m in measured} == {spec.name for spec in probe.metrics()}
    assert not disagreements(probe, measured), disagreements(probe, measured)
