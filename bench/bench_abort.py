"""The kill switch: abort_all with N active injections on N targets, against reverting them one by one.

    python bench/bench_abort.py [--targets 20] [--repeat 5]

Both arms revert the same kind of faults (schedule working-copy removals, which need no external
server) from their journal records; the baseline reverts them sequentially, abort_all concurrently.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos_mcp.config import JournalSettings, parse_settings
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.reverter import _revert_one
from chaos_mcp.logs import configure_logging
from tests.helpers import valid_design


async def inject_all(engine: Engine, count: int) -> None:
    for n in range(count):
        target = f"s{n}"
        design = valid_design(target_component=target, blast_radius={"scope": "one", "targets": [target]})
        experiment_id = engine.design(design)["experiment_id"]
        await engine.measure(experiment_id)
        await engine.inject(experiment_id, "test", target)


async def one_round(count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CHAOS_MCP_STATE_DIR"] = folder
        toml = "".join(f'[targets.s{n}]\nkind = "schedule"\nenvironment = "test"\n\n' for n in range(count))
        settings = parse_settings(toml).model_copy(
            update={"journal": JournalSettings(url=f"sqlite:///{folder}/journal.sqlite3")}
        )
        async with Engine.running(settings) as engine:
            await inject_all(engine, count)
            began = time.perf_counter()
            for row in engine.journal.active_faults():
                await _revert_one(engine.journal, row)
            sequential = time.perf_counter() - began
            engine.arm()
            for row in engine.journal.list_experiments(limit=1000):
                engine.journal.transition(row.id, ["injected"], "rolled_back", {})
        async with Engine.running(settings) as engine:
            await inject_all(engine, count)
            began = time.perf_counter()
            result = await engine.abort_all("benchmark")
            concurrent = time.perf_counter() - began
            assert len(result["reverted"]) == count
    return sequential, concurrent


async def main(count: int, repeat: int) -> None:
    configure_logging("WARNING")
    rounds = [await one_round(count) for _ in range(repeat)]
    sequential = [r[0] for r in rounds]
    concurrent = [r[1] for r in rounds]
    print(f"| measurement ({count} active injections on {count} targets) | median | worst | n |")
    print("|---|---|---|---|")
    for label, times in (
        ("abort_all: revert all, verify each, mark aborted", concurrent),
        ("baseline: revert + verify one after the other", sequential),
    ):
        median, worst = statistics.median(times) * 1000, max(times) * 1000
        print(f"| {label} | {median:.0f} ms | {worst:.0f} ms | {repeat} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    anyio.run(main, options.targets, options.repeat)
