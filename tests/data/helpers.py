"""Helpers for the data chaos tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.data.mapping import default_mapping, resolve
from chaos_mcp.data.rows import table_checksum
from chaos_mcp.faults.base import fault_from_record
from chaos_mcp.faults.data import _DataFault

REPO = Path(__file__).resolve().parents[2]
TABLES = ("people", "blocks", "services", "assignments", "absences", "credentials")
REVERT_FROM_RECORD = (
    "import json, sys, anyio\n"
    "from chaos_mcp.faults import fault_from_record\n"
    "for record in json.loads(sys.stdin.read()):\n"
    "    anyio.run(fault_from_record(record).revert)\n"
)


def data_fault(kind: str, dsn: str, rows: int = 3, **fields: Any) -> _DataFault:
    record = {
        "kind": f"data.{kind}",
        "fields": {"target_name": "schedule", "dsn": dsn, "mapping": default_mapping(), "rows": rows}
        | fields,
    }
    fault = fault_from_record(record)
    assert isinstance(fault, _DataFault)
    return fault


def target(
    dsn: str, mapping: dict[str, dict[str, str]] | None = None, source: str = "postgres"
) -> ScheduleTarget:
    return ScheduleTarget(kind="schedule", environment="test", source=source, dsn=dsn, mapping=mapping)


def checksums(db: str | psycopg.Connection[Any], tables: tuple[str, ...] = TABLES) -> dict[str, str]:
    """Whole-table checksums, through a DSN or an open (autocommit) connection."""
    mapping = resolve({})
    if isinstance(db, str):
        with psycopg.connect(db) as conn:
            return {t: table_checksum(conn, mapping[t]) for t in tables}
    return {t: table_checksum(db, mapping[t]) for t in tables}


def revert_in_fresh_process(*records: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Revert in a new interpreter that knows nothing but the journal records."""
    return subprocess.run(
        [sys.executable, "-c", REVERT_FROM_RECORD],
        input=json.dumps(list(records)),
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=60,
        check=False,
    )
