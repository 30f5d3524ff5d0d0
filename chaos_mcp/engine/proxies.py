"""The fault proxy the targets need: found at `proxy.api`, or started detached, with their proxies.

The daemon carries the application's traffic, so it must not die with an MCP session: it runs
in its own session under its own supervisor (`chaos-mcp proxy --supervise`), which restarts it
if it dies, and outlives the server. A daemon found running without its supervisor gets a new
one that adopts it. `sweep_stray_toxics` removes what was added outside any experiment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import structlog

from chaos_mcp.config import LOOPBACK_HOSTS, Settings
from chaos_mcp.engine.errors import EngineError
from chaos_mcp.engine.journal import Journal
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
        _start_daemon(api, settings)
        with anyio.move_on_after(START_TIMEOUT):
            while not await _answers(api):  # noqa: ASYNC110 - polling another process, no event to wait on
                await anyio.sleep(0.05)
        if not await _answers(api):
            raise EngineError(
                f"the fault proxy at {api} does not answer and could not be started; run "
                "`chaos-mcp proxy` (or a Toxiproxy) there, or fix [proxy] api in chaos.toml"
            )
    async with ProxyClient(api) as client:
        await _supervise_if_orphaned(client, api, settings)
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


async def _supervise_if_orphaned(client: ProxyClient, api: str, settings: Settings) -> None:
    """Our daemon running without its supervisor (it was killed): start one that adopts it."""
    try:
        status = await client.status()
    except ProxyApiError:
        return
    if status.get("server") != "chaos-mcp-proxy" or status.get("supervised") is not False:
        return
    log.warning("proxy_daemon_unsupervised", api=api, pid=status.get("pid"), action="adopting it")
    _start_daemon(api, settings, adopt=int(status["pid"]))


def _start_daemon(api: str, settings: Settings, adopt: int | None = None) -> None:
    parts = urlsplit(api)
    host, port = parts.hostname or "127.0.0.1", parts.port or 8474
    if host not in LOOPBACK_HOSTS:
        raise EngineError(
            f"no fault proxy answers at {api}, and chaos-mcp only starts one on loopback; "
            "start `chaos-mcp proxy` on that host"
        )
    log_path = state_dir() / "proxy.log"
    command = [sys.executable, "-m", "chaos_mcp.cli", "proxy", "--host", host, "--port", str(port)]
    command += ["--supervise", *(["--adopt", str(adopt)] if adopt else [])]
    if Path(settings.source).is_file():
        command += ["--config", str(Path(settings.source).resolve())]
    for target in settings.targets.values():  # also when the settings did not come from a file
        command += ["--allow-upstream", target.proxy.upstream] if target.proxy else []
    for upstream in settings.proxy.allowed_upstreams:
        command += ["--allow-upstream", upstream]
    for host in settings.proxy.allowed_listen_hosts:
        command += ["--allow-listen-host", host]
    command += ["--max-toxic-seconds", f"{settings.policy.max_duration:g}"]
    with open(log_path, "ab") as log_file:
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
        )
    log.info("proxy_daemon_started", api=api, log=str(log_path))


async def sweep_stray_toxics(settings: Settings, journal: Journal) -> list[str]:
    """Remove toxics no active fault in the journal accounts for, and re-enable disabled proxies.

    Such toxics were added outside any experiment (by hand, or by a process holding the token);
    the kill switch and `recover` must not leave them in force. Returns what was removed, as
    "proxy/toxic" (or "proxy (re-enabled)"); [] when the daemon does not answer.
    """
    if all(t.proxy is None for t in settings.targets.values()):
        return []
    accounted = {_proxy_toxic(row.record) for row in journal.active_faults()}
    removed: list[str] = []
    try:
        async with ProxyClient(settings.proxy.api, timeout=3.0) as client:
            for name, proxy in (await client.list_proxies()).items():
                for toxic in await client.toxics(name):
                    if (name, toxic.get("name")) not in accounted:
                        await client.remove_toxic(name, str(toxic.get("name")))
                        removed.append(f"{name}/{toxic.get('name')}")
                if proxy.get("enabled") is False:
                    await client.set_enabled(name, True)
                    removed.append(f"{name} (re-enabled)")
    except ProxyApiError as exc:
        if exc.status != 0:  # a daemon that is not running holds no toxics
            log.warning("stray_toxic_sweep_failed", api=settings.proxy.api, reason=str(exc))
    if removed:
        log.warning("stray_toxics_removed", removed=removed)
    return removed


def _proxy_toxic(record: dict[str, object]) -> tuple[str, str] | None:
    """(proxy, toxic name) of a network fault's record; scenarios always name their toxics."""
    fields = record.get("fields")
    if not isinstance(fields, dict) or record.get("kind") not in ("proxy.toxic", "proxy.down"):
        return None
    return str(fields.get("proxy")), str(fields.get("toxic_name") or "chaos_mcp_down")
