"""Helpers shared by the fault tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parents[2]
REVERT_FROM_RECORD = (
    "import json, sys, anyio\n"
    "from chaos_mcp.faults import fault_from_record\n"
    "anyio.run(fault_from_record(json.loads(sys.stdin.read())).revert)\n"
)


def revert_in_fresh_process(record: dict[str, object]) -> None:
    """Revert a fault in a new interpreter that knows nothing but the journal record."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", REVERT_FROM_RECORD],
        input=json.dumps(record),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def soon(seconds: float) -> float:
    """A deadline (epoch seconds) `seconds` from now."""
    return time.time() + seconds


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> float:
    """Poll an async predicate until it is true (bounded); returns the time it took."""
    started = time.monotonic()
    with anyio.fail_after(within):
        while True:
            if await check():
                return time.monotonic() - started
            await anyio.sleep(0.02)
