"""Real experiments on the embedded schedule target, run once, whose journal the report tests read."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from chaos_mcp import operations
from chaos_mcp.config import JournalSettings, Settings, embedded_default
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.journal import Journal
from tests.helpers import valid_design


@dataclass(frozen=True)
class Ran:
    settings: Settings
    ids: dict[str, str]

    def engine(self) -> Engine:
        return Engine(self.settings, Journal(self.settings.journal.resolved_url()))


DESIGNS: dict[str, dict[str, Any]] = {
    # coverage drops when the busiest faculty member is removed: the hypothesis is rejected
    "rejected": valid_design(
        duration="3s",
        success_criteria=["coverage_pct >= 100%", "max_utilization < 0.8", "recovery_time < 2 min"],
    ),
    # criteria that hold under N-1: confirmed
    "confirmed": valid_design(
        duration="2s", success_criteria=["max_utilization < 0.8", "recovery_time < 2 min"]
    ),
    # a stop condition that holds at the first sample: the supervisor aborts and reverts
    "aborted": valid_design(duration="20s", abort_conditions=["coverage_pct < 99%"]),
    # detection is a criterion; the declared signal is the defense level leaving GREEN/YELLOW
    "detected": valid_design(
        duration="2s", success_criteria=["detection_time < 1 min"], detection_signals=["defense_level >= 2"]
    ),
}


async def _run(settings: Settings, name: str, design: dict[str, Any], wait: bool) -> str:
    async with Engine.running(settings) as engine:
        experiment_id: str = engine.design(design)["experiment_id"]
        await engine.measure(experiment_id)
        await engine.inject(experiment_id, "test", "schedule", wait=wait)
        if name == "rejected":
            await engine.measure(experiment_id)
        await engine.rollback(experiment_id)
        return experiment_id


CRASHING_SERVER = """
import os, sys, anyio
from chaos_mcp.engine.core import Engine
from chaos_mcp.config import embedded_default
from tests.helpers import valid_design

async def main():
    async with Engine.running(embedded_default()) as engine:
        experiment_id = engine.design(valid_design(duration="30s"))["experiment_id"]
        await engine.measure(experiment_id)
        await engine.inject(experiment_id, "test", "schedule")
        print(experiment_id, flush=True)
        os._exit(0)  # the server dies with its fault injected: no cleanup runs

anyio.run(main)
"""


async def _crashed(settings: Settings) -> str:
    """Injected by a server process that died; `chaos-mcp recover` reverts it; rollback after."""
    done = await anyio.run_process(
        [sys.executable, "-c", CRASHING_SERVER], cwd=Path(__file__).parents[2], check=True
    )
    experiment_id = done.stdout.decode().split()[-1]
    await operations.recover(settings, io.StringIO())
    async with Engine.running(settings) as engine:
        await engine.rollback(experiment_id)
    return experiment_id


async def _observed_twice(settings: Settings) -> str:
    """Measured twice during the window (each measurement journals the scenario's observation), then
    left to the deadline's automatic revert before the rollback: lines that could repeat."""
    async with Engine.running(settings) as engine:
        experiment_id: str = engine.design(
            valid_design(duration="2s", success_criteria=["coverage_pct >= 100%"])
        )["experiment_id"]
        await engine.measure(experiment_id)
        await engine.inject(experiment_id, "test", "schedule")
        await engine.measure(experiment_id)
        await engine.measure(experiment_id)
        with anyio.fail_after(15):
            while not engine.journal.events(experiment_id, ["auto_reverted"]):
                await anyio.sleep(0.1)
        await engine.rollback(experiment_id)
        return experiment_id


async def _withdrawn(settings: Settings) -> str:
    async with Engine.running(settings) as engine:
        experiment_id: str = engine.design(valid_design())["experiment_id"]
        await engine.measure(experiment_id)
        await engine.rollback(experiment_id)
        return experiment_id


async def _designed_only(settings: Settings) -> str:
    async with Engine.running(settings) as engine:
        experiment_id: str = engine.design(valid_design())["experiment_id"]
        return experiment_id


async def _all(settings: Settings) -> dict[str, str]:
    ids = {}
    for name, design in DESIGNS.items():
        ids[name] = await _run(settings, name, design, wait=name != "rejected")
    ids["crashed"] = await _crashed(settings)
    ids["observed_twice"] = await _observed_twice(settings)
    ids["designed_only"] = await _designed_only(settings)
    ids["withdrawn"] = await _withdrawn(settings)
    return ids


def run_all(root: Path) -> Ran:
    """Run every experiment above with its own state dir and journal under `root`."""
    state = root / "state"
    state.mkdir()
    # the journal where the embedded default puts it, so the crashing server process shares it
    settings = embedded_default().model_copy(
        update={"journal": JournalSettings(url=f"sqlite:///{state / 'journal.sqlite3'}")}
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHAOS_MCP_STATE_DIR", str(state))
        ids = anyio.run(_all, settings)
    return Ran(settings, ids)


@pytest.fixture(scope="session")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    return run_all(tmp_path_factory.mktemp("reports"))
