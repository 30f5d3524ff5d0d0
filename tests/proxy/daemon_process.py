"""The proxy daemon as the operator runs it: `chaos-mcp proxy` in its own process, its own state dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import free_port
from tests.proxy.conftest import wait_until


def target_toml(name: str, listen_port: int, upstream: str = "127.0.0.1:6379") -> str:
    return (
        f'[targets.{name}]\nkind = "redis"\nenvironment = "test"\nurl = "redis://127.0.0.1:6379/0"\n'
        f'proxy = {{ listen = "127.0.0.1:{listen_port}", upstream = "{upstream}" }}\n'
    )


def answers(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/version", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class DaemonProcess:
    """`python -m chaos_mcp.cli proxy --port P --config FILE [extra…]`, output to `log_path`."""

    def __init__(self, tmp_path: Path, config_text: str, *extra: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.state = tmp_path / "state"
        self.state.mkdir(exist_ok=True)
        self.config = tmp_path / "chaos.toml"
        self.config.write_text(config_text)
        self.log_path = tmp_path / "proxy.log"
        self.env = {
            **os.environ,
            "CHAOS_MCP_STATE_DIR": str(self.state),
            "CHAOS_MCP_CONFIG": str(self.config),
        }
        self.env.pop("CHAOS_MCP_PROXY_TOKEN_FILE", None)
        self.command = [sys.executable, "-m", "chaos_mcp.cli", "proxy", "--host", "127.0.0.1"]
        self.command += ["--port", str(self.port), "--config", str(self.config), *extra]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.state / "proxy.token").read_text().strip()

    def start(self) -> DaemonProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        wait_until(lambda: answers(self.api_url), timeout=15, what="proxy daemon answers")
        return self

    def client(self, token: str | None = None) -> httpx.Client:
        """A control-API client sending `token` (the daemon's own when None; "" sends none)."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.api_url, timeout=5, headers=headers)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
