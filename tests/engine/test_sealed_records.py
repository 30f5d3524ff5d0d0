"""Fault records keep no plaintext secret: their fields are sealed with the journal's key, every
process holding that key can revert from them, and one without it is told what to do."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from chaos_mcp.engine.journal import ExperimentRow, Journal
from chaos_mcp.engine.sealing import KEY_ENV
from chaos_mcp.faults.base import FaultError, fault_from_record

DSN = "postgresql://admin:pa55-in-the-record@127.0.0.1:5432/app"
RECORD = {
    "kind": "postgres.block_connections",
    "module": "chaos_mcp.faults.postgres",
    "fields": {
        "dsn": DSN,
        "database": "app",
        "mode": "disallow",
        "terminate_existing": True,
        "expires_at": 1.0,
    },
}


def written(path: Path) -> Journal:
    journal = Journal(f"sqlite:///{path}")
    now = time.time()
    journal.create_experiment(
        ExperimentRow("e1", "db", "test", "db_connection_loss", "injected", now, now, {})
    )
    journal.write_ahead("e1-f0", "e1", 0, RECORD, now + 60)
    return journal


def test_the_record_on_disk_is_sealed_and_reads_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    journal = written(tmp_path / "journal.sqlite3")
    journal.close()
    with sqlite3.connect(tmp_path / "journal.sqlite3") as conn:
        stored = str(conn.execute("SELECT record FROM faults").fetchall())
    assert "pa55-in-the-record" not in stored and "sealed" in stored
    key = tmp_path / "journal.sqlite3.key"
    assert key.stat().st_mode & 0o777 == 0o600
    other_process = Journal(f"sqlite:///{tmp_path / 'journal.sqlite3'}")  # the same key file beside it
    assert other_process.faults("e1")[0].record == RECORD
    other_process.close()


def test_a_process_without_the_key_is_told_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    written(tmp_path / "journal.sqlite3").close()
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    journal = Journal(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    row = journal.faults("e1")[0]  # reports still read the row: kind and status
    assert row.record["kind"] == "postgres.block_connections" and row.status == "pending"
    with pytest.raises(FaultError, match=KEY_ENV):
        fault_from_record(row.record)
    journal.close()
    (tmp_path / "journal.sqlite3.key").unlink()
    monkeypatch.delenv(KEY_ENV)
    journal = Journal(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    with pytest.raises(FaultError, match=r"key file .* is missing"):
        fault_from_record(journal.faults("e1")[0].record)
    journal.close()


def test_the_key_from_the_environment_is_shared_and_no_key_file_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    written(tmp_path / "journal.sqlite3").close()
    assert not (tmp_path / "journal.sqlite3.key").exists()
    journal = Journal(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    assert journal.faults("e1")[0].record == RECORD
    journal.close()
