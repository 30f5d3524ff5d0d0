"""The journal: an append-only, timestamped record of every experiment, durable first.

Tables:
    experiments  one row per experiment: its design and current state (a projection)
    events       append-only: every step, measurement, decision and error
    faults       write-ahead revert records: written *before* a fault touches anything
    holds        what each active experiment holds: target names and physical resource keys
                 (`resource:pg:<sysid>/db:<oid>` …; see chaos_mcp.resources), primary key = key
    control      server-wide switches, such as the kill switch's armed state

SQLite (default, WAL mode) or PostgreSQL by URL. State changes are compare-and-set, so
two server processes sharing one journal never both move an experiment.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos_mcp.engine.sealing import UNREADABLE, Sealer, SealError, key_path_for
from chaos_mcp.secrets import redact_text, secrets_in_url

if TYPE_CHECKING:
    import psycopg


_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY, target TEXT NOT NULL, environment TEXT NOT NULL, scenario TEXT NOT NULL,
    state TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    design TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq {autoinc}, experiment_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_experiment ON events (experiment_id, seq);
CREATE TABLE IF NOT EXISTS faults (
    id TEXT PRIMARY KEY, experiment_id TEXT NOT NULL, position INTEGER NOT NULL, record TEXT NOT NULL,
    status TEXT NOT NULL, deadline DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS faults_by_status ON faults (status);
CREATE TABLE IF NOT EXISTS holds (
    target TEXT PRIMARY KEY, experiment_id TEXT NOT NULL, acquired_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS control (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
"""

ACTIVE_FAULT_STATUSES = ("pending", "injected")
IN_FORCE_STATUSES = ("pending", "injected", "revert_failed")
"""A fault in one of these may still act on the system: its revert is owed (and retried)."""
RESOURCE_PREFIX = "resource:"
"""Hold keys of physical resources (chaos_mcp.resources) start with this; target names cannot."""
INACTIVE_STATES = ("aborted", "rolled_back", "reported", "failed", "cancelled")


# A hold outlives its experiment while any of its faults may still be in force (a failed revert):
# the target is not free until `recover` (or a retry) has really reverted it.
_SETTLED = (
    " AND NOT EXISTS (SELECT 1 FROM faults WHERE faults.experiment_id = holds.experiment_id"
    f" AND faults.status IN ({', '.join(repr(s) for s in IN_FORCE_STATUSES)}))"
)


class JournalError(Exception):
    """The journal cannot be opened or written; the message says which and why."""


@dataclass(frozen=True)
class ExperimentRow:
    id: str
    target: str
    environment: str
    scenario: str
    state: str
    created_at: float
    updated_at: float
    design: dict[str, Any]


@dataclass(frozen=True)
class Event:
    seq: int
    experiment_id: str
    ts: float
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class FaultRow:
    id: str
    experiment_id: str
    position: int
    record: dict[str, Any]
    status: str
    deadline: float


class _Backend(ABC):
    placeholder = "?"
    autoinc = "INTEGER PRIMARY KEY AUTOINCREMENT"

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    @abstractmethod
    def transaction(self) -> Any: ...

    @abstractmethod
    def close(self) -> None: ...

    def lock_schema(self) -> None:  # noqa: B027 - SQLite's BEGIN IMMEDIATE already serialises
        """Serialise schema creation between processes (inside a transaction)."""

    def lock_holds(self) -> None:  # noqa: B027 - SQLite's BEGIN IMMEDIATE already serialises
        """Serialise taking holds between processes (inside a transaction)."""


def _is_conflict(exc: BaseException) -> bool:
    """A constraint violation: the caller's compare-and-set logic handles it, it is not a failure."""
    return "integrity" in type(exc).__name__.lower() or "unique" in str(exc).lower()


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Database errors become a JournalError a person can act on (disk full, read-only, damaged file)."""
    try:
        yield
    except JournalError:
        raise
    except Exception as exc:
        if _is_conflict(exc) or not _is_database_error(exc):
            raise
        reason = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise JournalError(f"the journal could not be {what}: {reason}{_hint(reason)}") from None


def _hint(reason: str) -> str:
    """What to do next, for the causes an operator meets."""
    text = reason.lower()
    if "full" in text or "no space" in text:
        return " (free disk space, then retry)"
    if "readonly" in text or "read-only" in text or "unable to open" in text or "permission" in text:
        return " (the file, its directory and its mount must be writable by this user)"
    if "malformed" in text or "not a database" in text:
        return " (the file is damaged: move it and its -wal/-shm files aside and restore a backup)"
    return ""


def _is_database_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error | OSError):
        return True
    module = type(exc).__module__
    return module.startswith("psycopg") and type(exc).__name__ != "ProgrammingError"


class _SQLite(_Backend):
    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._switch_to_wal()
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        if path != ":memory:":
            Path(path).chmod(0o600)

    def _switch_to_wal(self) -> None:
        """Switching a new file to WAL takes an exclusive lock that SQLite's busy handler does not wait
        for, so two processes opening a fresh journal at once retry instead of failing."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock, _translated("written"):
            return self._conn.execute(sql, tuple(params)).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock, _translated("read"):
            return [dict(row) for row in self._conn.execute(sql, tuple(params)).fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            with _translated("written"):
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._conn.in_transaction:  # SQLite may already have rolled back (disk full)
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise
            with _translated("written"):
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error:
                    if self._conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Postgres(_Backend):
    placeholder = "%s"
    autoinc = "BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self._lock = threading.RLock()
        self._conn: psycopg.Connection[dict[str, Any]] = psycopg.connect(
            url, autocommit=True, row_factory=dict_row, connect_timeout=5
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock, _translated("written"), self._conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]
            return cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock, _translated("read"), self._conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]
            return list(cur.fetchall())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, _translated("written"), self._conn.transaction():
            yield

    def lock_schema(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(7274261)")

    def lock_holds(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(7274262)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _open_backend(url: str) -> _Backend:
    if url.startswith("sqlite:///"):
        return _SQLite(url.removeprefix("sqlite:///") or ":memory:")
    if url == "sqlite://" or url == "sqlite:///:memory:":
        return _SQLite(":memory:")
    if url.startswith(("postgresql://", "postgres://")):
        return _Postgres(url)
    scheme = url.split("://", 1)[0] if "://" in url else "a value that is not a URL"
    raise JournalError(f"journal.url must start with sqlite:/// or postgresql://, got {scheme!r}")


def require_existing(url: str) -> None:
    """Operator commands act on a journal that a server wrote: a missing SQLite file is a wrong path
    (or a wrong state dir), not an empty journal to create."""
    if not url.startswith("sqlite:///"):
        return
    path = url.removeprefix("sqlite:///")
    if path not in ("", ":memory:") and not Path(path).exists():
        raise JournalError(
            f"the journal {path} does not exist (nothing has run with this configuration; `serve` creates "
            "it). Check journal.url in chaos.toml, --config, or CHAOS_MCP_STATE_DIR."
        )


class Journal:
    def __init__(self, url: str) -> None:
        try:
            self._db = _open_backend(url)
            with self._db.transaction():
                self._db.lock_schema()
                for statement in _SCHEMA.format(autoinc=self._db.autoinc).split(";"):
                    if statement.strip():
                        self._db.execute(statement)
        except JournalError:
            raise
        except Exception as exc:  # sqlite3, psycopg or OS errors: all mean "cannot open"
            detail = redact_text(f"{type(exc).__name__}: {exc}", secrets_in_url(url))
            advice = _hint(detail).strip(" ()") or "check journal.url in chaos.toml"
            raise JournalError(f"cannot open the journal: {detail}; {advice}.") from None
        self.url = url
        self._sealer = Sealer(key_path_for(url))

    def close(self) -> None:
        self._db.close()

    # ---- experiments
    def create_experiment(self, row: ExperimentRow) -> None:
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO experiments"
                " (id, target, environment, scenario, state, created_at, updated_at, design)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.target,
                    row.environment,
                    row.scenario,
                    row.state,
                    row.created_at,
                    row.updated_at,
                    json.dumps(row.design),
                ),
            )
            self._append(row.id, "designed", {"state": row.state})

    def get_experiment(self, experiment_id: str) -> ExperimentRow | None:
        rows = self._db.query("SELECT * FROM experiments WHERE id = ?", (experiment_id,))
        return _experiment(rows[0]) if rows else None

    def list_experiments(
        self,
        state: str | None = None,
        limit: int = 50,
        since: float | None = None,
        until: float | None = None,
    ) -> list[ExperimentRow]:
        clauses: list[str] = []
        params: list[Any] = []
        if state:
            clauses.append("state = ?")
            params.append(state)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("created_at <= ?")
            params.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.query(
            f"SELECT * FROM experiments {where} ORDER BY created_at DESC LIMIT ?", (*params, limit)
        )
        return [_experiment(r) for r in rows]

    def transition(
        self, experiment_id: str, expected: Sequence[str], new_state: str, data: dict[str, Any]
    ) -> bool:
        """Move to `new_state` only if the current state is one of `expected`; log the event.

        Leaving the active states frees the experiment's targets (one active experiment per target).
        """
        marks = ", ".join("?" for _ in expected)
        with self._db.transaction():
            changed = self._db.execute(
                f"UPDATE experiments SET state = ?, updated_at = ? WHERE id = ? AND state IN ({marks})",
                (new_state, time.time(), experiment_id, *expected),
            )
            if changed:
                self._append(experiment_id, new_state, data)
                if new_state in INACTIVE_STATES:
                    self.release_holds_of(experiment_id)
        return bool(changed)

    # ---- events
    def append(self, experiment_id: str, kind: str, data: dict[str, Any]) -> None:
        self._append(experiment_id, kind, data)

    def _append(self, experiment_id: str, kind: str, data: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO events (experiment_id, ts, kind, data) VALUES (?, ?, ?, ?)",
            (experiment_id, time.time(), kind, json.dumps(data, default=str)),
        )

    def events(self, experiment_id: str, kinds: Sequence[str] = ()) -> list[Event]:
        sql, params = "SELECT * FROM events WHERE experiment_id = ?", [experiment_id]
        if kinds:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params += list(kinds)
        rows = self._db.query(sql + " ORDER BY seq", params)
        return [Event(r["seq"], r["experiment_id"], r["ts"], r["kind"], json.loads(r["data"])) for r in rows]

    # ---- write-ahead fault records
    def write_ahead(
        self,
        fault_id: str,
        experiment_id: str,
        position: int,
        record: dict[str, Any],
        deadline: float,
        status: str = "pending",
    ) -> None:
        """`status` is 'pending' before inject(), or 'not_injected' for a fault refused in prepare()."""
        try:
            sealed = self._sealer.seal(record)
        except (SealError, OSError) as exc:
            raise JournalError(f"the fault record could not be sealed: {exc}") from None
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO faults (id, experiment_id, position, record, status, deadline, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (fault_id, experiment_id, position, json.dumps(sealed), status, deadline, time.time()),
            )
            self._append(
                experiment_id, "fault_written_ahead", {"fault_id": fault_id, "kind": record.get("kind")}
            )

    def set_fault_status(self, fault_id: str, status: str) -> None:
        self._db.execute(
            "UPDATE faults SET status = ?, updated_at = ? WHERE id = ?", (status, time.time(), fault_id)
        )

    def faults(self, experiment_id: str) -> list[FaultRow]:
        rows = self._db.query(
            "SELECT * FROM faults WHERE experiment_id = ? ORDER BY position", (experiment_id,)
        )
        return [self._fault(r) for r in rows]

    def active_faults(self) -> list[FaultRow]:
        rows = self._db.query(
            "SELECT * FROM faults WHERE status IN ('pending', 'injected') ORDER BY updated_at", ()
        )
        return [self._fault(r) for r in rows]

    def _fault(self, row: dict[str, Any]) -> FaultRow:
        raw = json.loads(row["record"])
        try:
            record = self._sealer.open(raw)
        except (SealError, OSError) as exc:  # reports still read it; rebuilding the fault says why not
            record = {**raw, UNREADABLE: f"fault {row['id']}: {exc}"}
        return FaultRow(
            id=row["id"],
            experiment_id=row["experiment_id"],
            position=row["position"],
            record=record,
            status=row["status"],
            deadline=row["deadline"],
        )

    def faults_with_status(self, statuses: Sequence[str], since: float | None = None) -> list[FaultRow]:
        """Faults in any of `statuses` (last changed at or after `since`, when given)."""
        marks = ", ".join("?" for _ in statuses)
        sql, params = f"SELECT * FROM faults WHERE status IN ({marks})", list[Any](statuses)
        if since is not None:
            sql += " AND updated_at >= ?"
            params.append(since)
        return [self._fault(r) for r in self._db.query(sql + " ORDER BY updated_at", params)]

    # ---- one active experiment per target
    def acquire_hold(self, target: str, experiment_id: str) -> str | None:
        """Take the target for this experiment; return the holder's id if someone else has it."""
        try:
            with self._db.transaction():
                rows = self._db.query("SELECT experiment_id FROM holds WHERE target = ?", (target,))
                if rows and rows[0]["experiment_id"] != experiment_id:
                    return str(rows[0]["experiment_id"])
                if not rows:
                    self._db.execute(
                        "INSERT INTO holds (target, experiment_id, acquired_at) VALUES (?, ?, ?)",
                        (target, experiment_id, time.time()),
                    )
        except Exception as exc:
            if "unique" not in str(exc).lower() and "integrity" not in type(exc).__name__.lower():
                raise
            rows = self._db.query("SELECT experiment_id FROM holds WHERE target = ?", (target,))
            return str(rows[0]["experiment_id"]) if rows else "another experiment"
        return None

    def acquire_holds(self, keys: Sequence[str], experiment_id: str) -> tuple[str, str] | None:
        """Take every key for this experiment, or none: returns (key held, holder) on a conflict.

        A key conflicts with another experiment's key that is the same or contains it or is
        contained in it (`a` and `a/b`): a Redis server and one of its databases, a cluster and one
        of its databases. Keys of one experiment never conflict with each other. Taking the holds is
        serialised across processes (SQLite's write lock; an advisory lock on PostgreSQL), so two
        servers on one journal can never both take overlapping keys.
        """
        with self._db.transaction():
            self._db.lock_holds()
            others = self._db.query(
                "SELECT target, experiment_id FROM holds WHERE experiment_id <> ?", (experiment_id,)
            )
            stale: set[str] = set()
            for key in keys:
                for row in others:
                    held, holder = str(row["target"]), str(row["experiment_id"])
                    if holder in stale or not (
                        held == key or held.startswith(key + "/") or key.startswith(held + "/")
                    ):
                        continue
                    if not self._stale(holder):
                        return held, holder
                    stale.add(holder)
            for holder in stale:
                self._db.execute("DELETE FROM holds WHERE experiment_id = ?", (holder,))
            mine = {
                r["target"]
                for r in self._db.query("SELECT target FROM holds WHERE experiment_id = ?", (experiment_id,))
            }
            for key in dict.fromkeys(keys):
                if key not in mine:
                    self._db.execute(
                        "INSERT INTO holds (target, experiment_id, acquired_at) VALUES (?, ?, ?)",
                        (key, experiment_id, time.time()),
                    )
        return None

    def release_hold(self, target: str, experiment_id: str) -> None:
        self._db.execute(
            "DELETE FROM holds WHERE target = ? AND experiment_id = ?" + _SETTLED, (target, experiment_id)
        )

    def release_holds_of(self, experiment_id: str) -> None:
        """Nothing of this experiment is active any more: its targets are free (none may be in force)."""
        self._db.execute("DELETE FROM holds WHERE experiment_id = ?" + _SETTLED, (experiment_id,))

    def _in_force(self, experiment_id: str) -> bool:
        marks = ", ".join("?" for _ in IN_FORCE_STATUSES)
        rows = self._db.query(
            f"SELECT count(*) AS n FROM faults WHERE experiment_id = ? AND status IN ({marks})",
            (experiment_id, *IN_FORCE_STATUSES),
        )
        return bool(rows and int(rows[0]["n"]))

    def _stale(self, holder: str) -> bool:
        """A hold whose experiment is over and whose faults are all reverted."""
        rows = self._db.query("SELECT state FROM experiments WHERE id = ?", (holder,))
        over = not rows or str(rows[0]["state"]) in INACTIVE_STATES
        return over and not self._in_force(holder)

    def holds(self) -> dict[str, str]:
        return {r["target"]: r["experiment_id"] for r in self._db.query("SELECT * FROM holds", ())}

    # ---- control switches
    def get_control(self, key: str) -> str | None:
        rows = self._db.query("SELECT value FROM control WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_control(self, key: str, value: str) -> None:
        with self._db.transaction():
            self._db.execute("DELETE FROM control WHERE key = ?", (key,))
            self._db.execute(
                "INSERT INTO control (key, value, updated_at) VALUES (?, ?, ?)", (key, value, time.time())
            )


def _experiment(row: dict[str, Any]) -> ExperimentRow:
    return ExperimentRow(
        id=row["id"],
        target=row["target"],
        environment=row["environment"],
        scenario=row["scenario"],
        state=row["state"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        design=json.loads(row["design"]),
    )
