"""ProxyToxicFault and ProxyDownFault: inject, verify, revert from the journal record in a fresh process."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx
import pytest
import redis

from chaos_mcp.faults.base import Fault, fault_from_record
from chaos_mcp.faults.network import ProxyDownFault, ProxyToxicFault
from tests.proxy.conftest import DaemonThread, make_proxy

_REVERT = "import asyncio, json, sys; from chaos_mcp.faults import fault_from_record; " + (
    "asyncio.run(fault_from_record(json.loads(sys.argv[1])).revert())"
)


def _revert_in_fresh_process(fault: Fault) -> None:
    record = json.dumps(fault.to_record())
    result = subprocess.run(
        [sys.executable, "-c", _REVERT, record], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_a_toxic_fault_is_reverted_from_its_record_by_a_fresh_process(
    daemon: DaemonThread, api: httpx.Client
) -> None:
    _, port = make_proxy(api, "fault_lat", "127.0.0.1:6379")
    fault = ProxyToxicFault(
        api_url=daemon.api_url,
        proxy="fault_lat",
        toxic_type="latency",
        attributes={"latency": 150},
        expires_at=time.time() + 60,
    )
    assert json.loads(json.dumps(fault.to_record())) == fault.to_record()
    asyncio.run(fault.inject())
    assert asyncio.run(fault.verify())
    assert api.get("/proxies/fault_lat/toxics").json()[0]["expires_at"] == fault.expires_at
    client = redis.Redis(port=port, socket_timeout=5)
    started = time.perf_counter()
    client.get("chaos:proxy:missing")
    assert time.perf_counter() - started >= 0.15
    _revert_in_fresh_process(fault)
    assert not asyncio.run(fault_from_record(fault.to_record()).verify())
    _revert_in_fresh_process(fault)  # idempotent: already gone is fine


def test_a_down_fault_refuses_connections_and_a_fresh_process_restores_them(
    daemon: DaemonThread, api: httpx.Client
) -> None:
    _, port = make_proxy(api, "fault_down", "127.0.0.1:6379")
    fault = ProxyDownFault(api_url=daemon.api_url, proxy="fault_down", expires_at=time.time() + 60)
    asyncio.run(fault.inject())
    assert asyncio.run(fault.verify())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    _revert_in_fresh_process(fault)
    assert not asyncio.run(fault.verify())
    assert redis.Redis(port=port, socket_timeout=2).ping()


def test_a_toxic_fault_against_an_unknown_proxy_fails_with_a_clear_message(daemon: DaemonThread) -> None:
    fault = ProxyToxicFault(api_url=daemon.api_url, proxy="no_such_proxy", toxic_type="latency")
    with pytest.raises(Exception, match="no_such_proxy"):
        asyncio.run(fault.inject())
    asyncio.run(fault.revert())


def test_fault_descriptions_do_not_leak_credentials() -> None:
    fault = ProxyToxicFault(api_url="http://user:s3cret@127.0.0.1:8474", proxy="db", toxic_type="latency")
    assert "s3cret" not in fault.describe()
