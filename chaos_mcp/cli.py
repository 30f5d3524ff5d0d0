"""Entry points: `chaos-mcp serve | demo | proxy | abort | arm | recover | report`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from chaos_mcp import __version__
from chaos_mcp.config import ConfigError, Settings, load_settings
from chaos_mcp.engine.journal import JournalError, require_existing
from chaos_mcp.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaos-mcp", description="Safe chaos experiments for AI agents (MCP)."
    )
    parser.add_argument("--version", action="version", version=f"chaos-mcp {__version__}")
    _shared_options(parser, default=None)
    parser.set_defaults(log_level="INFO")
    # the same options after the subcommand (`chaos-mcp serve --config FILE`); SUPPRESS keeps a
    # value given before the subcommand when none is given after it
    shared = argparse.ArgumentParser(add_help=False)
    _shared_options(shared, default=argparse.SUPPRESS)
    sub = _SharedSubparsers(parser.add_subparsers(dest="command", required=True), shared)
    serve = sub.add_parser("serve", help="run the MCP server")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    sub.add_parser("demo", help="a complete experiment on the embedded default")
    # its other options (--config, --token-file, --supervise, --relay …) pass through to the daemon
    proxy = sub.add_parser("proxy", help="the fault-injecting proxy daemon", add_help=False)
    proxy.add_argument("--host", default="127.0.0.1")
    proxy.add_argument("--port", type=int, default=8474)
    proxy.add_argument("--busy-poll-us", default="0", help="opt-in latency tuning (e.g. 100); costs CPU")
    proxy.add_argument(
        "--relay", default="auto", help="auto | kernel | native | python (see chaos-mcp proxy -h)"
    )
    abort = sub.add_parser("abort", help="kill switch: revert every active fault, refuse new injections")
    abort.add_argument("--reason", default="operator abort from the shell")
    sub.add_parser("arm", help="re-arm after an abort")
    sub.add_parser("recover", help="revert whatever a crashed server left active")
    report = sub.add_parser("report", help="render a report from the journal")
    report.add_argument("experiment_id", nargs="?")
    report.add_argument("--since")
    report.add_argument("--until")
    report.add_argument("--format", choices=["markdown", "json", "html"], default="markdown")
    return parser


def _shared_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--config", default=default, help="chaos.toml (default: $CHAOS_MCP_CONFIG, then ./chaos.toml)"
    )
    parser.add_argument("--log-level", default=default, help="DEBUG | INFO | WARNING | ERROR (default INFO)")


class _SharedSubparsers:
    """Every subcommand also accepts the shared options."""

    def __init__(self, actions: Any, shared: argparse.ArgumentParser) -> None:
        self.actions, self.shared = actions, shared

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.actions.add_parser(name, parents=[self.shared], **kwargs)
        return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "proxy":
        from chaos_mcp.faults.proxy.daemon import main as proxy_main

        configure_logging(args.log_level)  # library loggers as JSON too; the daemon keeps this setup

        given = ["--host", args.host, "--port", str(args.port), "--busy-poll-us", args.busy_poll_us]
        given += ["--relay", args.relay]
        return proxy_main([*given, *rest, *(["--config", args.config] if args.config else [])])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"chaos-mcp: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, settings.secrets())
    try:
        if args.command in ("abort", "arm", "recover"):
            require_existing(settings.journal.resolved_url())
        return _run(args, settings)
    except JournalError as exc:
        print(f"chaos-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "demo":
        from chaos_mcp.demo import run_demo

        return anyio.run(run_demo, settings, sys.stdout)
    from chaos_mcp import operations

    if args.command == "abort":
        return anyio.run(operations.abort, settings, args.reason, sys.stdout)
    if args.command == "arm":
        return operations.arm(settings, sys.stdout)
    if args.command == "recover":
        return anyio.run(operations.recover, settings, sys.stdout)
    return anyio.run(
        operations.report, settings, args.experiment_id, args.since, args.until, args.format, sys.stdout
    )


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from chaos_mcp import operations
    from chaos_mcp.server import build_server

    anyio.run(operations.recover_orphans, settings)
    if any(t.proxy is not None for t in settings.targets.values()):
        anyio.run(operations.start_proxies, settings)
    _abort_on_signals(settings)
    server = build_server(settings)
    if args.transport == "stdio":
        server.run("stdio")
        return 0
    from chaos_mcp.http import serve_http

    return serve_http(server, settings, args.host, args.port)


def _abort_on_signals(settings: Settings) -> None:
    """SIGTERM/SIGINT to the server work as the kill switch: revert everything, then exit."""
    import os
    import signal
    import threading

    from chaos_mcp import operations

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        worker = threading.Thread(
            target=lambda: anyio.run(operations.abort_if_active, settings, f"{name} to chaos-mcp serve"),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=10)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":
    raise SystemExit(main())
