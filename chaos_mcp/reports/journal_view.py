"""A read-only view of one experiment's journal: events by kind, observations, key instants.

Everything a report says is computed from this view, so a report rendered by another
process (or after a crash) says the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.engine.journal import Event, ExperimentRow, FaultRow

REVERT_EVENTS = ("aborted", "auto_reverted", "fault_reverted")


@dataclass(frozen=True)
class Observation:
    """One round of probes: when it ended, in which phase, and what it measured."""

    at: float
    phase: str  # baseline | during | recovery
    source: str  # measure_steady_state | supervisor | rollback (its recovery samples)
    measurements: list[dict[str, Any]]

    def value(self, probe: str, metric: str) -> float | None:
        for m in self.measurements:
            if m["probe"] == probe and m["metric"] == metric and not m["labels"]:
                return float(m["value"])
        return None


@dataclass(frozen=True)
class ExperimentView:
    row: ExperimentRow
    design: ExperimentDesign
    events: list[Event]
    faults: list[FaultRow]
    by_kind: dict[str, list[Event]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, row: ExperimentRow, design: ExperimentDesign, events: list[Event], faults: list[FaultRow]
    ) -> ExperimentView:
        by_kind: dict[str, list[Event]] = {}
        for event in events:
            by_kind.setdefault(event.kind, []).append(event)
        return cls(row, design, events, faults, by_kind)

    def of(self, kind: str) -> list[Event]:
        return self.by_kind.get(kind, [])

    def first(self, kind: str) -> Event | None:
        found = self.of(kind)
        return found[0] if found else None

    def last(self, kind: str) -> Event | None:
        found = self.of(kind)
        return found[-1] if found else None

    # ---- instants
    @property
    def injected_at(self) -> float | None:
        event = self.first("faults_injected") or self.first("injected")
        return event.ts if event else None

    @property
    def reverted_at(self) -> float | None:
        """When the faults stopped acting: the first abort, deadline revert or fault revert."""
        times = [e.ts for kind in REVERT_EVENTS for e in self.of(kind)]
        return min(times) if times else None

    @property
    def started_at(self) -> float:
        return self.events[0].ts if self.events else self.row.created_at

    @property
    def ended_at(self) -> float:
        return self.events[-1].ts if self.events else self.row.updated_at

    # ---- measurements
    def observations(self) -> list[Observation]:
        found: list[Observation] = []
        for event in self.events:
            if event.kind == "measurement":
                found.append(
                    Observation(
                        float(event.data.get("taken_at", event.ts)),
                        str(event.data["phase"]),
                        "measure_steady_state",
                        list(event.data.get("measurements", [])),
                    )
                )
            elif event.kind == "recovery_sample":
                found.append(
                    Observation(
                        float(event.data.get("taken_at", event.ts)),
                        "recovery",
                        "rollback",
                        list(event.data.get("measurements", [])),
                    )
                )
            elif event.kind == "sample":
                found.append(
                    Observation(event.ts, "during", "supervisor", list(event.data.get("measurements", [])))
                )
        return found

    def phase(self, name: str) -> list[Observation]:
        return [o for o in self.observations() if o.phase == name]

    def baseline(self) -> Observation | None:
        found = self.phase("baseline")
        return found[-1] if found else None

    def baseline_event(self) -> dict[str, Any] | None:
        found = [e.data for e in self.of("measurement") if e.data.get("phase") == "baseline"]
        return found[-1] if found else None

    def window(self) -> list[Observation]:
        """Every observation taken while the faults were in effect."""
        return self.phase("during")

    @property
    def rollback(self) -> dict[str, Any] | None:
        """The last rollback's result; its recovery never reads as reached while a fault is still in
        force or an integrity metric differs from the baseline (journals written before that rule too)."""
        event = self.last("rollback")
        if event is None:
            return None
        data = event.data
        recovery = data.get("recovery") or {}
        if not recovery.get("recovered"):
            return data
        differ = [c for c in (data.get("integrity") or {}).get("checked", []) if not c.get("equal")]
        failed = [s.get("fault_id", "?") for s in data.get("steps", []) if s.get("status") == "FAILED"]
        if failed:
            why = f"not recovered: fault(s) still in force ({', '.join(failed)})"
        elif differ:
            what = ", ".join(f"{c['metric']} {c['before']} → {c['after']}" for c in differ)
            why = f"not recovered: the data differs from the baseline after the revert ({what})"
        else:
            return data
        return data | {"recovery": recovery | {"recovered": False, "recovery_time_s": None, "why": why}}
