"""A report never says "recovered" while the data differs or a fault is still in force (issue 13,
finding 11), even for a journal written before the engine judged that itself."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chaos_mcp.engine.journal import Event
from chaos_mcp.reports.evidence import experiment_facts
from chaos_mcp.reports.render import view_of
from tests.reports.conftest import Ran


def with_rollback(ran: Ran, change: dict[str, Any]) -> dict[str, Any]:
    """The confirmed experiment's facts, its last rollback event changed as an older engine wrote it."""
    engine = ran.engine()
    try:
        view = view_of(engine, ran.ids["confirmed"])
    finally:
        engine.journal.close()
    rollback = view.last("rollback")
    assert rollback is not None and rollback.data["recovery"]["recovered"] is True
    events = [dataclasses.replace(e, data=e.data | change) if e is rollback else e for e in view.events]
    rebuilt = type(view).build(view.row, view.design, events, view.faults)
    assert all(isinstance(e, Event) for e in rebuilt.events)
    return experiment_facts(rebuilt)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {
                "integrity": {
                    "intact": False,
                    "checked": [{"metric": "db.checksum", "before": 1, "after": 2, "equal": False}],
                },
                "status": "PARTIAL",  # what an older engine wrote next to "recovered": true
            },
            "the data differs from the baseline after the revert (db.checksum 1 → 2)",
        ),
        (
            {
                "steps": [
                    {"fault_id": "f0", "status": "FAILED", "description": "x", "detail": "revert failed"}
                ],
                "status": "FAILED",
            },
            "fault(s) still in force (f0)",
        ),
    ],
)
def test_a_steady_but_unrestored_rollback_is_reported_as_not_recovered(
    ran: Ran, change: dict[str, Any], reason: str
) -> None:
    facts = with_rollback(ran, change)
    recovery = facts["rollback"]["recovery"]
    assert recovery["recovered"] is False and reason in recovery["why"]
    rows = [r for r in facts["results"] if r["metric"] == "recovery_time"]
    assert rows and all(r["status"] == "FAIL" for r in rows)
    gate = next(g for g in facts["gates"]["mandatory"] if g["gate"] == "Rollback Complete")
    assert gate["status"] == "FAIL" and "steady state back" not in gate["evidence"]
    assert not any("steady state back after" in line for line in facts["summary"])
