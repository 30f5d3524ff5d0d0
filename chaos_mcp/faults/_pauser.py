"""Detached Redis pauser: keeps every client paused until a deadline, in short renewable slices.

Redis postpones every command during `CLIENT PAUSE … ALL`, `CLIENT UNPAUSE` included, so one long
pause could not be lifted early. Instead this helper issues `CLIENT PAUSE <slice> ALL` and keeps
the next renewal already queued on its connection; Redis runs that renewal first when a slice
ends, before any other client, so the pause has no gaps. When the helper stops (deadline, revert,
or death) its connection closes, the queued renewal is dropped, and the pause ends within one
slice. Started by `redis.client_pause` as `python -m chaos_mcp.faults._pauser --tag TAG` with
`{"url", "expires_at", "slice_ms"}` on stdin.
"""

from __future__ import annotations

import math
import time

import redis
from redis.connection import AbstractConnection

from chaos_mcp.faults import _detached
from chaos_mcp.secrets import redact_text, secrets_in_url

QUEUED = 2  # one slice running, one renewal waiting


def renew(conn: AbstractConnection, expires_at: float, slice_ms: int) -> bool:
    """Queue one more slice, never reaching past the deadline; False once the deadline is here."""
    remaining_ms = math.floor((expires_at - time.time()) * 1000)
    if remaining_ms <= 0:
        return False
    conn.send_command("CLIENT", "PAUSE", min(slice_ms, remaining_ms), "ALL")  # type: ignore[no-untyped-call]
    return True


def main() -> None:
    _detached.tag_from_argv()
    payload, channel = _detached.become_worker()
    url, expires_at, slice_ms = str(payload["url"]), float(payload["expires_at"]), int(payload["slice_ms"])
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=None)
    try:
        conn = client.connection_pool.get_connection()
        if not all(renew(conn, expires_at, slice_ms) for _ in range(QUEUED)):
            _detached.report_error(channel, "the deadline passed before Redis could be paused")
        conn.read_response()
    except redis.RedisError as exc:
        message = redact_text(str(exc), secrets_in_url(url))
        _detached.report_error(channel, f"could not pause Redis: {message}")
    _detached.report_ready(channel)
    try:  # one renewal always waits in Redis's queue; at the deadline, hang up and drop it
        while renew(conn, expires_at, slice_ms):
            conn.read_response()
    except redis.RedisError:
        pass  # the server went away or killed us: the pause ends by itself within a slice
    finally:
        conn.disconnect()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
