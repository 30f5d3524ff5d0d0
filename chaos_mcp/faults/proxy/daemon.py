"""`chaos-mcp proxy`: the fault-injecting proxy daemon (data path and control API on one event loop).

daemon = ProxyDaemon(port=0)      # in-process, e.g. in tests (busy_poll_us=0: no busy-polling)
await daemon.start(); daemon.api_url; await daemon.stop()

main(["--port", "8474", "--config", "chaos.toml"])   # from the command line (uvloop; --busy-poll-us opt-in)

`relay` chooses who copies the bytes of connections no toxic touches: "kernel" (the C relay
thread of fastpath.py plus the in-kernel splice), "native" (the C relay thread alone), "python"
(the event loop), or "auto" (the first of these the machine allows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
import socket
import sys
from collections.abc import Iterator

import structlog
import uvicorn

from chaos_mcp.config import ConfigError, Settings, load_settings
from chaos_mcp.faults.proxy import busypoll, fastpath
from chaos_mcp.faults.proxy.api import build_app
from chaos_mcp.faults.proxy.fastpath import RELAY_MODES, NativeRelayUnavailable, RelayMode
from chaos_mcp.faults.proxy.proxy import ProxyError
from chaos_mcp.faults.proxy.registry import ProxyRegistry

log = structlog.get_logger("chaos_mcp.proxy")
WANTED_FILES = 65536


def raise_fd_limit(wanted: int = WANTED_FILES) -> int:
    """Raise the soft RLIMIT_NOFILE towards `wanted` (bounded by the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _ApiServer(uvicorn.Server):
    """uvicorn without its signal handling: the daemon (or the embedding program) owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ProxyDaemon:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        busy_poll_us: float = 0,
        relay: RelayMode = "auto",
    ) -> None:
        if busy_poll_us < 0:
            raise ValueError(f"busy_poll_us must be >= 0 (0 turns busy-polling off), got {busy_poll_us}")
        if relay not in RELAY_MODES:
            raise ValueError(f"relay must be one of {', '.join(RELAY_MODES)}, got {relay!r}")
        self.host = host
        self.port = port
        self.busy_poll_us = busy_poll_us
        self.relay: RelayMode = relay
        self.registry = ProxyRegistry()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        raise_fd_limit()
        busypoll.set_window(self.busy_poll_us)
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self.registry.fast_path = fastpath.start(self.relay, self.busy_poll_us)
        config = uvicorn.Config(
            build_app(self.registry), log_config=None, access_log=False, lifespan="off", log_level="warning"
        )
        self._server = _ApiServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the control API stopped while starting")
            await asyncio.sleep(0.005)
        log.info("proxy daemon ready", api=self.api_url, relay=self.relay_in_use)

    @property
    def relay_in_use(self) -> str:
        fast_path = self.registry.fast_path
        if fast_path is None:
            return "python"
        return "kernel" if fast_path.kernel else "native"

    async def create_from_settings(self, settings: Settings) -> list[str]:
        names = []
        for name, target in settings.targets.items():
            if target.proxy is not None:
                body = {"name": name, "listen": target.proxy.listen, "upstream": target.proxy.upstream}
                await self.registry.create(body)
                names.append(name)
        return names

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    def request_stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    async def stop(self) -> None:
        self.request_stop()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        await self.registry.close()
        if self.registry.fast_path is not None:
            self.registry.fast_path.close()
            self.registry.fast_path = None

    async def __aenter__(self) -> ProxyDaemon:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def serve(
    host: str = "127.0.0.1",
    port: int = 8474,
    settings: Settings | None = None,
    busy_poll_us: float = 0,
    relay: RelayMode = "auto",
) -> None:
    """Run the daemon until it is told to exit (SIGINT/SIGTERM) or cancelled."""
    daemon = ProxyDaemon(host, port, busy_poll_us, relay)
    await daemon.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, daemon.request_stop)
    try:
        if settings is not None:
            await daemon.create_from_settings(settings)
        await daemon.wait()
    finally:
        await daemon.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chaos-mcp proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="control API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="control API port (default 8474)")
    parser.add_argument("--config", help="chaos.toml: create a proxy for each target with `proxy = {…}`")
    parser.add_argument(
        "--busy-poll-us",
        type=_non_negative,
        default=0,
        help="keep polling this many µs after the last byte moved, to cut round-trip latency "
        f"(e.g. {busypoll.DEFAULT_WINDOW_US}); costs a core while traffic flows, so it is off by default",
    )
    parser.add_argument(
        "--relay",
        choices=RELAY_MODES,
        default="auto",
        help="who copies the bytes of connections no toxic touches: kernel (a BPF sockmap splice, "
        "needs root or CAP_BPF + CAP_NET_ADMIN, with a C thread for the rest), native (a C thread), "
        "python (the event loop), auto (the first of these the machine allows; the default)",
    )
    return parser


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of microseconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (off) or a positive number of microseconds, got {text}")
    return value


def _log_to_stderr() -> None:
    if not structlog.is_configured():
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _log_to_stderr()
    try:
        settings = load_settings(args.config) if args.config else None
    except ConfigError as exc:
        print(f"chaos-mcp proxy: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port, settings, args.busy_poll_us, args.relay))
    except OSError as exc:
        print(
            f"chaos-mcp proxy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    except (ProxyError, NativeRelayUnavailable) as exc:
        print(f"chaos-mcp proxy: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
