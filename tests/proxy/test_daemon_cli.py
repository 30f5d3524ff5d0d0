"""`main()`: the daemon as a process, creating proxies from chaos.toml, stopping on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import redis

from chaos_mcp.faults.proxy.daemon import main
from tests.helpers import free_port
from tests.proxy.conftest import wait_until


def test_the_daemon_creates_a_proxy_per_configured_target_and_exits_cleanly(tmp_path: Path) -> None:
    api_port, listen_port = free_port(), free_port()
    config = tmp_path / "chaos.toml"
    config.write_text(
        '[targets.cache]\nkind = "redis"\nenvironment = "test"\nurl = "redis://127.0.0.1:6379/0"\n'
        f'proxy = {{ listen = "127.0.0.1:{listen_port}", upstream = "127.0.0.1:6379" }}\n'
        '[targets.plain]\nkind = "redis"\nenvironment = "test"\nurl = "redis://127.0.0.1:6379/0"\n'
    )
    command = [sys.executable, "-m", "chaos_mcp.faults.proxy", "--port", str(api_port)]
    process = subprocess.Popen([*command, "--config", str(config)], stderr=subprocess.PIPE, text=True)
    try:

        def ready() -> bool:
            try:
                return bool(httpx.get(f"http://127.0.0.1:{api_port}/proxies").json())
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=15, what="daemon ready")
        proxies = httpx.get(f"http://127.0.0.1:{api_port}/proxies").json()
        assert set(proxies) == {"cache"}
        assert proxies["cache"]["listen"] == f"127.0.0.1:{listen_port}"
        assert redis.Redis(port=listen_port, socket_timeout=2).ping()
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        process.kill()
        _, stderr = process.communicate()
    assert stderr == "" or all(line.startswith("{") for line in stderr.splitlines() if line.strip())


def test_a_bad_config_file_is_exit_code_2_with_a_message(tmp_path: Path, capsys: object) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text("[targets.x]\nkind = 'nope'\n")
    assert main(["--config", str(config), "--port", str(free_port())]) == 2
