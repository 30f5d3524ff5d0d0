"""Every `chaos-mcp …` line in README.md's code blocks runs as printed: each optional part left out and
put in, each documented choice, with a temporary configuration and state directory. Servers start
and answer (stdio: tools/list; http: initialize; the proxy: its API) and are then stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from chaos_mcp.engine.journal import Journal
from tests.helpers import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
ORDER = ["demo", "report", "abort", "arm", "recover", "serve", "proxy"]  # report needs demo's experiment
START_TIMEOUT = 30.0


def readme_lines() -> list[str]:
    """`chaos-mcp …` lines inside fenced code blocks, comments stripped."""
    lines, fenced = [], False
    for raw in README.read_text().splitlines():
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            continue
        line = raw.split("  #", 1)[0].strip()
        if fenced and line.startswith("chaos-mcp "):
            lines.append(line)
    return lines


def _split_top(text: str, separator: str) -> list[str]:
    """Split on `separator` outside brackets."""
    parts, depth, current, i = [], 0, "", 0
    while i < len(text):
        if text[i] == "[":
            depth += 1
        elif text[i] == "]":
            depth -= 1
        if depth == 0 and text.startswith(separator, i):
            parts.append(current)
            current, i = "", i + len(separator)
            continue
        current += text[i]
        i += 1
    return [*parts, current]


def expand(template: str) -> list[list[str]]:
    """Concrete argument lists: for each top-level alternative, every optional part out, then every
    optional part in once per documented choice (`a|b|c`)."""
    variants: list[list[str]] = []
    command, _, rest = template.removeprefix("chaos-mcp ").strip().partition(" ")
    for alternative in _split_top(rest, " | "):
        required = [command, *re.sub(r"\[[^\]]*\]", "", alternative).split()]
        full = [command, *alternative.replace("[", "").replace("]", "").split()]
        choices = max((len(token.split("|")) for token in full), default=1)
        variants.append(required)
        for index in range(choices):
            variants.append([t.split("|")[min(index, len(t.split("|")) - 1)] for t in full])
    unique: list[list[str]] = []
    for variant in variants:
        if variant not in unique:
            unique.append(variant)
    return unique


def test_the_readme_lists_every_subcommand() -> None:
    commands = {line.split()[1] for line in readme_lines()}
    assert commands >= {"serve", "demo", "proxy", "abort", "recover", "report"}, commands


def test_the_expansion_covers_optional_parts_and_choices() -> None:
    variants = expand("chaos-mcp serve [--config FILE] [--transport stdio|http]")
    assert variants == [
        ["serve"],
        ["serve", "--config", "FILE", "--transport", "stdio"],
        ["serve", "--config", "FILE", "--transport", "http"],
    ]
    assert expand("chaos-mcp report ID | --since DATE [--format json|html]") == [
        ["report", "ID"],
        ["report", "--since", "DATE"],
        ["report", "--since", "DATE", "--format", "json"],
        ["report", "--since", "DATE", "--format", "html"],
    ]


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "chaos.toml"
    config.write_text(
        f'[journal]\nurl = "sqlite:///{state / "journal.sqlite3"}"\n\n'
        '[targets.schedule]\nkind = "schedule"\nenvironment = "test"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CHAOS_MCP_CONFIG", "CHAOS_MCP_TOKEN")}
    env["CHAOS_MCP_STATE_DIR"] = str(state)
    yield config, env


def concrete(variant: list[str], config: Path, experiment_id: str, port: int) -> list[str]:
    values = {
        "FILE": str(config),
        "H": "127.0.0.1",
        "P": str(port),
        "N": "0",
        "…": "README command-line test",
        "ID": experiment_id,
        "DATE": datetime.now(UTC).date().isoformat(),
    }
    return [values.get(token, token) for token in variant]


def test_every_command_line_in_the_readme_runs(workspace: tuple[Path, dict[str, str]]) -> None:
    config, env = workspace
    runs = [v for line in readme_lines() for v in expand(line)]
    runs.sort(key=lambda v: ORDER.index(v[0]))
    experiment_id = ""
    for variant in runs:
        port = free_port()
        argv = concrete(variant, config, experiment_id, port)
        if "--config" not in argv:
            argv += ["--config", str(config)]  # where this test's journal is; before or after both work
        if variant[0] in ("serve", "proxy"):
            check_server(argv, env, port)
        else:
            done = run(argv, env)
            assert done.returncode == 0, (
                f"chaos-mcp {' '.join(argv)}\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
            )
            assert "Traceback" not in done.stderr
        if variant[0] == "demo":
            journal = Journal(f"sqlite:///{config.parent / 'state' / 'journal.sqlite3'}")
            experiment_id = journal.list_experiments(limit=1)[0].id
            journal.close()
        if variant[0] == "abort":
            assert run(["arm", "--config", str(config)], env).returncode == 0  # as the README says


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos_mcp.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def check_server(argv: list[str], env: dict[str, str], port: int) -> None:
    stdio = argv[0] == "serve" and "http" not in argv
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos_mcp.cli", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        answered = tools_over_stdio(process) if stdio else answers_http(process, argv, port)
        assert answered, f"chaos-mcp {' '.join(argv)} did not answer"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, err = process.communicate(timeout=5)
    assert b"unrecognized arguments" not in err and b"Traceback" not in err, err.decode()[-2000:]


def tools_over_stdio(process: subprocess.Popen[bytes]) -> bool:
    assert process.stdin is not None and process.stdout is not None
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    process.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
    process.stdin.flush()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # the server answers or exits; either ends the read
        if not line:
            return False
        reply = json.loads(line)
        if reply.get("id") == 2:
            return bool(reply["result"]["tools"])
    return False


def answers_http(process: subprocess.Popen[bytes], argv: list[str], port: int) -> bool:
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else (8765 if argv[0] == "serve" else 8474)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if argv[0] == "serve":
                reply = httpx.post(
                    f"http://127.0.0.1:{port}/mcp",
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {
                            "protocolVersion": "2025-06-18",
                            "capabilities": {},
                            "clientInfo": {"name": "t", "version": "1"},
                        },
                    },
                    headers={"Accept": "application/json, text/event-stream"},
                    timeout=5,
                )
            else:
                reply = httpx.get(f"http://127.0.0.1:{port}/version", timeout=5)
            return reply.status_code == 200
        except httpx.TransportError:
            time.sleep(0.1)
    return False
