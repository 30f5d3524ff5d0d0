"""One active experiment per target across servers; the kill switch over many targets at once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from chaos_mcp.config import parse_settings
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, result_text, settings_with_journal
from tests.e2e.serving import serve_params
from tests.fixtures.services import PostgresDatabase
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio


async def baselined(client: Client, target: str = "schedule") -> str:
    design = valid_design(target_component=target, blast_radius={"scope": "one program", "targets": [target]})
    plan = result_data(await client.call_tool("design_experiment", design))
    result_data(await client.call_tool("measure_steady_state", {"experiment_id": plan["experiment_id"]}))
    return str(plan["experiment_id"])


def inject_args(experiment_id: str, target: str = "schedule") -> dict[str, Any]:
    return {"experiment_id": experiment_id, "environment": "test", "target_component": target}


async def test_two_servers_on_one_postgres_journal_race_and_exactly_one_injects(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    url = f"postgresql://postgres@{own_postgres.host}:{own_postgres.port}/{own_postgres.database}"
    config = tmp_path / "chaos.toml"
    config.write_text(
        f'[journal]\nurl = "{url}"\n\n[targets.schedule]\nkind = "schedule"\nenvironment = "test"\n'
    )
    async with (
        Client(serve_params(state_dir, tmp_path / "a.pid", config), mode="legacy") as first,
        Client(serve_params(state_dir, tmp_path / "b.pid", config), mode="legacy") as second,
    ):
        ids = [await baselined(first), await baselined(second)]
        results: dict[int, Any] = {}

        async def inject(index: int, client: Client) -> None:
            results[index] = await client.call_tool("inject_failure", inject_args(ids[index]))

        async with anyio.create_task_group() as tg:
            tg.start_soon(inject, 0, first)
            tg.start_soon(inject, 1, second)
        winners = [i for i, r in results.items() if not r.is_error]
        assert len(winners) == 1
        loser = 1 - winners[0]
        assert f"held by experiment {ids[winners[0]]}" in result_text(results[loser])
        result_data(
            await (first, second)[winners[0]].call_tool("rollback", {"experiment_id": ids[winners[0]]})
        )


MANY = 20


async def test_abort_all_reverts_twenty_active_injections_within_a_second(
    tmp_path: Path, state_dir: Path
) -> None:
    toml = "".join(f'[targets.s{n}]\nkind = "schedule"\nenvironment = "test"\n\n' for n in range(MANY))
    settings = settings_with_journal(tmp_path, parse_settings(toml))
    async with Client(build_server(settings), mode="legacy") as client:
        ids = []
        for n in range(MANY):
            experiment_id = await baselined(client, f"s{n}")
            result_data(await client.call_tool("inject_failure", inject_args(experiment_id, f"s{n}")))
            ids.append(experiment_id)
        began = time.perf_counter()
        aborted = result_data(await client.call_tool("abort_all", {"reason": "kill switch test"}))
        elapsed = time.perf_counter() - began
        assert sorted(aborted["aborted"]) == sorted(ids)
        assert len(aborted["reverted"]) == MANY and all(
            s["status"] == "COMPLETE" for s in aborted["reverted"]
        )
        assert elapsed < 1.0, f"abort_all took {elapsed:.3f}s"
        refused = await client.call_tool("inject_failure", inject_args(await baselined(client, "s0"), "s0"))
        assert refused.is_error and "chaos-mcp arm" in result_text(refused)
