"""A JSON-RPC peer on a real server's stdin/stdout, with no client library in between."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import IO, Any

import pytest


def line(message: Any) -> bytes:
    return json.dumps(message).encode()


class RawStdio:
    """A JSON-RPC peer on a server's stdin/stdout, with no client library in between."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process, self.stdin, self.answers = process, process.stdin, queue.Queue[bytes]()
        self.seen: list[bytes] = []
        self.early: dict[str, dict[str, Any]] = {}
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stdout: IO[bytes]) -> None:
        for raw in stdout:
            self.answers.put(raw)

    def send(self, body: bytes) -> None:
        self.stdin.write(body + b"\n")
        self.stdin.flush()

    def initialize(self) -> None:
        self.send(
            line(
                {
                    "jsonrpc": "2.0",
                    "id": "init",
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "1"},
                    },
                }
            )
        )
        self.answer_to("init", within=30)
        self.send(line({"jsonrpc": "2.0", "method": "notifications/initialized"}))

    def send_call(self, request_id: str, tool: str, arguments: dict[str, Any]) -> None:
        params = {"name": tool, "arguments": arguments}
        self.send(line({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}))

    def call(
        self, request_id: str, tool: str, arguments: dict[str, Any], within: float = 30
    ) -> dict[str, Any]:
        """A tools/call answered without error: its structured result."""
        self.send_call(request_id, tool, arguments)
        answer = self.answer_to(request_id, within)
        result = answer["result"]
        assert not result.get("isError"), result
        data = result.get("structuredContent") or json.loads(result["content"][0]["text"])
        return dict(data)

    def answer_to(self, request_id: Any, within: float) -> dict[str, Any]:
        """The answer carrying `request_id`; answers to other ids that arrive meanwhile are kept for later."""
        deadline = time.monotonic() + within
        while json.dumps(request_id) not in self.early:
            try:
                raw = self.answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no answer to id {request_id!r} within {within}s")
            self.seen.append(raw)
            answer = json.loads(raw)
            assert answer["jsonrpc"] == "2.0", raw[:200]
            if "id" in answer:
                self.early[json.dumps(answer["id"])] = answer
        return dict(self.early.pop(json.dumps(request_id)))
