"""Data faults on a PostgreSQL schedule database, with write-ahead row images and exact restore.

    data.corrupt_assignment   dangling person, impossible block, missing role, shift onto an absence
    data.duplicate_shift      overlapping assignments for one person and block
    data.missing_credential   a credential that assignments depend on, removed or expired

`prepare()` plans the change in one snapshot and keeps, in the fault's fields (and so in the
journal before `inject()`): the full image of every row before and after, the keys of rows
to be inserted, each touched row's md5 and each touched table's checksum. `inject()` applies
it all in one transaction. `revert()` restores row by row; rows the application changed in
the meantime are left alone and raised as `RestoreConflict` after everything else is
restored (also kept in `conflicts`). Only the record is needed, in any process.
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from typing import Any, ClassVar

import anyio.to_thread
import psycopg

from chaos_mcp.data import plan, restorable, rows
from chaos_mcp.data.db import Conn, connect, safe
from chaos_mcp.data.errors import CommitUnknown, DataError, NotApplied, RestoreConflict
from chaos_mcp.data.mapping import Mapping, as_config, check_live, resolve
from chaos_mcp.data.rows import Change
from chaos_mcp.faults.base import Fault, Reach, register_fault
from chaos_mcp.secrets import redact_url


@dataclasses.dataclass
class _DataFault(Fault):
    reach: ClassVar[Reach] = "database"
    target_name: str
    dsn: str
    mapping: dict[str, dict[str, str]]
    rows: int
    kinds: list[str] = dataclasses.field(default_factory=list)
    seed: int = 0
    rotations: list[str] | None = None
    blocks: list[str] | None = None
    tag: str = "chaos"
    # filled by prepare(), journaled before inject()
    changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    row_md5: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    table_checksums: dict[str, str] = dataclasses.field(default_factory=dict)
    conflicts: list[dict[str, str]] = dataclasses.field(default_factory=list)

    def _plan(self, conn: Conn, mapping: Mapping, scope: plan.Scope, rng: random.Random) -> list[Change]:
        raise NotImplementedError

    def _mapping(self) -> Mapping:
        return resolve(self.mapping, f"{self.kind} on {self.target_name!r}")

    async def prepare(self) -> None:
        if not self.changes:
            await anyio.to_thread.run_sync(self._prepare)

    def _prepare(self) -> None:
        mapping = self._mapping()
        with connect(self.dsn) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            check_live(conn, mapping, f"{self.kind} on {self.target_name!r}")
            scope = plan.Scope(
                tuple(self.rotations) if self.rotations is not None else None,
                plan.resolve_blocks(conn, mapping, self.blocks),
            )
            changes = self._plan(conn, mapping, scope, random.Random(self.seed))
            restorable.check(conn, mapping, changes, f"{self.kind} on {self.target_name!r}")
            touched = sorted({c["table"] for c in changes})
            self.row_md5 = {
                t: rows.row_md5s(
                    conn,
                    mapping[t],
                    rows.meta(conn, mapping[t]),
                    [c["key"] for c in changes if c["table"] == t],
                )
                for t in touched
            }
            self.table_checksums = {t: rows.table_checksum(conn, mapping[t]) for t in touched}
            conn.commit()  # sequences advanced for inserted keys stay reserved
        self.changes = [dict(c) for c in changes]

    async def inject(self) -> None:
        await anyio.to_thread.run_sync(self._inject)

    def _inject(self) -> None:
        try:
            with connect(self.dsn) as conn:
                rows.apply(conn, self._mapping(), self._changes())
        except (NotApplied, CommitUnknown):
            raise
        except DataError as exc:  # no connection, or the record's tables are gone: nothing was written
            raise NotApplied(f"{exc}; nothing was changed") from None

    async def revert(self) -> None:
        await anyio.to_thread.run_sync(self._revert)

    def _revert(self) -> None:
        if not self.changes:
            return  # never prepared: nothing can have been written
        try:
            with connect(self.dsn) as conn:
                result = rows.restore(conn, self._mapping(), self._changes(), self.row_md5)
        except psycopg.Error as exc:
            raise DataError(
                f"{self.kind} on {self.target_name!r}: PostgreSQL refused the restore "
                f"({type(exc).__name__}: {safe(exc, self.dsn).splitlines()[0] if str(exc).strip() else ''}); "
                "the rows are as the fault left them"
            ) from None
        self.conflicts = result.conflicts
        if result.conflicts:
            raise RestoreConflict(f"{self.kind} on {self.target_name!r}", result.conflicts, result.restored)

    async def verify(self) -> bool:
        return await anyio.to_thread.run_sync(self._verify)

    def _verify(self) -> bool:
        """True while any row still holds what the fault wrote (a deleted row: while it is absent)."""
        mapping = self._mapping()
        with connect(self.dsn) as conn:
            for name in sorted({c["table"] for c in self._changes()}):
                t = mapping[name]
                group = [c for c in self._changes() if c["table"] == name]
                now = rows.images(conn, t, rows.meta(conn, t), [c["key"] for c in group])
                if any(rows.same(now.get(c["key"]), c["after"]) for c in group):
                    return True
        return False

    def _changes(self) -> list[Change]:
        return [Change(**c) for c in self.changes]  # type: ignore[typeddict-item]

    def describe(self) -> str:
        where = f"schedule target {self.target_name!r} ({redact_url(self.dsn)})"
        kinds = f" [{', '.join(self.kinds)}]" if self.kinds else ""
        return f"{self.kind}: {self.rows} row(s){kinds} in {where}; restored row by row from journaled images"


@register_fault
@dataclasses.dataclass
class CorruptAssignment(_DataFault):
    kind: ClassVar[str] = "data.corrupt_assignment"

    def _plan(self, conn: Conn, mapping: Mapping, scope: plan.Scope, rng: random.Random) -> list[Change]:
        kinds = self.kinds or list(plan.CORRUPT_KINDS)
        return plan.corrupt_assignment(conn, mapping, scope, self.rows, kinds, rng)


@register_fault
@dataclasses.dataclass
class DuplicateShift(_DataFault):
    kind: ClassVar[str] = "data.duplicate_shift"

    def _plan(self, conn: Conn, mapping: Mapping, scope: plan.Scope, rng: random.Random) -> list[Change]:
        return plan.duplicate_shift(conn, mapping, scope, self.rows, rng, self.tag)


@register_fault
@dataclasses.dataclass
class MissingCredential(_DataFault):
    kind: ClassVar[str] = "data.missing_credential"

    def _plan(self, conn: Conn, mapping: Mapping, scope: plan.Scope, rng: random.Random) -> list[Change]:
        kinds = self.kinds or list(plan.CREDENTIAL_KINDS)
        return plan.missing_credential(conn, mapping, scope, self.rows, kinds, rng)


def seed_of(text: str) -> int:
    """A stable seed from an experiment id."""
    return zlib.crc32(text.encode())


__all__ = ["CorruptAssignment", "DataError", "DuplicateShift", "MissingCredential", "as_config", "seed_of"]
