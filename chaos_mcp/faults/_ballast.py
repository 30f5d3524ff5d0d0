"""Detached memory ballast: holds N MiB resident until its deadline, then exits by itself.

Started by `process.memory_ballast` as `python -m chaos_mcp.faults._ballast --tag TAG` with
`{"size_mb": N, "expires_at": EPOCH}` on stdin. It volunteers to be the OOM killer's first choice.
"""

from __future__ import annotations

import contextlib

from chaos_mcp.faults import _detached

PAGE = 4096


def hold(size_mb: int) -> bytearray:
    """Allocate and touch every page, so the memory is resident, not just reserved."""
    ballast = bytearray(size_mb * 1024 * 1024)
    ballast[::PAGE] = b"\x01" * (len(ballast) // PAGE)
    return ballast


def main() -> None:
    _detached.tag_from_argv()
    payload, channel = _detached.become_worker()
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as adj:
        adj.write("1000")
    try:
        ballast = hold(int(payload["size_mb"]))
    except MemoryError:
        _detached.report_error(channel, f"could not allocate {payload['size_mb']} MiB")
    _detached.report_ready(channel)
    _detached.sleep_until(float(payload["expires_at"]))
    del ballast


if __name__ == "__main__":
    main()
