from __future__ import annotations

import time

import pytest

from chaos_mcp.probes.base import ProbeError
from chaos_mcp.probes.postgres import PostgresProbe
from tests.probes.helpers import metrics, pick

pytestmark = pytest.mark.anyio
SHARED = "postgresql://postgres@127.0.0.1:5432/test"


async def test_a_reachable_database_reports_connect_time_query_latency_and_connections() -> None:
    measured = await PostgresProbe("db", SHARED, connects=3, queries=5).sample()
    assert pick(measured, "connect_time_p50").samples == 3
    assert pick(measured, "connect_time_p95").unit == "ms"
    assert pick(measured, "latency_p50").samples == 5
    assert 0 < pick(measured, "latency_p95").value < 1000
    assert pick(measured, "requests").value == 3 + 5 + 1  # connects, SELECT 1s, pg_stat_activity
    assert pick(measured, "error_rate").value == 0.0
    assert pick(measured, "connections_in_use").value >= 1


async def test_a_configured_query_is_timed_under_its_own_label() -> None:
    probe = PostgresProbe("db", SHARED, query="SELECT count(*) FROM pg_class", connects=1, queries=4)
    measured = await probe.sample()
    assert pick(measured, "latency_p50", query="configured").samples == 4
    assert pick(measured, "latency_p50").samples == 4


async def test_connections_are_counted_for_the_named_database() -> None:
    measured = await PostgresProbe("db", SHARED, database="no_such_database", connects=1, queries=1).sample()
    assert pick(measured, "connections_in_use").value == 0


async def test_a_failing_configured_query_is_an_error_measurement_not_an_exception() -> None:
    probe = PostgresProbe("db", SHARED, query="SELECT * FROM chaos_mcp_no_such_table", connects=1, queries=2)
    measured = await probe.sample()
    assert pick(measured, "errors").value == 2
    assert "UndefinedTable" in pick(measured, "error_rate").note
    assert "latency_p50" in metrics(measured)  # SELECT 1 still answered


async def test_a_configured_query_that_is_not_sql_is_a_probe_error() -> None:
    with pytest.raises(ProbeError, match="not valid SQL"):
        await PostgresProbe("db", SHARED, query="SELEKT 1", connects=1, queries=1).sample()


async def test_a_closed_port_gives_errors_quickly_and_no_latency(closed_port: int) -> None:
    begin = time.monotonic()
    measured = await PostgresProbe(
        "db", f"postgresql://postgres:pa55word@127.0.0.1:{closed_port}/test"
    ).sample()
    assert time.monotonic() - begin < 2
    assert pick(measured, "error_rate").value == 1.0
    assert pick(measured, "errors").value == 3
    assert "Connection refused" in pick(measured, "errors").note
    assert not metrics(measured) & {"connect_time_p50", "latency_p50", "connections_in_use"}
    assert all("pa55word" not in m.note for m in measured)


async def test_a_server_that_never_answers_is_bounded_by_the_timeout(hanging_port: int) -> None:
    begin = time.monotonic()
    measured = await PostgresProbe(
        "db", f"postgresql://postgres@127.0.0.1:{hanging_port}/test", timeout=0.5
    ).sample()
    assert time.monotonic() - begin < 1.5
    assert pick(measured, "error_rate").value == 1.0
    assert "no answer within 0.5s" in pick(measured, "errors").note


async def test_a_bad_password_is_a_measurement_and_stays_secret() -> None:
    dsn = "host=127.0.0.1 port=5432 user=chaos_mcp_no_such_role password=t0psecret dbname=test"
    measured = await PostgresProbe("db", dsn, connects=1).sample()
    assert pick(measured, "error_rate").value == 1.0
    assert all("t0psecret" not in m.note for m in measured)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dsn": "not a dsn password=zz9secret"}, "DSN cannot be read"),
        ({"connects": 0}, "connects must be"),
        ({"queries": 1.5}, "queries must be"),
        ({"timeout": 0}, "timeout must be"),
    ],
)
def test_misconfiguration_raises_a_probe_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ProbeError, match=match) as caught:
        PostgresProbe(**{"name": "db", "dsn": SHARED, **kwargs})  # type: ignore[arg-type]
    assert "zz9secret" not in str(caught.value)
