"""Schedule-domain benchmark: N-1, exhaustive N-2, repair, solver time-limit adherence.

    python bench/bench_schedule.py [--faculty 100] [--residents 200] [--days 365] [--oracle-pairs 300]

Prints a Markdown table. The baseline, measured in the same run, is the brute-force oracle
(chaos_mcp.schedule.oracle): N-1 in full, N-2 on a random sample of pairs extrapolated to
all pairs; the vectorized results are checked equal to the oracle's on everything it ran.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from chaos_mcp.schedule import contingency, oracle
from chaos_mcp.schedule.coverage import build_coverage
from chaos_mcp.schedule.overlay import apply_overlays
from chaos_mcp.schedule.repair import repair
from chaos_mcp.schedule.synthetic import generate
from chaos_mcp.schedule.utilization import utilization


def best_of(runs: int, func: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return min(times), result


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faculty", type=int, default=100)
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--oracle-pairs", type=int, default=300)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []

    t_gen, program = best_of(1, lambda: generate(7, args.faculty, args.residents, args.days))
    t_cov, cov = best_of(3, lambda: build_coverage(program))
    util = utilization(program, cov)
    n_pairs = args.faculty * (args.faculty - 1) // 2
    rows.append(("generate program (once)", f"{t_gen * 1000:.0f} ms", "", f"{len(cov.req)} slots"))
    rows.append(
        ("coverage matrices (once per program)", f"{t_cov * 1000:.0f} ms", "", "not in N-1/N-2 timings")
    )

    t_n1, first = best_of(5, lambda: contingency.n1(program, cov, util))
    t_n1_oracle, n1_oracle = best_of(1, lambda: oracle.n1(program))
    fast_n1 = {
        program.faculty[int(i)].id: (
            int(first.new_uncovered[i]),
            int(first.new_uncovered[i]),
            int(first.sole[i]),
        )
        for i in first.active
    }
    rows.append(
        (
            f"N-1, all {args.faculty} faculty",
            f"{t_n1 * 1000:.1f} ms",
            f"{t_n1_oracle * 1000:.0f} ms",
            f"target ≤ 100 ms; equal to oracle: {fast_n1 == n1_oracle}",
        )
    )

    t_n2, second = best_of(5, lambda: contingency.n2(program, cov, util, first))
    ids = [f.id for f in program.faculty]
    rng = random.Random(1)
    sample_idx = rng.sample(range(len(second.pairs)), min(args.oracle_pairs, len(second.pairs)))
    sample = [(ids[int(second.pairs[k][0])], ids[int(second.pairs[k][1])]) for k in sample_idx]
    t_sample, n2_oracle = best_of(1, lambda: oracle.n2(program, sample))
    fast = {
        (ids[int(second.pairs[k][0])], ids[int(second.pairs[k][1])]): (
            int(second.new_uncovered[k]),
            int(second.affected[k]),
            int(second.sole[k]),
        )
        for k in sample_idx
    }
    extrapolated = t_sample / len(sample) * n_pairs
    rows.append(
        (
            f"N-2, all {n_pairs} pairs (exhaustive)",
            f"{t_n2 * 1000:.1f} ms",
            f"~{extrapolated:.1f} s (extrapolated from {len(sample)} pairs)",
            f"target ≤ 1 s; equal to oracle on the sample: {fast == n2_oracle}",
        )
    )

    busiest = int(first.active[int(util.per_faculty[first.active].argmax())])
    removed = apply_overlays(program, [{"kind": "remove_faculty", "faculty_ids": [ids[busiest]]}])
    t_rep, result = best_of(3, lambda: repair(removed, 10.0, (0, 27)))
    rows.append(
        (
            f"repair N-1 gap ({ids[busiest]}), first 28 days",
            f"{t_rep * 1000:.0f} ms",
            "",
            f"target ≤ 2 s; {result['status']}, "
            f"{result['changes']} change(s) for {result['uncovered_before']} gap(s)",
        )
    )
    t_full, full = best_of(1, lambda: repair(removed, 30.0))
    rows.append(
        (
            f"repair N-1 gap, whole {args.days}-day horizon",
            f"{t_full * 1000:.0f} ms",
            "",
            f"{full['status']}, {full['changes']} change(s)",
        )
    )

    pair = [ids[int(i)] for i in second.pairs[int(second.new_uncovered.argmax())]]
    hard = apply_overlays(program, [{"kind": "remove_faculty", "faculty_ids": pair}])
    configs: list[tuple[float, tuple[int, int] | None]] = [(0.1, (0, 27)), (0.25, (0, 27)), (0.5, None)]
    configs += [(1.0, None), (2.0, None)]
    for limit, window in configs:
        overshoots = []
        statuses = set()
        for _ in range(3):
            started = time.perf_counter()
            answer = repair(hard, limit, window)
            overshoots.append((time.perf_counter() - started) / limit - 1)
            statuses.add(str(answer["status"]))
        worst = max(overshoots)
        rows.append(
            (
                f"time limit {limit:g} s, N-2 repair, {'first 28 days' if window else 'whole horizon'}",
                f"worst {limit * (1 + worst):.3f} s",
                "",
                f"worst deviation {worst * 100:+.1f}% (target ≤ +10%); {', '.join(sorted(statuses))}; "
                f"median {statistics.median(overshoots) * 100:+.1f}%",
            )
        )

    print(f"Machine: {os.cpu_count()} CPU(s), {cpu_model()}, Python {platform.python_version()}")
    print(f"Program: {args.faculty} faculty, {args.residents} residents, {args.days * 2} blocks\n")
    print("| measurement | time | brute-force baseline | note |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
