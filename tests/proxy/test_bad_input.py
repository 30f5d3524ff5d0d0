"""Bad control-API input gets a JSON error naming the field; the daemon and its proxies stay up."""

from __future__ import annotations

import socket

import httpx
import pytest
import redis

from tests.helpers import free_port
from tests.proxy.conftest import make_proxy, wait_until


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    message: str = body["error"]
    return message


def test_malformed_json_is_a_400_naming_the_body(api: httpx.Client) -> None:
    response = api.post("/proxies", content=b"{not json", headers={"content-type": "application/json"})
    assert "body" in _error(response, 400)


def test_a_proxy_without_upstream_is_a_400_naming_the_field(api: httpx.Client) -> None:
    assert "upstream" in _error(api.post("/proxies", json={"name": "x"}), 400)


def test_a_bad_listen_address_is_a_400_with_an_example(api: httpx.Client) -> None:
    message = _error(api.post("/proxies", json={"name": "x", "upstream": "localhost", "listen": "a"}), 400)
    assert "host:port" in message


@pytest.mark.parametrize(
    ("toxic", "field"),
    [
        ({"type": "no_such"}, "type"),
        ({"type": "latency", "attributes": {"latency": -5}}, "latency"),
        ({"type": "latency", "attributes": {"latency": 10**12}}, "latency"),
        ({"type": "latency", "attributes": {"latency": "slow"}}, "latency"),
        ({"type": "latency", "attributes": {"lag": 5}}, "lag"),
        ({"type": "slicer", "attributes": {"average_size": 0}}, "average_size"),
        ({"type": "latency", "stream": "sideways"}, "stream"),
        ({"type": "latency", "toxicity": 2}, "toxicity"),
        ({"type": "latency", "ttl": -1}, "ttl"),
        ({"type": "latency", "expires_at": 1}, "expires_at"),
        ({"type": "latency", "attributes": []}, "attributes"),
        ({"type": "http_status", "stream": "upstream", "attributes": {"status": 42}}, "status"),
    ],
)
def test_bad_toxics_are_a_400_naming_the_field(
    api: httpx.Client, toxic: dict[str, object], field: str
) -> None:
    make_proxy(api, "bad", "127.0.0.1:6379")
    message = _error(api.post("/proxies/bad/toxics", json=toxic), 400)
    assert field in message
    assert api.get("/proxies/bad/toxics").json() == []


def test_unknown_proxies_and_toxics_are_404s(api: httpx.Client) -> None:
    assert "nope" in _error(api.get("/proxies/nope"), 404)
    assert "nope" in _error(api.post("/proxies/nope/toxics", json={"type": "latency"}), 404)
    make_proxy(api, "known", "127.0.0.1:6379")
    assert "ghost" in _error(api.delete("/proxies/known/toxics/ghost"), 404)
    _error(api.get("/no/such/route"), 404)


def test_duplicates_are_409s(api: httpx.Client) -> None:
    make_proxy(api, "dup", "127.0.0.1:6379")
    _error(api.post("/proxies", json={"name": "dup", "upstream": "127.0.0.1:6379"}), 409)
    api.post("/proxies/dup/toxics", json={"type": "latency"})
    _error(api.post("/proxies/dup/toxics", json={"type": "latency"}), 409)


def test_a_listen_address_in_use_is_a_409(api: httpx.Client) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        message = _error(
            api.post("/proxies", json={"name": "busy", "upstream": address, "listen": address}), 409
        )
    assert "listen" in message


def test_an_upstream_that_is_down_closes_clients_cleanly_and_the_proxy_stays_up(api: httpx.Client) -> None:
    _, port = make_proxy(api, "dead", f"127.0.0.1:{free_port()}")
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            assert sock.recv(10) == b""
    assert api.get("/version").status_code == 200
    api.post("/proxies/dead", json={"upstream": "127.0.0.1:6379"})
    wait_until(lambda: bool(redis.Redis(port=port, socket_timeout=2).ping()), what="proxy relays again")


def test_updating_a_toxic_changes_its_attributes_in_place(api: httpx.Client) -> None:
    make_proxy(api, "upd", "127.0.0.1:6379")
    api.post("/proxies/upd/toxics", json={"type": "latency", "attributes": {"latency": 10, "jitter": 1}})
    response = api.post("/proxies/upd/toxics/latency_downstream", json={"attributes": {"latency": 20}})
    assert response.json()["attributes"] == {"latency": 20, "jitter": 1}
    _error(api.post("/proxies/upd/toxics/latency_downstream", json={"attributes": {"latency": -1}}), 400)
