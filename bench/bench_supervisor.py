"""How soon the supervisor reverts after an abort condition starts to hold.

    python -m bench.bench_supervisor [--durations 5,10,20] [--runs 5]

Issue 4's target: the supervisor reverts within one sampling interval + 200 ms after an abort
condition holds. The application under test of tests/integration (Starlette API + PostgreSQL pool +
Redis cache, its own subprocess) runs against a private database and Redis. Each run designs
`db_connection_loss` (native: ALLOW_CONNECTIONS false, sessions ended, so the revert is a real
ALTER DATABASE + verification) on a second private database that the app does not use, with the
abort condition `api.error_rate > 50%`, injects it (the supervisor samples every
`sampling_interval(duration)`), waits a chosen offset, then flips the app into failing mode with its
admin route: from that instant (the app's own timestamp) the condition holds. Measured: the
`aborted` event's journal timestamp minus the flip, which is when the revert was done and journaled.
Offsets are spread over the sampling phase so the flip lands early, mid and late in an interval.

Baseline, measured in the same run: one probe round (every target's probes, what each supervisor
tick does) with the app healthy. The worst case is interval + round + revert; the target allows
interval + 200 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

from chaos_mcp.config import Settings
from chaos_mcp.contract import validate_design
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.supervisor import sampling_interval
from chaos_mcp.logs import configure_logging
from tests.fixtures import services
from tests.integration.app.runner import RunningApp, running_app, seed
from tests.integration.conftest import stack_settings

MARGIN = 0.2  # the target: one sampling interval + 200 ms


@contextlib.contextmanager
def stack() -> Iterator[tuple[RunningApp, Settings]]:
    database, victim, redis = (
        services._create_database(),
        services._create_database(),
        services._start_redis(),
    )
    try:
        seed(database.app_dsn)
        with running_app(database.app_dsn, redis.url) as app, tempfile.TemporaryDirectory() as tmp:
            yield app, stack_settings(Path(tmp), app.base_url, victim, redis.url)
    finally:
        services._stop_redis(redis)
        with services._admin() as conn:
            services._drop(conn, database.database)
            services._drop(conn, victim.database)


def design(duration: float) -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": "db",
        "scenario": "db_connection_loss",
        "hypothesis": "When the API starts failing, the supervisor should revert within one interval.",
        "environment": "test",
        "blast_radius": {"scope": "a sibling database and the bench API", "targets": ["db", "api"]},
        "duration": f"{duration:g}s",
        "rollback_plan": ["Nothing to restore"],
        "steady_state": ["api.error_rate < 0.1%", "db.error_rate < 0.1%"],
        "abort_conditions": ["api.error_rate > 50%"],
    }


async def one_run(engine: Engine, app: RunningApp, duration: float, phase: float) -> dict[str, float]:
    """Flip the app `phase` (0..1) of an interval after a sample tick; time flip → aborted."""
    interval = sampling_interval(duration)
    experiment_id = engine.design(design(duration))["experiment_id"]
    baseline = await engine.measure(experiment_id)
    assert baseline["steady"], baseline["verdicts"]
    await engine.inject(experiment_id, "test", "db")
    with anyio.fail_after(interval + 10):  # the first tick: the flip is placed relative to it
        while not (ticks := engine.journal.events(experiment_id, ["sample"])):
            await anyio.sleep(0.005)
    await anyio.sleep(max(0.0, ticks[0].ts + (1 + phase) * interval - time.time()))
    flipped = await anyio.to_thread.run_sync(app.set_failing, True)
    try:
        with anyio.fail_after(3 * interval + 10):
            while not (aborted := engine.journal.events(experiment_id, ["aborted"])):
                await anyio.sleep(0.005)
    finally:
        await anyio.to_thread.run_sync(app.set_failing, False)
    samples = engine.journal.events(experiment_id, ["sample"])
    firing = next(s for s in samples if any(c["passed"] for c in s.data["abort_checks"]))
    await engine.rollback(experiment_id)
    return {
        "interval": interval,
        "phase": phase,
        "latency": aborted[0].ts - flipped,
        "to_sample": firing.ts - flipped,
        "revert": aborted[0].ts - firing.ts,
    }


async def probe_rounds(engine: Engine, count: int) -> list[float]:
    checked = validate_design(design(10), engine.settings)
    rounds = []
    for _ in range(count):
        began = time.perf_counter()
        await engine.measurer.sample(checked)
        rounds.append(time.perf_counter() - began)
    return rounds


async def bench(durations: list[float], runs: int) -> tuple[list[dict[str, float]], list[float]]:
    results: list[dict[str, float]] = []
    with stack() as (app, settings):
        async with Engine.running(settings) as engine:
            rounds = await probe_rounds(engine, 20)
            for duration in durations:
                for index in range(runs):
                    results.append(await one_run(engine, app, duration, (index + 0.5) / runs))
    return results, rounds


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "?")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, load average {load}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def table(results: list[dict[str, float]], rounds: list[float]) -> str:
    lines = [
        f"Baseline, same run: one probe round (api + db + cache, app healthy), 20 rounds: median "
        f"{ms(statistics.median(rounds))} ms, max {ms(max(rounds))} ms.",
        "",
        "| interval | flip after a sample (of interval) | flip → firing sample | sample → aborted (revert) "
        "| flip → aborted | target | met? |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        target = r["interval"] + MARGIN
        lines.append(
            f"| {r['interval']:g} s | {r['phase']:.2f} | {ms(r['to_sample'])} ms | {ms(r['revert'])} ms "
            f"| **{ms(r['latency'])} ms** | ≤ {ms(target)} ms | {'yes' if r['latency'] <= target else 'NO'} |"
        )
    lines += [
        "",
        "| interval | runs | median | worst | target | all met? |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for interval in sorted({r["interval"] for r in results}):
        mine = [r["latency"] for r in results if r["interval"] == interval]
        ok = all(x <= interval + MARGIN for x in mine)
        lines.append(
            f"| {interval:g} s | {len(mine)} | {ms(statistics.median(mine))} ms | {ms(max(mine))} ms "
            f"| ≤ {ms(interval + MARGIN)} ms | {'yes' if ok else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--durations", default="5,10,20", help="experiment durations in seconds, comma separated"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per duration")
    args = parser.parse_args()
    configure_logging("WARNING")  # logs to stderr; stdout is the table
    durations = [float(x) for x in args.durations.split(",")]
    results, rounds = anyio.run(bench, durations, args.runs)
    print(f"Machine: {machine()}\n")
    print(table(results, rounds))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
