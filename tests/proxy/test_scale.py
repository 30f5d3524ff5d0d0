"""The daemon holds 1,000 concurrent connections, and reports them in /metrics."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.proxy.conftest import make_proxy, metric, wait_until

CONNECTIONS = 1000


def test_a_thousand_concurrent_connections_are_relayed_and_counted(api: httpx.Client) -> None:
    clients = subprocess.Popen(
        [sys.executable, "-m", "tests.proxy._many_clients", str(CONNECTIONS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert clients.stdin is not None and clients.stdout is not None
    try:
        upstream = clients.stdout.readline().split()[1]
        _, port = make_proxy(api, "many", upstream)
        clients.stdin.write(f"{port}\n")
        clients.stdin.flush()
        assert clients.stdout.readline().strip() == f"held {CONNECTIONS}"
        assert metric(api, "chaos_proxy_connections_active", proxy="many") == CONNECTIONS
        assert metric(api, "chaos_proxy_connections_total", proxy="many") == CONNECTIONS
        clients.stdin.write("done\n")
        clients.stdin.flush()
        assert clients.wait(30) == 0
        wait_until(
            lambda: metric(api, "chaos_proxy_connections_active", proxy="many") == 0, what="all closed"
        )
    finally:
        clients.kill()
        clients.wait()
