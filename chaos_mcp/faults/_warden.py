"""Detached warden: reverts one fault at its deadline, whatever happened to the MCP server.

For faults the target system cannot end by itself (a database's connection setting, Redis's
maxmemory). Started as `python -m chaos_mcp.faults._warden --tag TAG` with
`{"record": <the fault's journal record>, "expires_at": EPOCH}` on stdin; the fault's own revert
stops the warden when it runs first. Reverting is idempotent, so a race between the two is harmless.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from chaos_mcp.faults import _detached
from chaos_mcp.faults.base import FaultError, fault_from_record

ATTEMPTS = 5


def revert_with_retries(record: dict[str, Any]) -> None:
    for attempt in range(ATTEMPTS):
        try:
            anyio.run(fault_from_record(record).revert)
            return
        except (FaultError, OSError):
            time.sleep(min(2**attempt, 10))


def main() -> None:
    _detached.tag_from_argv()
    payload, channel = _detached.become_worker()
    _detached.report_ready(channel)
    _detached.sleep_until(float(payload["expires_at"]))
    revert_with_retries(payload["record"])


if __name__ == "__main__":
    main()
