"""design_experiment's plan says, before anything runs, when inject_failure will need a person's approval
because an instance-wide fault shares its instance with another environment's target."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from mcp import Client

from chaos_mcp.config import parse_settings
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, settings_with_journal
from tests.e2e.test_shared_resources import design, redis_target, shared_redis
from tests.fixtures.services import RedisServer

pytestmark = pytest.mark.anyio


async def test_the_plan_of_a_pause_of_a_redis_that_also_serves_production_says_a_person_must_approve(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    async with Client(build_server(shared_redis(tmp_path, own_redis)), mode="legacy") as client:
        plan = result_data(await client.call_tool("design_experiment", design("cache", "redis_timeout")))
    assert plan["approval"].startswith("inject_failure will ask a person to approve"), plan["approval"]
    assert "production target 'prod'" in plan["approval"]
    assert any("'prod'" in reason for reason in plan["escalations"]), plan["escalations"]


async def test_the_plan_needs_no_approval_when_every_target_of_the_instance_is_in_the_blast_radius(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    base = f"redis://127.0.0.1:{own_redis.port}"
    toml = redis_target("cache", f"{base}/0", "test") + redis_target("sessions", f"{base}/2", "test")
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        inside = design("cache", "redis_timeout", targets=["cache", "sessions"])
        outside = design("cache", "redis_timeout")
        planned = [result_data(await client.call_tool("design_experiment", d)) for d in (inside, outside)]
    assert planned[0]["approval"] == "no approval needed", planned[0]
    assert "target 'sessions', outside the blast radius" in planned[1]["approval"], planned[1]


async def test_the_plan_says_approval_is_checked_at_inject_when_a_neighbour_does_not_answer_in_time(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        port = silent.getsockname()[1]
        toml = redis_target("cache", own_redis.url, "test")
        toml += redis_target("prod", f"redis://127.0.0.1:{port}/0", "production")
        settings = settings_with_journal(tmp_path, parse_settings(toml))
        async with Client(build_server(settings), mode="legacy") as client:
            began = time.monotonic()
            plan = result_data(await client.call_tool("design_experiment", design("cache", "redis_timeout")))
            elapsed = time.monotonic() - began
    assert "will be checked at inject" in plan["approval"], plan["approval"]
    assert elapsed < 3.0, elapsed  # the design does not wait for the slow identity lookup
