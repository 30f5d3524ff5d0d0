"""The dead-man switch: a toxic with `ttl` or `expires_at` is removed by the daemon on time."""

from __future__ import annotations

import socket
import time

import httpx
import redis

from tests.proxy.conftest import add_toxic, make_proxy, wait_until


def test_a_toxic_with_a_ttl_is_removed_by_the_daemon_and_its_effect_ends(api: httpx.Client) -> None:
    _, port = make_proxy(api, "ttl", "127.0.0.1:6379")
    client = redis.Redis(port=port, socket_timeout=5)
    toxic = add_toxic(api, "ttl", type="latency", ttl=0.4, attributes={"latency": 200})
    assert abs(toxic["expires_at"] - (time.time() + 0.4)) < 0.2
    started = time.perf_counter()
    client.ping()
    assert time.perf_counter() - started >= 0.2
    wait_until(lambda: api.get("/proxies/ttl/toxics").json() == [], timeout=3, what="toxic expiry")
    assert time.perf_counter() - started >= 0.35
    started = time.perf_counter()
    client.ping()
    assert time.perf_counter() - started < 0.1


def test_a_toxic_with_expires_at_is_removed_at_that_time(api: httpx.Client) -> None:
    make_proxy(api, "exp", "127.0.0.1:6379")
    deadline = time.time() + 0.3
    toxic = add_toxic(api, "exp", type="timeout", expires_at=deadline, attributes={"timeout": 0})
    assert toxic["expires_at"] == deadline
    wait_until(lambda: api.get("/proxies/exp/toxics").json() == [], timeout=3, what="toxic expiry")
    assert time.time() >= deadline - 0.01


def test_a_down_toxic_with_a_ttl_brings_the_proxy_back_by_itself(api: httpx.Client) -> None:
    _, port = make_proxy(api, "downttl", "127.0.0.1:6379")
    add_toxic(api, "downttl", type="down", name="down", ttl=0.3)
    assert api.get("/metrics").text.count('chaos_proxy_up{proxy="downttl"} 0') == 1

    def answers() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return False
        return True

    assert not answers()
    wait_until(answers, timeout=3, what="proxy back after ttl")


def test_a_toxic_given_no_expiry_keeps_the_toxiproxy_shape_and_expires_after_the_longest_experiment(
    api: httpx.Client,
) -> None:
    make_proxy(api, "shape", "127.0.0.1:6379")
    toxic = add_toxic(api, "shape", type="latency", attributes={"latency": 1})
    expires_at = toxic.pop("expires_at")
    assert toxic == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 1, "jitter": 0},
    }
    assert abs(expires_at - (time.time() + 600)) < 5
