"""A client that goes away while a call is still running is noticed: on_disconnect = rollback applies."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from chaos_mcp.engine.journal import Journal
from tests.e2e.rawstdio import RawStdio
from tests.fixtures.services import RedisServer


def paused(url: str) -> bool:
    try:
        redis.Redis.from_url(url, socket_timeout=0.2).get("k")
    except redis.exceptions.TimeoutError:
        return True
    return False


def test_closing_stdin_during_a_waiting_inject_reverts_the_fault_long_before_its_deadline(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text(f'[targets.cache]\nkind = "redis"\nenvironment = "test"\nurl = "{own_redis.url}"\n')
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"} | {
        "CHAOS_MCP_STATE_DIR": str(state_dir)
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos_mcp.cli", "--config", str(config), "serve"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr.log").open("wb"),
    )
    try:
        peer = RawStdio(process)
        peer.initialize()
        design = {
            "experiment_type": "infrastructure",
            "target_component": "cache",
            "scenario": "redis_timeout",
            "hypothesis": "When the cache stalls, the application should serve from its database.",
            "environment": "test",
            "blast_radius": {"scope": "test instance only", "targets": ["cache"]},
            "duration": "120s",
            "rollback_plan": ["Unpause the cache", "Verify GET answers"],
        }
        experiment_id = peer.call("design", "design_experiment", design)["experiment_id"]
        peer.call("baseline", "measure_steady_state", {"experiment_id": experiment_id})
        inject = {
            "experiment_id": experiment_id,
            "environment": "test",
            "target_component": "cache",
            "wait": True,
        }
        peer.send_call("inject", "inject_failure", inject)
        deadline = time.monotonic() + 10
        while not paused(own_redis.url):
            assert time.monotonic() < deadline, "the fault was never injected"
        # A maximum-size design with text that once took the checks minutes, then the client goes away
        # while both calls still run.
        heavy = design | {"hypothesis": "When [a" * 9_000, "rollback_plan": ["[a" * 32_000] * 3}
        peer.send_call("heavy", "design_experiment", heavy)
        peer.stdin.close()
        began = time.monotonic()
        while paused(own_redis.url):
            assert time.monotonic() - began < 5, "the fault outlived its client by 5 s"
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    journal = Journal(f"sqlite:///{state_dir / 'journal.sqlite3'}")
    row = journal.get_experiment(experiment_id)
    journal.close()
    assert row is not None and row.state == "aborted"


pytestmark = pytest.mark.timeout(90)
