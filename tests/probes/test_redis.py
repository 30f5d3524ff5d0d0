from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from chaos_mcp.probes.base import ProbeError
from chaos_mcp.probes.redis import RedisProbe
from tests.probes.helpers import metrics, pick

pytestmark = pytest.mark.anyio
SHARED = "redis://127.0.0.1:6379/0"


@pytest.fixture
def own_redis(closed_port: int) -> Iterator[int]:
    """A throwaway redis-server on a free port, for disrupting; killed afterwards."""
    command = [
        "redis-server",
        "--port",
        str(closed_port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=closed_port, socket_timeout=1)
    try:
        limit = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > limit or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        yield closed_port
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)


async def test_a_reachable_redis_reports_ping_and_get_latency() -> None:
    measured = await RedisProbe("cache", SHARED, commands=5).sample()
    assert pick(measured, "latency_p50", command="PING").samples == 5
    assert pick(measured, "latency_p95", command="GET").unit == "ms"
    assert pick(measured, "latency_p95").samples == 10
    assert pick(measured, "requests").value == 10
    assert pick(measured, "error_rate").value == 0.0


async def test_a_paused_redis_yields_errors_within_the_timeout(own_redis: int) -> None:
    admin = redis.Redis(port=own_redis)
    admin.execute_command("CLIENT", "PAUSE", "20000", "ALL")  # the fixture kills the server after
    admin.close()
    begin = time.monotonic()
    measured = await RedisProbe("cache", f"redis://127.0.0.1:{own_redis}/0", timeout=1.0).sample()
    assert time.monotonic() - begin < 1.5
    assert pick(measured, "error_rate").value == 1.0
    assert "Timeout" in pick(measured, "errors").note
    assert "latency_p50" not in metrics(measured)


async def test_a_redis_that_recovers_is_measured_healthy_again(own_redis: int) -> None:
    url = f"redis://127.0.0.1:{own_redis}/0"
    admin = redis.Redis(port=own_redis)
    admin.execute_command("CLIENT", "PAUSE", "300", "ALL")
    admin.close()
    during = await RedisProbe("cache", url, commands=2, timeout=0.3).sample()
    after = await RedisProbe("cache", url, commands=2, timeout=2.0).sample()
    assert pick(during, "error_rate").value > 0
    assert pick(after, "error_rate").value == 0.0


async def test_a_closed_port_gives_errors_quickly(closed_port: int) -> None:
    begin = time.monotonic()
    measured = await RedisProbe("cache", f"redis://:s3cr3tpass@127.0.0.1:{closed_port}/0").sample()
    assert time.monotonic() - begin < 2
    assert pick(measured, "error_rate").value == 1.0
    assert all("s3cr3tpass" not in m.note for m in measured)


async def test_a_server_that_never_answers_is_bounded_by_the_timeout(hanging_port: int) -> None:
    begin = time.monotonic()
    measured = await RedisProbe("cache", f"redis://127.0.0.1:{hanging_port}/0", timeout=0.6).sample()
    assert time.monotonic() - begin < 1.5
    assert pick(measured, "error_rate").value == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"url": "http://127.0.0.1:6379"}, "cannot use Redis URL"),
        ({"commands": 0}, "commands must be"),
        ({"timeout": -1.0}, "timeout"),
    ],
)
def test_misconfiguration_raises_a_probe_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ProbeError, match=match):
        RedisProbe(**{"name": "cache", "url": SHARED, **kwargs})  # type: ignore[arg-type]
