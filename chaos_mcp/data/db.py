"""Connections to the schedule database; errors come back as DataError without credentials."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from chaos_mcp.data.errors import DataError
from chaos_mcp.secrets import redact_text, redact_url, secrets_in_url

CONNECT_TIMEOUT = 3
APPLICATION = "chaos-mcp-data"
Conn = psycopg.Connection[Any]


@contextmanager
def connect(dsn: str, *, autocommit: bool = False) -> Iterator[Conn]:
    """A connection that is closed on exit (a transaction left open is rolled back)."""
    try:
        conn = psycopg.connect(
            dsn, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT, application_name=APPLICATION
        )
    except psycopg.Error as exc:
        raise DataError(f"cannot connect to {redact_url(dsn)}: {safe(exc, dsn)}") from None
    with conn:
        yield conn


def safe(exc: BaseException, dsn: str) -> str:
    """An exception's text with the DSN's secrets removed."""
    return redact_text(str(exc).strip(), secrets_in_url(dsn))
