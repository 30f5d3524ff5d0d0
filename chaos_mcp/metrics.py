"""Prometheus metrics computed from the journal, so every process sharing it reports the same.

    chaos_experiments_total{scenario,environment}   experiments designed (counter)
    chaos_injections_total{scenario,target}          injections that took effect (counter)
    chaos_rollbacks_total{status}                    rollbacks by COMPLETE/PARTIAL/FAILED (counter)
    chaos_active_experiments{state}                  experiments injected or aborted, not rolled back (gauge)
    chaos_active_faults                              faults whose revert has not been verified (gauge)
    chaos_kill_switch_engaged                        1 while injections are refused (gauge)
    chaos_injection_duration_seconds                 injection → first revert (histogram)

`render_metrics(journal)` returns the text exposition format (version 0.0.4).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from chaos_mcp.engine.journal import IN_FORCE_STATUSES, Journal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
ACTIVE = ("injected", "aborted")
REVERTS = ("aborted", "auto_reverted", "fault_reverted", "rollback", "failed")
SCAN_LIMIT = 1_000_000


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(10), " ").replace(chr(34), chr(92) + chr(34))}"'
        for k, v in pairs
    )
    return "{" + body + "}" if body else ""


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {value:g}" for labels, value in samples]
    return lines


def _histogram(name: str, help_text: str, values: list[float]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for bound in BUCKETS:
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {sum(v <= bound for v in values)}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {len(values)}')
    lines.append(f"{name}_sum {sum(values):g}")
    lines.append(f"{name}_count {len(values)}")
    return lines


def render_metrics(journal: Journal) -> str:
    rows = journal.list_experiments(limit=SCAN_LIMIT)
    designed: Counter[tuple[str, str]] = Counter()
    injections: Counter[tuple[str, str]] = Counter()
    rollbacks: Counter[str] = Counter()
    active: Counter[str] = Counter(dict.fromkeys(ACTIVE, 0))
    durations: list[float] = []
    for row in rows:
        designed[(row.scenario, row.environment)] += 1
        if row.state in ACTIVE:
            active[row.state] += 1
        events = journal.events(row.id, ["faults_injected", *REVERTS])
        injected = [e.ts for e in events if e.kind == "faults_injected"]
        injections[(row.scenario, row.target)] += len(injected)
        rollbacks.update(str(e.data.get("status", "FAILED")) for e in events if e.kind == "rollback")
        if injected:
            ended = [e.ts for e in events if e.kind in REVERTS and e.ts >= injected[0]]
            if ended:
                durations.append(max(0.0, min(ended) - injected[0]))
    lines = [
        *_family(
            "chaos_experiments_total",
            "counter",
            "Experiments designed, by scenario and environment.",
            ((_labels([("scenario", s), ("environment", e)]), n) for (s, e), n in sorted(designed.items())),
        ),
        *_family(
            "chaos_injections_total",
            "counter",
            "Injections that took effect, by scenario and target.",
            ((_labels([("scenario", s), ("target", t)]), n) for (s, t), n in sorted(injections.items())),
        ),
        *_family(
            "chaos_rollbacks_total",
            "counter",
            "Rollbacks by overall status (COMPLETE, PARTIAL, FAILED).",
            ((_labels([("status", s)]), rollbacks[s]) for s in ("COMPLETE", "PARTIAL", "FAILED")),
        ),
        *_family(
            "chaos_active_experiments",
            "gauge",
            "Experiments injected or aborted and not yet rolled back.",
            ((_labels([("state", s)]), active[s]) for s in ACTIVE),
        ),
        *_family(
            "chaos_active_faults",
            "gauge",
            "Faults whose revert has not been verified yet (failed reverts included).",
            [("", float(len(journal.faults_with_status(IN_FORCE_STATUSES))))],
        ),
        *_family(
            "chaos_kill_switch_engaged",
            "gauge",
            "1 while the kill switch refuses new injections (re-arm with chaos-mcp arm).",
            [("", 1.0 if journal.get_control("armed") == "false" else 0.0)],
        ),
        *_histogram(
            "chaos_injection_duration_seconds",
            "Seconds from injection to the first revert (stop condition, deadline or rollback).",
            durations,
        ),
    ]
    return "\n".join(lines) + "\n"
