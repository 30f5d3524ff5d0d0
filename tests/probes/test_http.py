from __future__ import annotations

import time

import pytest

from chaos_mcp.probes.base import ProbeError
from chaos_mcp.probes.http import HttpProbe
from tests.probes.conftest import LocalServer
from tests.probes.helpers import metrics, pick

pytestmark = pytest.mark.anyio


async def test_a_healthy_service_has_low_latency_no_errors_and_is_healthy(http_server: LocalServer) -> None:
    measured = await HttpProbe("api", http_server.url, requests=20).sample()
    assert pick(measured, "requests").value == 20
    assert pick(measured, "error_rate").value == 0.0
    assert pick(measured, "healthy").value == 1.0
    assert pick(measured, "latency_p95").unit == "ms"
    assert 0 < pick(measured, "latency_p50").value <= pick(measured, "latency_p99").value < 1000
    assert pick(measured, "responses", status="200").value == 20
    assert all(m.probe == "api" and m.started_at <= m.ended_at for m in measured)


async def test_figures_come_per_route_with_the_slow_and_failing_routes_standing_out(
    http_server: LocalServer,
) -> None:
    probe = HttpProbe("api", http_server.url, routes=["/ok", "/slow", "/fail", "/moved"], requests=40)
    measured = await probe.sample()
    assert pick(measured, "requests", route="/slow").value == 8  # 40 over 5 routes (health added)
    assert pick(measured, "latency_p50", route="/slow").value >= 250
    assert pick(measured, "latency_p50", route="/ok").value < 250
    assert pick(measured, "error_rate", route="/fail").value == 1.0
    assert pick(measured, "error_rate", route="/moved").value == 0.0  # 3xx is not an error
    assert pick(measured, "error_rate").value == pytest.approx(8 / 40)
    assert "8 of 40 failed (500 x8)" in pick(measured, "error_rate").note
    assert pick(measured, "responses", status="500").value == 8
    assert pick(measured, "responses", status="302").value == 8
    assert pick(measured, "responses", route="/fail", status="500").value == 8
    assert metrics(measured, route="/ok") >= {"latency_p50", "latency_p95", "latency_p99", "error_rate"}


async def test_a_health_route_answering_degraded_reads_unhealthy(http_server: LocalServer) -> None:
    measured = await HttpProbe("api", http_server.url, health="/degraded", requests=4).sample()
    assert pick(measured, "healthy").value == 0.0
    assert pick(measured, "healthy").note == "latest answer of /degraded: 200 (status 'degraded')"
    assert pick(measured, "error_rate").value == 0.0  # degraded is still an answer


async def test_a_time_window_keeps_sampling_until_it_ends(http_server: LocalServer) -> None:
    begin = time.monotonic()
    measured = await HttpProbe("api", http_server.url, window=0.5, timeout=3).sample()
    elapsed = time.monotonic() - begin
    assert 0.5 <= elapsed < 1.5
    assert pick(measured, "requests").value > 20


async def test_a_closed_port_gives_error_measurements_quickly(closed_port: int) -> None:
    begin = time.monotonic()
    measured = await HttpProbe("api", f"http://127.0.0.1:{closed_port}", requests=10).sample()
    assert time.monotonic() - begin < 2
    assert pick(measured, "error_rate").value == 1.0
    assert pick(measured, "healthy").value == 0.0
    assert pick(measured, "healthy").note.startswith("latest answer of /health: connect_error (ConnectError")
    assert pick(measured, "responses", status="connect_error").value == 10
    assert "latency_p95" not in metrics(measured)  # a refused connection has no latency


async def test_a_server_that_never_answers_is_bounded_by_the_timeout(hanging_port: int) -> None:
    begin = time.monotonic()
    measured = await HttpProbe("api", f"http://127.0.0.1:{hanging_port}", requests=10, timeout=0.5).sample()
    assert time.monotonic() - begin < 1.5
    assert pick(measured, "error_rate").value == 1.0
    assert pick(measured, "responses", status="timeout").value >= 1
    assert pick(measured, "latency_p50").value >= 450  # timed out requests count at their elapsed time


async def test_a_per_request_timeout_shorter_than_the_probe_records_each_timeout(
    http_server: LocalServer,
) -> None:
    probe = HttpProbe(
        "api", http_server.url, routes=["/slow?s=2"], health=None, requests=4, timeout=3, request_timeout=0.2
    )
    begin = time.monotonic()
    measured = await probe.sample()
    assert time.monotonic() - begin < 2
    assert pick(measured, "responses", route="/slow?s=2", status="timeout").value == 4


async def test_passwords_in_the_base_url_never_reach_the_notes(closed_port: int) -> None:
    measured = await HttpProbe("api", f"http://admin:hunter22@127.0.0.1:{closed_port}", requests=2).sample()
    assert all("hunter22" not in m.note for m in measured)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "ftp://127.0.0.1"}, "http:// or https://"),
        ({"base_url": "http://u:sekrit99@"}, "with a host"),
        ({"routes": ["health"]}, "starting with '/'"),
        ({"requests": 0}, "requests must be a positive number"),
        ({"concurrency": -1}, "concurrency"),
        ({"window": 10.0, "timeout": 5.0}, "window .* shorter than timeout"),
    ],
)
def test_misconfiguration_raises_a_probe_error_saying_what_to_fix(
    kwargs: dict[str, object], match: str
) -> None:
    arguments: dict[str, object] = {"name": "api", "base_url": "http://127.0.0.1:1", **kwargs}
    with pytest.raises(ProbeError, match=match) as caught:
        HttpProbe(**arguments)  # type: ignore[arg-type]
    assert "sekrit99" not in str(caught.value)


async def test_a_paced_probe_spreads_its_requests_at_the_rate_and_sends_them_all_to_a_fast_service(
    http_server: LocalServer,
) -> None:
    began = time.monotonic()
    measured = await HttpProbe("api", http_server.url, requests=5, rate=20, concurrency=2).sample()
    assert time.monotonic() - began >= 0.2  # sends at 0, 50, 100, 150, 200 ms: no burst
    assert pick(measured, "requests").value == 5
    assert pick(measured, "not_sent").value == 0 and pick(measured, "not_sent").note == ""


async def test_sends_that_cannot_start_on_time_are_counted_as_not_sent_never_queued(
    http_server: LocalServer,
) -> None:
    probe = HttpProbe(
        "api", http_server.url, routes=["/slow?s=0.3"], health=None, requests=8, rate=20, concurrency=1
    )
    measured = await probe.sample()
    not_sent = pick(measured, "not_sent")
    sent = pick(measured, "requests").value
    assert sent + not_sent.value == 8 and 5 <= not_sent.value <= 7
    assert "not sent (the service is too slow to sample at this rate)" in not_sent.note


@pytest.mark.parametrize(
    ("accepted", "healthy", "note"),
    [
        (("degraded",), 1.0, ""),
        (("ok", "ready"), 0.0, 'status is "degraded"; accepted: "ok", "ready"'),
    ],
)
async def test_a_declared_healthy_body_decides_health_by_the_json_value_at_its_path(
    http_server: LocalServer, accepted: tuple[str, ...], healthy: float, note: str
) -> None:
    probe = HttpProbe(
        "api", http_server.url, health="/degraded", requests=2, health_body=("status", accepted)
    )
    measured = pick(await probe.sample(), "healthy")
    assert measured.value == healthy and note in measured.note
