"""`chaos-mcp proxy`: the fault-injecting proxy daemon (data path and control API on one event loop).

daemon = ProxyDaemon(port=0)      # in-process, e.g. in tests (busy_poll_us=0: no busy-polling)
await daemon.start(); daemon.api_url; await daemon.stop()

main(["--port", "8474", "--config", "chaos.toml"])   # from the command line (uvloop; --busy-poll-us opt-in)
main(["--supervise", "--port", "8474"])             # the same under a supervisor that restarts it

From the command line the daemon requires its token for every request that changes state
(access.py; `--allow-unauthenticated` turns that off, with a warning), accepts only loopback
listen addresses and the upstreams chaos.toml declares, and caps every toxic's expiry at
policy.max_duration. In-process (`ProxyDaemon()`) it is open unless given an `AccessPolicy`.

`relay` chooses who copies the bytes of connections no toxic touches: "kernel" (the C relay
thread of fastpath.py plus the in-kernel splice), "native" (the C relay thread alone), "python"
(the event loop), or "auto" (the first of these the machine allows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from chaos_mcp.config import ConfigError, Settings, load_settings
from chaos_mcp.faults.proxy import busypoll, fastpath
from chaos_mcp.faults.proxy.access import AccessPolicy, default_token_path, load_or_create_token
from chaos_mcp.faults.proxy.api import build_app
from chaos_mcp.faults.proxy.fastpath import RELAY_MODES, NativeRelayUnavailable, RelayMode
from chaos_mcp.faults.proxy.proxy import ProxyError
from chaos_mcp.faults.proxy.registry import ProxyRegistry
from chaos_mcp.faults.proxy.supervisor import is_supervised, stopped_file

log = structlog.get_logger("chaos_mcp.proxy")
WANTED_FILES = 65536
HEADER_TIMEOUT = 5.0
MAX_CONNECTIONS = 256


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


class _DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline: a request's head must arrive within HEADER_TIMEOUT
    of the connection opening (or of the previous response), however slowly its bytes trickle in."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(HEADER_TIMEOUT, self._drop)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _drop(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class ProxyDaemon:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        busy_poll_us: float = 0,
        relay: RelayMode = "auto",
        access: AccessPolicy | None = None,
        state_file: Path | None = None,
        generation: int = 0,
    ) -> None:
        if busy_poll_us < 0:
            raise ValueError(f"busy_poll_us must be >= 0 (0 turns busy-polling off), got {busy_poll_us}")
        if relay not in RELAY_MODES:
            raise ValueError(f"relay must be one of {', '.join(RELAY_MODES)}, got {relay!r}")
        self.host = host
        self.port = port
        self.busy_poll_us = busy_poll_us
        self.relay: RelayMode = relay
        self.registry = ProxyRegistry(access=access)
        self.state_file = state_file
        self.generation = generation
        self.started_at = time.time()
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
        await self.restore()
        config = uvicorn.Config(
            build_app(self.registry, self.status, self.persist),
            http=_DeadlineProtocol,
            log_config=None,
            access_log=False,
            lifespan="off",
            log_level="warning",
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=int(HEADER_TIMEOUT),
            h11_max_incomplete_event_size=16 * 1024,
        )
        self._server = _ApiServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the control API stopped while starting")
            await asyncio.sleep(0.005)
        log.info("proxy daemon ready", api=self.api_url, relay=self.relay_in_use)

    def status(self) -> dict[str, Any]:
        """For /version: which incarnation this is, so a restart is visible to the engine and reports."""
        return {
            "generation": self.generation,
            "started_at": self.started_at,
            "pid": os.getpid(),
            "supervised": is_supervised(self.port, os.getpid()),
            "token_required": self.registry.access.token is not None,
        }

    def persist(self) -> None:
        """Write the proxies (never their toxics) where a restarted daemon finds them."""
        if self.state_file is None:
            return
        proxies = [p.to_json() for p in self.registry.proxies.values()]
        wanted = [{"name": p["name"], "listen": p["listen"], "upstream": p["upstream"]} for p in proxies]
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        temporary.write_text(json.dumps(wanted), encoding="utf-8")
        os.replace(temporary, self.state_file)

    async def restore(self) -> None:
        """Recreate the proxies a previous incarnation persisted: enabled, with no toxics."""
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            wanted = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("proxy_state_unreadable", file=str(self.state_file), error=str(exc))
            return
        for body in wanted if isinstance(wanted, list) else []:
            try:
                await self.registry.create(body)
            except ProxyError as exc:
                log.warning("proxy_not_restored", proxy=str(body), reason=str(exc))
        log.info("proxies_restored", proxies=sorted(self.registry.proxies), generation=self.generation)

    @property
    def relay_in_use(self) -> str:
        fast_path = self.registry.fast_path
        if fast_path is None:
            return "python"
        return "kernel" if fast_path.kernel else "native"

    async def create_from_settings(self, settings: Settings) -> list[str]:
        names = []
        for name, target in settings.targets.items():
            if target.proxy is not None and name not in self.registry.proxies:
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


async def serve(daemon: ProxyDaemon, settings: Settings | None = None) -> None:
    """Run `daemon` until it is told to exit (SIGINT/SIGTERM) or cancelled."""
    await daemon.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, daemon.request_stop)
    try:
        if settings is not None:
            await daemon.create_from_settings(settings)
            daemon.persist()
        await daemon.wait()
        stopped_file(daemon.port).write_text(str(os.getpid()))  # asked to stop: not to be restarted
    finally:
        await daemon.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chaos-mcp proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="control API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="control API port (default 8474)")
    parser.add_argument(
        "--config",
        help="chaos.toml (default: $CHAOS_MCP_CONFIG, then ./chaos.toml): a proxy for each target with "
        "`proxy = {…}`; the upstreams it declares (and [proxy] allowed_upstreams) are the only ones accepted",
    )
    parser.add_argument(
        "--token-file",
        help="the file holding the control API's token, created 0600 at first start (default: "
        "$CHAOS_MCP_PROXY_TOKEN_FILE, then <state dir>/proxy.token); send it as `Authorization: "
        "Bearer <token>` or `X-Chaos-Proxy-Token: <token>` with every request that changes state",
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="accept changes without the token (for unmodified Toxiproxy clients): any local process can "
        "then add toxics or redirect proxies; off by default",
    )
    parser.add_argument(
        "--allow-upstream",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="accept this upstream too (repeatable; the server passes its targets' upstreams this way)",
    )
    parser.add_argument(
        "--allow-listen-host", action="append", default=[], metavar="HOST", help="accept this listen host too"
    )
    parser.add_argument(
        "--max-toxic-seconds",
        type=float,
        help="the longest expiry a toxic may have (default and ceiling: policy.max_duration)",
    )
    parser.add_argument(
        "--supervise",
        action="store_true",
        help="run the daemon under a supervisor that restarts it (its proxies, no toxics) if it dies",
    )
    parser.add_argument("--adopt", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state-file", help=argparse.SUPPRESS)
    parser.add_argument("--generation", type=int, default=0, help=argparse.SUPPRESS)
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


class _LibraryLogs(logging.Handler):
    """uvicorn's and asyncio's log records as structlog JSON lines too, never with a traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        fields = {"logger": record.name}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = type(record.exc_info[1]).__name__
        log.log(record.levelno, record.getMessage(), **fields)


def _log_to_stderr() -> None:
    root = logging.getLogger()
    root.handlers = [_LibraryLogs()]
    root.setLevel(logging.WARNING)
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
    if args.supervise:
        from chaos_mcp.faults.proxy.supervisor import supervise

        given = argv if argv is not None else sys.argv[1:]
        return supervise(_without(given, "--supervise", "--adopt"), args.port, args.adopt)
    try:
        settings = load_settings(args.config)
        _check_addresses(args.allow_upstream)
        token = None if args.allow_unauthenticated else load_or_create_token(_token_path(args.token_file))
    except ConfigError as exc:
        print(f"chaos-mcp proxy: {exc}", file=sys.stderr)
        return 2
    except (OSError, ProxyError) as exc:
        print(f"chaos-mcp proxy: cannot use the token file: {exc}", file=sys.stderr)
        return 2
    if token is None:
        log.warning(
            "proxy_unauthenticated",
            detail="--allow-unauthenticated: any local process may add toxics, redirect or take down proxies",
        )
    daemon = ProxyDaemon(
        args.host,
        args.port,
        args.busy_poll_us,
        args.relay,
        access=AccessPolicy.from_settings(
            settings, token, args.allow_upstream, args.allow_listen_host, args.max_toxic_seconds
        ),
        state_file=Path(args.state_file) if args.state_file else None,
        generation=args.generation,
    )
    try:
        import uvloop

        uvloop.run(serve(daemon, settings))
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


def _check_addresses(addresses: list[str]) -> None:
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--allow-upstream: expected host:port such as 127.0.0.1:5432, got {address!r}")


def _token_path(explicit: str | None) -> Path:
    return Path(explicit) if explicit else default_token_path()


def _without(argv: list[str], flag: str, option: str) -> list[str]:
    """`argv` less `flag` and `option VALUE`."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg == flag:
            skip = False
            continue
        skip = arg == option
        if not skip:
            kept.append(arg)
    return kept
