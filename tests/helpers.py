"""Small builders shared by tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaos_mcp.config import Settings, parse_settings

SECRET_PASSWORD = "s3cr3t-Pa55word-xyz"

MULTI_TARGET_TOML = f"""
[journal]
url = "sqlite:///:memory:"

[targets.db]
kind = "postgres"
environment = "staging"
dsn = "postgresql://app:{SECRET_PASSWORD}@127.0.0.1:5432/test"
proxy = {{ listen = "127.0.0.1:15432", upstream = "127.0.0.1:5432" }}

[targets.cache]
kind = "redis"
environment = "test"
url = "redis://:{SECRET_PASSWORD}@127.0.0.1:6379/0"

[targets.api]
kind = "http"
environment = "staging"
base_url = "http://127.0.0.1:8000"

[targets.schedule]
kind = "schedule"
environment = "test"
"""


def multi_target_settings() -> Settings:
    return parse_settings(MULTI_TARGET_TOML, source="test")


def valid_design(**overrides: Any) -> dict[str, Any]:
    design: dict[str, Any] = {
        "experiment_type": "schedule",
        "target_component": "schedule",
        "hypothesis": "When the busiest faculty member is absent, the schedule should keep coverage.",
        "environment": "test",
        "blast_radius": {"scope": "synthetic program only", "targets": ["schedule"]},
        "duration": "30s",
        "rollback_plan": ["Remove the absence overlay", "Verify coverage equals the baseline"],
    }
    design.update(overrides)
    return {k: v for k, v in design.items() if v is not None}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def static_site(root: Path) -> Iterator[int]:
    """A real HTTP server (`python -m http.server`) serving `root` on a loopback port; yields the port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def kill_matching(pattern: str, state_dir: Path | None = None) -> int:
    """SIGKILL every process whose command line matches `pattern` (helpers a test left behind); with
    `state_dir`, only those started for that state directory, so other suites on the machine live on."""
    found = subprocess.run(
        ["pgrep", "-f", pattern], capture_output=True, text=True, check=False
    ).stdout.split()
    if state_dir is not None:
        found = [pid for pid in found if _started_for(pid, state_dir)]
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    return len(found)


def _started_for(pid: str, state_dir: Path) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"CHAOS_MCP_STATE_DIR={state_dir}".encode() in environ


def proxied_target_toml(proxy_port: int, name: str, fields: str, upstream_port: int) -> tuple[str, int]:
    """chaos.toml for one target `name` (its `fields` lines) behind the proxy daemon at `proxy_port`,
    listening on a free port for `upstream_port`; the toml and that listen port."""
    listen = free_port()
    toml = (
        f'[proxy]\napi = "http://127.0.0.1:{proxy_port}"\n\n[targets.{name}]\n{fields}'
        f'proxy = {{ listen = "127.0.0.1:{listen}", upstream = "127.0.0.1:{upstream_port}" }}\n'
    )
    return toml, listen
