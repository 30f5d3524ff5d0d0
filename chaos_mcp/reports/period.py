"""The spec's period report ("Chaos Engineering Report") from many experiments' facts."""

from __future__ import annotations

from typing import Any

from chaos_mcp.reports.findings import SEVERITY_ORDER

SERIOUS = ("critical", "high")


def period_facts(since: str, until: str, experiments: list[dict[str, Any]]) -> dict[str, Any]:
    run = [e for e in experiments if e["injected"] is not None]
    by_status = {
        s: sum(e["status"] == s for e in run)
        for s in ("HYPOTHESIS_CONFIRMED", "HYPOTHESIS_REJECTED", "EXPERIMENT_FAILED")
    }
    critical = sorted(
        (
            {**f, "experiment_id": e["experiment_id"], "title": e["title"]}
            for e in experiments
            for f in e["findings"]
            if f["severity"] in SERIOUS
        ),
        key=lambda f: SEVERITY_ORDER[f["severity"]],
    )
    vulnerable = {f["experiment_id"] for f in critical}
    return {
        "since": since,
        "until": until,
        "experiments": experiments,
        "experiments_run": len(run),
        "designed_only": len(experiments) - len(run),
        "withdrawn": sum(e["state"] == "cancelled" for e in experiments),
        "confirmed": by_status["HYPOTHESIS_CONFIRMED"],
        "rejected": by_status["HYPOTHESIS_REJECTED"],
        "failed": by_status["EXPERIMENT_FAILED"],
        "vulnerabilities": len(critical),
        "vulnerable_experiments": len(vulnerable),
        "targets": sorted({e["design"]["target_component"] for e in run}),
        "critical_findings": critical,
        "recommendations": _recommendations(experiments),
    }


def _recommendations(experiments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    items = []
    for e in experiments:
        for f in e["findings"]:
            if f["recommendation"] in seen:
                continue
            seen.add(f["recommendation"])
            items.append(
                {
                    "priority": 1 if f["severity"] in SERIOUS else 2,
                    "text": f["recommendation"],
                    "evidence": f["evidence"],
                    "experiment_id": e["experiment_id"],
                    "severity": f["severity"],
                }
            )
    return sorted(items, key=lambda r: (r["priority"], SEVERITY_ORDER[r["severity"]]))
