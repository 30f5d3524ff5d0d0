"""`chaos-mcp demo`: a complete experiment on the embedded default, no servers needed."""

from __future__ import annotations

from typing import Any

from chaos_mcp.config import Settings
from chaos_mcp.engine.core import Engine

DEMO_DESIGN: dict[str, Any] = {
    "experiment_type": "schedule",
    "target_component": "schedule",
    "scenario": "n1_removal",
    "hypothesis": "When the highest-utilized faculty member is suddenly absent, the schedule should keep "
    "coverage at 100% and remaining faculty utilization under 80%.",
    "environment": "test",
    "blast_radius": {"scope": "synthetic residency program only (working copy)", "targets": ["schedule"]},
    "duration": "10s",
    "rollback_plan": [
        "Remove the absence overlay for the removed faculty member",
        "Verify coverage and utilization equal the baseline",
    ],
    "success_criteria": ["coverage_pct >= 100%", "max_utilization < 0.8", "recovery_time < 2 min"],
    "abort_conditions": ["acgme_violations > 1000"],
}


async def run_demo(settings: Settings, out: Any) -> int:
    async with Engine.running(settings) as engine:
        plan = engine.design(DEMO_DESIGN)
        experiment_id = plan["experiment_id"]
        print(f"designed {experiment_id}: {'; '.join(plan['faults'])}", file=out)
        baseline = await engine.measure(experiment_id)
        print(f"baseline steady: {baseline['steady']}", file=out)
        if not baseline["steady"]:
            print("the embedded schedule is not steady; nothing injected", file=out)
            return 1
        injected = await engine.inject(experiment_id, "test", "schedule")
        print(f"injected until {injected['deadline']}", file=out)
        during = await engine.measure(experiment_id)
        print(
            "during: " + ", ".join(f"{v['criterion']} → {v['actual']}" for v in during["verdicts"]), file=out
        )
        rollback = await engine.rollback(experiment_id)
        print(f"rollback: {rollback['status']}", file=out)
        from chaos_mcp.reports.render import generate_report

        report = generate_report(engine, experiment_id, None, None, "markdown")
        print("", file=out)
        print(report["markdown"], file=out)
        print(f"journal: {engine.journal.url}", file=out)
        return 0
