"""Raw JSON-RPC at a real `chaos-mcp serve`, over stdio and HTTP: every malformed or out-of-bounds request
is answered within a second with the error JSON-RPC prescribes, memory stays bounded, and no traceback or
configured secret reaches an answer or the server's stderr."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos_mcp.config import parse_settings
from chaos_mcp.contract import MAX_MESSAGE_BYTES, MAX_STRING_CHARS
from chaos_mcp.schedule.api import schedule_metrics
from tests.e2e.rawstdio import RawStdio, line
from tests.helpers import SECRET_PASSWORD, free_port, valid_design

ANSWER_WITHIN_S = 1.0
RSS_GROWTH_LIMIT_KB = 48 * 1024  # measured: 2 MB (stdio), 6 MB (HTTP)


def call(request_id: Any, arguments: Any, tool: str = "get_experiment") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    code: int
    answered_id: Any  # the id the error must carry (None: JSON null)


CASES = [
    Case("oversized message", line(call(1, {"experiment_id": "x" * (5 * 1024 * 1024)})), -32600, 1),
    Case("oversized string", line(call(2, {"experiment_id": "x" * 100_000})), -32602, 2),
    Case(
        "nested 200 deep",
        b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_experiment",'
        b'"arguments":{"experiment_id":' + nested(200) + b"}}}",
        -32602,
        3,
    ),
    Case(
        "nested 50,000 deep",
        b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":' + nested(50_000) + b"}",
        -32600,
        4,
    ),
    Case(
        "lone surrogate",
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get_experiment",'
        b'"arguments":{"experiment_id":"\\ud800"}}}',
        -32602,
        5,
    ),
    Case(
        "5,000-digit integer",
        b'{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"list_experiments",'
        b'"arguments":{"limit":' + b"9" * 5000 + b"}}}",
        -32602,
        6,
    ),
    Case("integer beyond 2^53", line(call(7, {"limit": 2**60}, "list_experiments")), -32602, 7),
    Case(
        "overflowing float",
        b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"list_experiments",'
        b'"arguments":{"limit":1e999}}}',
        -32602,
        8,
    ),
    Case("NaN", b'{"jsonrpc":"2.0","id":9,"method":"ping","params":{"x":NaN}}', -32700, None),
    Case("truncated JSON", b'{"jsonrpc":"2.0","id":10,"method":"tools/ca', -32700, None),
    Case("invalid UTF-8", b'{"jsonrpc":"2.0","id":11,"method":"ping","x":"\xff\xfe"}', -32700, None),
    Case("a list of 5,000 items", line(call(12, {"experiment_id": list(range(5000))})), -32602, 12),
    Case("a batch", line([{"jsonrpc": "2.0", "id": 13, "method": "ping"}]), -32600, None),
    Case("no method", line({"jsonrpc": "2.0", "id": 14}), -32600, 14),
    Case("an object as id", line({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}), -32600, None),
    Case("a 5,000-digit id", b'{"jsonrpc":"2.0","id":' + b"7" * 5000 + b',"method":"ping"}', -32600, None),
    Case(
        "params not an object",
        line({"jsonrpc": "2.0", "id": 17, "method": "ping", "params": "x"}),
        -32600,
        17,
    ),
    Case("garbage", b"\x00\x01 not json at all", -32700, None),
]
STDIO_ONLY = [Case("an 8 MB line of garbage", b"z" * (8 * 1024 * 1024), -32600, None)]


def config(tmp_path: Path) -> Path:
    path = tmp_path / "chaos.toml"
    path.write_text(
        f'[journal]\nurl = "sqlite:///{tmp_path / "journal.sqlite3"}"\n\n'
        f'[targets.cache]\nkind = "redis"\nenvironment = "test"\n'
        f'url = "redis://:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/0"\n\n'
        '[targets.schedule]\nkind = "schedule"\nenvironment = "test"\n'
    )
    return path


def serve(tmp_path: Path, state: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("CHAOS_MCP_CONFIG", "CHAOS_MCP_TOKEN")}
    env["CHAOS_MCP_STATE_DIR"] = str(state)
    return subprocess.Popen(
        [sys.executable, "-m", "chaos_mcp.cli", "--config", str(config(tmp_path)), "serve", *extra],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr.log").open("wb"),
    )


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(row for row in status.splitlines() if row.startswith("VmRSS:")).split()[1])


def assert_clean(text: str, where: str) -> None:
    assert "Traceback" not in text, f"a traceback in {where}"
    assert SECRET_PASSWORD not in text, f"a configured secret in {where}"


@pytest.fixture
def stdio_server(tmp_path: Path, state_dir: Path) -> Iterator[tuple[RawStdio, subprocess.Popen[bytes]]]:
    process = serve(tmp_path, state_dir)
    peer = RawStdio(process)
    peer.initialize()
    yield peer, process
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_over_stdio_every_broken_request_gets_its_json_rpc_error_within_a_second(
    stdio_server: tuple[RawStdio, subprocess.Popen[bytes]],
) -> None:
    peer, _ = stdio_server
    for case in CASES + STDIO_ONLY:
        began = time.monotonic()
        peer.send(case.body)
        answer = peer.answer_to(case.answered_id, within=ANSWER_WITHIN_S)
        assert time.monotonic() - began < ANSWER_WITHIN_S, case.name
        assert answer["error"]["code"] == case.code, (case.name, answer)
        peer.send(line({"jsonrpc": "2.0", "id": "alive", "method": "ping"}))
        assert peer.answer_to("alive", within=ANSWER_WITHIN_S)["result"] == {}, case.name


def mutations(seed: int, count: int) -> Iterator[bytes]:
    """Valid calls with random damage: cut, a byte flipped, a value swapped for something hostile."""
    rng = random.Random(seed)
    hostile: list[Any] = [
        "\\ud800",
        "9" * 400,
        "[" * 300,
        "1e400",
        '"' + "a" * 70_000 + '"',
        "null",
        "{}",
        "-0",
    ]
    for index in range(count):
        text = json.dumps(call(f"f{index}", {"experiment_id": "exp-1", "limit": 5}, "list_experiments"))
        choice = rng.randrange(4)
        if choice == 0:
            text = text[: rng.randrange(len(text))]
        elif choice == 1:
            at = rng.randrange(len(text))
            text = text[:at] + chr(rng.randrange(32, 0x2FF)) + text[at + 1 :]
        else:
            text = text.replace("5", rng.choice(hostile), 1).replace(
                '"exp-1"', rng.choice(hostile), choice - 2
            )
        yield text.encode()


def test_over_stdio_randomly_damaged_requests_never_silence_or_bloat_the_server(
    stdio_server: tuple[RawStdio, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    peer, process = stdio_server
    before = rss_kb(process.pid)
    for case in (CASES + STDIO_ONLY) * 2:
        peer.send(case.body)
        peer.answer_to(case.answered_id, within=ANSWER_WITHIN_S)
    for index, body in enumerate(mutations(seed=13, count=150)):
        peer.send(body)
        peer.send(line({"jsonrpc": "2.0", "id": f"alive-{index}", "method": "ping"}))
        peer.answer_to(f"alive-{index}", within=ANSWER_WITHIN_S)
    growth = rss_kb(process.pid) - before
    assert growth < RSS_GROWTH_LIMIT_KB, f"RSS grew by {growth / 1024:.0f} MB"
    peer.stdin.close()
    assert process.wait(timeout=30) == 0
    assert_clean(b"".join(peer.seen).decode("utf-8", "replace"), "an answer")
    assert_clean((tmp_path / "stderr.log").read_text(errors="replace"), "serve's stderr")


HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_over_http_every_broken_body_gets_a_json_rpc_error_not_a_500(tmp_path: Path, state_dir: Path) -> None:
    port = free_port()
    process = serve(tmp_path, state_dir, "--transport", "http", "--port", str(port))
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        with httpx.Client(timeout=5) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.get(f"http://127.0.0.1:{port}/metrics")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and process.poll() is None, "serve did not start"
                    time.sleep(0.05)
            before = rss_kb(process.pid)
            for _ in range(3):
                for case in CASES:
                    began = time.monotonic()
                    answer = http.post(url, content=case.body, headers=HEADERS)
                    assert time.monotonic() - began < ANSWER_WITHIN_S, case.name
                    assert answer.status_code in (400, 413), (case.name, answer.status_code)
                    body = answer.json()
                    assert (body["error"]["code"], body["id"]) == (case.code, case.answered_id), case.name
                    assert_clean(answer.text, f"the answer to {case.name}")
            growth = rss_kb(process.pid) - before
            assert growth < RSS_GROWTH_LIMIT_KB, f"RSS grew by {growth / 1024:.0f} MB"
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert_clean((tmp_path / "stderr.log").read_text(errors="replace"), "serve's stderr")


def maximum_size_design() -> bytes:
    """design_experiment as large as the bounds allow, every string a worst case for the old checks."""
    text = "[a" * (MAX_STRING_CHARS // 2)
    steps = MAX_MESSAGE_BYTES // (MAX_STRING_CHARS + 4)
    while True:
        design = valid_design(hypothesis="When " + text[:-6], rollback_plan=[text] * steps, system_state=text)
        body = line(call("heavy", design, "design_experiment"))
        if len(body) <= MAX_MESSAGE_BYTES:
            return body
        steps -= 1


def test_abort_all_is_answered_within_a_second_while_a_maximum_size_call_is_processed(
    stdio_server: tuple[RawStdio, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    peer, _ = stdio_server
    schedule = parse_settings((tmp_path / "chaos.toml").read_text()).targets["schedule"]
    experiment_id = peer.call("design", "design_experiment", valid_design())["experiment_id"]
    peer.call("baseline", "measure_steady_state", {"experiment_id": experiment_id})
    peer.call(
        "inject",
        "inject_failure",
        {"experiment_id": experiment_id, "environment": "test", "target_component": "schedule"},
    )
    assert schedule_metrics("schedule", schedule)["coverage_pct"] < 100  # type: ignore[arg-type]
    began = time.monotonic()
    peer.send(maximum_size_design())
    peer.call("abort", "abort_all", {"reason": "fuzz: kill switch under load"}, within=ANSWER_WITHIN_S)
    assert time.monotonic() - began < ANSWER_WITHIN_S
    assert schedule_metrics("schedule", schedule)["coverage_pct"] == 100  # type: ignore[arg-type]
    assert '"heavy"' not in peer.early, "the large call was already done: this measured nothing"
    heavy = peer.answer_to("heavy", within=60)
    assert heavy["result"]["isError"]
