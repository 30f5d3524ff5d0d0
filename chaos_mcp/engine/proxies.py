"""The fault proxy the targets need: found at `proxy.api`, or started detached, with their proxies.

The daemon carries the application's traffic, so it must not die with an MCP session: it runs
in its own session and outlives the server.
"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import anyio
import structlog

from chaos_mcp.config import LOOPBACK_HOSTS, Settings
from chaos_mcp.engine.errors import EngineError
from chaos_mcp.faults.proxy.client import ProxyApiError, ProxyClient
from chaos_mcp.state import state_dir

log = structlog.get_logger("chaos_mcp.proxies")
START_TIMEOUT = 15.0


async def ensure_proxies(settings: Settings) -> None:
    """Make sure every target with a `proxy` has its proxy in a running daemon."""
    wanted = {name: t.proxy for name, t in settings.targets.items() if t.proxy is not None}
    if not wanted:
        return
    api = settings.proxy.api
    if not await _answers(api):
        _start_daemon(api)
        with anyio.move_on_after(START_TIMEOUT):
            while not await _answers(api):  # noqa: ASYNC110 - polling another process, no event to wait on
                await anyio.sleep(0.05)
        if not await _answers(api):
            raise EngineError(
                f"the fault proxy at {api} does not answer and could not be started; run "
                "`chaos-mcp proxy` (or a Toxiproxy) there, or fix [proxy] api in chaos.toml"
            )
    async with ProxyClient(api) as client:
        for name, spec in wanted.items():
            try:
                await client.ensure_proxy(name, spec.listen, spec.upstream)
            except ProxyApiError as exc:
                raise EngineError(
                    f"cannot create the proxy for target {name!r} ({spec.listen} → {spec.upstream}): {exc}"
                ) from None


async def _answers(api: str) -> bool:
    try:
        async with ProxyClient(api, timeout=1.0) as client:
            await client.version()
    except Exception:
        return False
    return True


def _start_daemon(api: str) -> None:
    parts = urlsplit(api)
    host, port = parts.hostname or "127.0.0.1", parts.port or 8474
    if host not in LOOPBACK_HOSTS:
        raise EngineError(
            f"no fault proxy answers at {api}, and chaos-mcp only starts one on loopback; "
            "start `chaos-mcp proxy` on that host"
        )
    log_path = state_dir() / "proxy.log"
    with open(log_path, "ab") as log_file:
        subprocess.Popen(
            [sys.executable, "-m", "chaos_mcp.cli", "proxy", "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
        )
    log.info("proxy_daemon_started", api=api, log=str(log_path))
