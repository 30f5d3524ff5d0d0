"""Any body gets a 4xx from the control API, never a 500 or a traceback; stalled clients are dropped."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos_mcp.faults.proxy.daemon import HEADER_TIMEOUT
from tests.helpers import free_port
from tests.proxy.daemon_process import DaemonProcess, target_toml

ROUTES = [
    ("POST", "/proxies"),
    ("POST", "/populate"),
    ("POST", "/proxies/cache"),
    ("PATCH", "/proxies/cache"),
    ("POST", "/proxies/cache/toxics"),
    ("POST", "/proxies/cache/toxics/latency_downstream"),
    ("POST", "/proxies/ghost/toxics"),
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    running = DaemonProcess(tmp_path_factory.mktemp("hostile"), target_toml("cache", free_port())).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    with daemon.client() as api:
        api.post("/proxies/cache/toxics", json={"type": "latency"})
        yield api


def _status(client: httpx.Client, method: str, path: str, body: bytes) -> int:
    response = client.request(method, path, content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text
    assert isinstance(response.json(), dict | list)
    return response.status_code


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 30_000 + b"]" * 30_000, 400),
        (b'{"name": ' * 5000 + b"1" + b"}" * 5000, 400),
        (b'{"type": "latency", "toxicity": ' + b"9" * 4000 + b"}", 400),
        (b'{"type": "latency", "toxicity": 1e999}', 400),
        (b'{"type": "latency", "toxicity": NaN}', 400),
        (b'{"type": "latency", "ttl": 123456789012345678901234567890}', 400),
        (b'{"type": "\xff\xfe"}', 400),
        (b'{"type": "latency", "name": "\\ud800"}', 400),
        (b'{"type": "latency", "attributes": {"latency": "\\ud800"}}', 400),
        (b'{"type": ["latency"]}', 400),
        (b"\x00\x01\x02", 400),
        (b'{"type": "latency"}' + b" " * (70 * 1024), 413),
    ],
)
def test_hostile_bodies_are_4xx_naming_the_body_or_field(
    client: httpx.Client, body: bytes, status: int
) -> None:
    assert _status(client, "POST", "/proxies/cache/toxics", body) == status


def test_a_huge_body_is_refused_before_it_is_read(client: httpx.Client) -> None:
    started = time.perf_counter()
    response = client.post("/proxies", content=b"x" * (20 << 20))
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
    assert time.perf_counter() - started < 3


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        key: _json
        for key in (
            "name",
            "type",
            "listen",
            "upstream",
            "enabled",
            "stream",
            "toxicity",
            "attributes",
            "ttl",
        )
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=_json | _fields)
def test_fuzzed_json_bodies_never_get_a_500(client: httpx.Client, route: tuple[str, str], body: Any) -> None:
    _status(client, *route, json.dumps(body).encode())
    client.post("/reset")
    for name in client.get("/proxies").json():
        if name != "cache":
            client.delete(f"/proxies/{name}")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=200))
def test_fuzzed_raw_bytes_never_get_a_500(client: httpx.Client, route: tuple[str, str], body: bytes) -> None:
    _status(client, *route, body)


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) is not None
    except TimeoutError:
        return False


def test_stalled_heads_and_bodies_are_dropped_and_the_api_keeps_answering(daemon: DaemonProcess) -> None:
    head = socket.create_connection(("127.0.0.1", daemon.port))
    body = socket.create_connection(("127.0.0.1", daemon.port))
    started = time.monotonic()
    head.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\n")
    body.sendall(
        f"POST /proxies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {daemon.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
    )
    for _ in range(int(HEADER_TIMEOUT) - 1):  # a slowloris trickle keeps nothing alive
        time.sleep(1)
        head.sendall(b"X")
        assert httpx.get(f"{daemon.api_url}/version", timeout=1).status_code == 200
    assert _closed_by_server(head, within=HEADER_TIMEOUT + 2)
    answer = body.recv(4096)
    assert b" 408 " in answer.split(b"\r\n")[0], answer
    assert time.monotonic() - started < HEADER_TIMEOUT + 3
    head.close()
    body.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_malformed_http_is_a_400(daemon: DaemonProcess, request_bytes: bytes) -> None:
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=3) as sock:
        sock.sendall(request_bytes)
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")


def test_no_traceback_or_internal_error_reaches_the_daemons_log_and_every_line_is_json(
    daemon: DaemonProcess,
) -> None:
    log = daemon.log()
    assert "Traceback" not in log and "control_api_failed" not in log, log[-2000:]
    for line in log.splitlines():
        assert isinstance(json.loads(line), dict), line
