"""Detached lock holder: ACCESS EXCLUSIVE on one table until a deadline, then exit.

Started by `postgres.lock_table` as `python -m chaos_mcp.faults._lock_holder --tag TAG` with
`{"conninfo", "schema", "table", "expires_at", "lock_timeout_ms"}` on stdin (the conninfo carries
the tag as application_name). Besides its own deadline, the session asks the server to end it
shortly after the deadline (idle_in_transaction_session_timeout), so the lock ends on time even
if this process is stopped or frozen.
"""

from __future__ import annotations

import contextlib
import time

import psycopg
from psycopg import sql

from chaos_mcp.faults import _detached
from chaos_mcp.secrets import redact_text

SERVER_GRACE_MS = 250


def main() -> None:
    _detached.tag_from_argv()
    payload, channel = _detached.become_worker()
    remaining_ms = int((float(payload["expires_at"]) - time.time()) * 1000)
    if remaining_ms <= 0:
        _detached.report_error(channel, "the deadline passed before the lock could be taken")
    try:
        conn = psycopg.connect(payload["conninfo"])
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(int(payload["lock_timeout_ms"]))))
        conn.execute(
            sql.SQL("SET idle_in_transaction_session_timeout = {}").format(
                sql.Literal(remaining_ms + SERVER_GRACE_MS)
            )
        )
        table = sql.Identifier(payload["schema"], payload["table"])
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
    except psycopg.Error as exc:
        _detached.report_error(channel, f"could not lock the table: {redact_text(str(exc).strip())}")
    _detached.report_ready(channel)
    _detached.sleep_until(float(payload["expires_at"]))
    with contextlib.suppress(psycopg.Error):
        conn.rollback()
        conn.close()


if __name__ == "__main__":
    main()
