"""HTTP-aware toxics slow or fail only matching requests on keep-alive connections."""

from __future__ import annotations

import time

import httpx

from tests.proxy.conftest import add_toxic, make_proxy


def _timed(client: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return response, time.perf_counter() - started


def test_http_latency_slows_the_schedules_route_and_leaves_health_alone(
    api: httpx.Client, http_server: str
) -> None:
    _, port = make_proxy(api, "web", http_server)
    add_toxic(
        api,
        "web",
        type="http_latency",
        stream="upstream",
        attributes={"path_prefix": "/api/v1/schedules", "latency": 150},
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        for _ in range(3):
            slow, slow_time = _timed(client, "GET", "/api/v1/schedules?week=1")
            fast, fast_time = _timed(client, "GET", "/health")
            assert slow.status_code == fast.status_code == 200
            assert slow.json() == {"schedules": [1, 2, 3]}
            assert slow_time >= 0.15
            assert fast_time < 0.1
        assert api.get("/metrics").text.count('chaos_proxy_connections_total{proxy="web"} 1') == 1


def test_http_status_answers_matching_requests_and_keeps_the_connection(
    api: httpx.Client, http_server: str
) -> None:
    _, port = make_proxy(api, "web503", http_server)
    add_toxic(
        api,
        "web503",
        type="http_status",
        stream="upstream",
        attributes={"method": "POST", "path_prefix": "/api/v1/schedules", "status": 503},
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        for _ in range(3):
            failed = client.post("/api/v1/schedules", content=b"z" * 5000)
            assert failed.status_code == 503
            assert failed.json()["status"] == 503
            assert client.get("/api/v1/schedules").status_code == 200
            assert client.post("/other", content=b"abc").json() == {"received": 3}
            assert client.get("/health").status_code == 200


def test_http_toxics_with_zero_percentage_affect_nothing(api: httpx.Client, http_server: str) -> None:
    _, port = make_proxy(api, "web0", http_server)
    add_toxic(api, "web0", type="http_status", stream="upstream", attributes={"percentage": 0, "status": 500})
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        assert all(client.get("/health").status_code == 200 for _ in range(10))


def test_http_toxics_apply_to_requests_already_on_an_open_connection(
    api: httpx.Client, http_server: str
) -> None:
    _, port = make_proxy(api, "weblive", http_server)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        assert client.get("/api/v1/schedules").status_code == 200
        add_toxic(api, "weblive", type="http_status", stream="upstream", attributes={"status": 502})
        assert client.get("/api/v1/schedules").status_code == 502
        api.delete("/proxies/weblive/toxics/http_status_upstream")
        assert client.get("/api/v1/schedules").status_code == 200


def test_http_toxics_refuse_the_downstream_stream(api: httpx.Client, http_server: str) -> None:
    make_proxy(api, "webdown", http_server)
    response = api.post("/proxies/webdown/toxics", json={"type": "http_latency", "stream": "downstream"})
    assert response.status_code == 400
    assert "upstream" in response.json()["error"]
