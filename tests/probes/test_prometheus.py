"""The Prometheus probe against FakePrometheus: a stand-in that speaks the instant-query API
(`/api/v1/query`), since a real Prometheus cannot run on this machine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from chaos_mcp.probes.base import ProbeError
from chaos_mcp.probes.prometheus import PrometheusProbe
from tests.probes.conftest import LocalServer
from tests.probes.helpers import pick

pytestmark = pytest.mark.anyio


def ok(result_type: str, result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


ANSWERS: dict[str, tuple[int, Any]] = {
    "scalar(1)": (200, ok("scalar", [1700000000.0, "1"])),
    'up{job="api"}': (
        200,
        ok("vector", [{"metric": {"__name__": "up", "job": "api"}, "value": [1.7e9, "1"]}]),
    ),
    "rate(errors[1m])": (
        200,
        ok(
            "vector",
            [
                {"metric": {"route": "/a"}, "value": [1.7e9, "0.25"]},
                {"metric": {"route": "/b"}, "value": [1.7e9, "0"]},
            ],
        ),
    ),
    "absent_series": (200, ok("vector", [])),
    'label_replace(vector(1), "x", "y", "", "")': (200, ok("string", [1.7e9, "hello"])),
    "garbage_value": (200, ok("scalar", [1.7e9, "lots"])),
    "nan_value": (200, ok("scalar", [1.7e9, "NaN"])),
    "range[5m]": (200, ok("matrix", [{"metric": {}, "values": [[1.7e9, "1"]]}])),
    "bad(": (400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}),
}


class FakePrometheus:
    """Stand-in for Prometheus: canned answers to `/api/v1/query`, plus a non-Prometheus page."""

    def __init__(self) -> None:
        async def query(request: Request) -> Response:
            text = request.query_params.get("query", "")
            if text == "html please":
                return PlainTextResponse("<html>not prometheus</html>", media_type="text/html")
            status, body = ANSWERS.get(
                text, (422, {"status": "error", "errorType": "execution", "error": "?"})
            )
            return JSONResponse(body, status_code=status)

        self.server = LocalServer(Starlette(routes=[Route("/api/v1/query", query)]))

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def fake_prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    with fake.server:
        yield fake


async def test_a_scalar_answer_is_one_measurement(fake_prometheus: FakePrometheus) -> None:
    measured = await PrometheusProbe("api", fake_prometheus.url, "scalar(1)", metric="ready").sample()
    assert pick(measured, "ready").value == 1.0
    assert pick(measured, "error_rate").value == 0.0


async def test_a_vector_answer_is_one_labelled_measurement_per_series(
    fake_prometheus: FakePrometheus,
) -> None:
    measured = await PrometheusProbe("api", fake_prometheus.url, "rate(errors[1m])", unit="ratio").sample()
    assert pick(measured, "value", route="/a").value == 0.25
    assert pick(measured, "value", route="/b").unit == "ratio"
    single = await PrometheusProbe("api", fake_prometheus.url, 'up{job="api"}', metric="up").sample()
    assert pick(single, "up", __name__="up", job="api").value == 1.0


@pytest.mark.parametrize(
    ("query", "note"),
    [
        ("garbage_value", "'lots' is not a number"),
        ("nan_value", "NaN"),
        ('label_replace(vector(1), "x", "y", "", "")', "result type 'string' is not a number"),
        ("range[5m]", "result type 'matrix'"),
        ("absent_series", "no series"),
        ("bad(", "bad_data: parse error at char 5"),
        ("html please", "not Prometheus JSON"),
    ],
)
async def test_a_bad_answer_is_an_error_measurement_saying_what_came_back(
    fake_prometheus: FakePrometheus, query: str, note: str
) -> None:
    measured = await PrometheusProbe("api", fake_prometheus.url, query).sample()
    assert pick(measured, "error_rate").value == 1.0
    assert note in pick(measured, "error_rate").note
    assert "value" not in {m.metric for m in measured}


async def test_an_unreachable_prometheus_is_an_error_measurement(closed_port: int) -> None:
    begin = time.monotonic()
    measured = await PrometheusProbe("api", f"http://127.0.0.1:{closed_port}", "up").sample()
    assert time.monotonic() - begin < 2
    assert "ConnectError" in pick(measured, "error_rate").note


async def test_a_prometheus_that_never_answers_is_bounded_by_the_timeout(hanging_port: int) -> None:
    begin = time.monotonic()
    measured = await PrometheusProbe("api", f"http://127.0.0.1:{hanging_port}", "up", timeout=0.5).sample()
    assert time.monotonic() - begin < 1.5
    assert "no answer within 0.5s" in pick(measured, "error_rate").note


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "127.0.0.1:9090"}, "http"),
        ({"query": "  "}, "PromQL"),
        ({"metric": "not a name"}, "metric must be a name"),
    ],
)
def test_misconfiguration_raises_a_probe_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ProbeError, match=match):
        PrometheusProbe(**{"name": "api", "base_url": "http://127.0.0.1:9090", "query": "up", **kwargs})  # type: ignore[arg-type]
