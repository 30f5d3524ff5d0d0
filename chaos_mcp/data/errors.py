"""Errors of data chaos. One root, under the fault contract's error so the engine handles them alike.

FaultError (chaos_mcp.faults.base)
└── DataError          data chaos cannot go on; the message says what was wrong and what to do
    ├── NotApplied     refused before any row changed (also a NotInjected: nothing to revert)
    ├── CommitUnknown  the injecting commit's outcome is unknown: treat the fault as injected
    ├── MappingError   the table/column mapping does not match the database; `problems` names each
    └── RestoreConflict rows the application changed during the window were left alone;
                        `conflicts` lists each (table, key, what the fault did, why it was left)
"""

from __future__ import annotations

from chaos_mcp.faults.base import FaultError, NotInjected


class DataError(FaultError):
    """Data chaos cannot proceed; the message says what was wrong and what to do next."""


class NotApplied(DataError, NotInjected):
    """The fault's transaction was refused or rolled back: no row changed."""


class CommitUnknown(DataError):
    """The connection broke while committing: the rows may or may not have changed."""


class MappingError(DataError):
    def __init__(self, where: str, problems: list[str]) -> None:
        self.problems = problems
        lines = [
            f"{where}: the table/column mapping does not match the database ({len(problems)} problem(s)):"
        ]
        lines += [f"- {p}" for p in problems]
        lines.append(
            "Nothing was touched. Fix [targets.NAME.mapping] in chaos.toml (logical name = physical name; "
            "see docs/data-schema.md) or create the tables with chaos_mcp.data.schema.migrate."
        )
        super().__init__("\n".join(lines))


class RestoreConflict(DataError):
    def __init__(self, where: str, conflicts: list[dict[str, str]], restored: int) -> None:
        self.conflicts = conflicts
        lines = [
            f"{where}: restored {restored} row(s) exactly, but {len(conflicts)} row(s) were changed by "
            "someone else while the fault was active and were left as they are (never overwritten):"
        ]
        lines += [
            f"- {c['table']} {c['key']}: {c['reason']} (the fault had: {c['what']})" for c in conflicts[:50]
        ]
        if len(conflicts) > 50:
            lines.append(f"- … and {len(conflicts) - 50} more")
        lines.append("A person must decide each of these rows; the journal record holds the original image.")
        super().__init__("\n".join(lines))
