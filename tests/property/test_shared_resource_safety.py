"""Randomized safety: random configurations whose targets share instances, random overlapping experiments.

Each run declares a random handful of targets over a fixed set of real places (two databases on one
PostgreSQL cluster, three numbered databases on one private Redis server), under several names and
spellings (127.0.0.1 / localhost) and random environments, then attempts random experiments with a
random person (approves, declines, or cannot be asked), and ends with rollback, the kill switch, or a
crash followed by recover. The test knows the ground truth (which name is which place) from how it
built the configuration, never from the server; every claim is checked against the systems themselves:

- two experiments never act on one place at once (finding 1), and no place is refused for nothing;
- a fault reaching another name of another environment, or outside the blast radius (the whole Redis
  server, or another name for the very database), went ahead only if the person was asked and approved
  (finding 2; the attacker's test name for a production database);
- after each step the systems show exactly the faults the test expects; after the end, every place is
  back to its original state and the journal shows nothing active.

CHAOS_SAFETY_RUNS sets the number of runs (50 by default); CHAOS_SAFETY_SEED replays one run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import psycopg
import pytest
import redis
from mcp import Client
from redis.backoff import NoBackoff
from redis.retry import Retry

from chaos_mcp import operations
from chaos_mcp.config import load_settings, parse_settings
from chaos_mcp.contract import ValidationProblems
from chaos_mcp.engine.core import Engine, EngineError
from chaos_mcp.engine.journal import Journal
from chaos_mcp.engine.policy import Approval
from tests.e2e.conftest import result_data, result_text
from tests.e2e.serving import serve_params, server_pid
from tests.fixtures.services import PostgresDatabase, RedisServer
from tests.helpers import free_port, kill_matching

pytestmark = pytest.mark.anyio
RUNS = int(os.environ.get("CHAOS_SAFETY_RUNS", "50"))
ENVIRONMENTS = ("test", "staging", "production")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Place:
    """A real place a target can name: a PostgreSQL database or a numbered Redis database."""

    kind: str  # postgres | redis
    name: str  # pgA, pgB, r0, r1, r2
    spellings: tuple[str, ...]

    @property
    def instance(self) -> str:
        return "cluster" if self.kind == "postgres" else "redis"


@dataclass
class Active:
    experiment_id: str
    place: Place
    names: set[str]  # the target and its blast radius: one active experiment per target name


@dataclass
class Run:
    seed: int
    rng: random.Random
    targets: dict[str, tuple[Place, str]]  # name -> (place, environment)
    allow_production: bool
    active: list[Active] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # what happened, to show each path was walked


def places(first: PostgresDatabase, second: PostgresDatabase, server: RedisServer) -> list[Place]:
    def dsns(database: PostgresDatabase) -> tuple[str, ...]:
        return tuple(
            f"postgresql://postgres@{host}:5432/{database.database}" for host in ("127.0.0.1", "localhost")
        )

    def urls(number: int) -> tuple[str, ...]:
        return tuple(f"redis://{host}:{server.port}/{number}" for host in ("127.0.0.1", "localhost"))

    return [
        Place("postgres", "pgA", dsns(first)),
        Place("postgres", "pgB", dsns(second)),
        *(Place("redis", f"r{n}", urls(n)) for n in range(3)),
    ]


def configure(seed: int, pool: list[Place]) -> tuple[Run, str]:
    rng = random.Random(seed)
    allow_production = rng.random() < 0.6
    chosen = [rng.choice(pool) for _ in range(rng.randint(2, 5))]
    targets = {f"t{n}": (place, rng.choice(ENVIRONMENTS)) for n, place in enumerate(chosen)}
    toml = '[journal]\nurl = "sqlite:///:memory:"\n\n[policy]\non_disconnect = "continue"\n'
    toml += f"allow_production = {str(allow_production).lower()}\n\n"
    for name, (place, environment) in targets.items():
        key = "dsn" if place.kind == "postgres" else "url"
        toml += f'[targets.{name}]\nkind = "{place.kind}"\nenvironment = "{environment}"\n'
        toml += f'{key} = "{rng.choice(place.spellings)}"\n\n'
    return Run(seed, rng, targets, allow_production), toml


def design(run: Run, name: str) -> dict[str, Any]:
    place, environment = run.targets[name]
    others = [n for n in run.targets if n != name and run.rng.random() < 0.3]
    return {
        "experiment_type": "infrastructure",
        "target_component": name,
        "scenario": "db_connection_loss" if place.kind == "postgres" else "redis_timeout",
        "parameters": {} if place.kind == "postgres" else {"mode": "WRITE"},
        "hypothesis": f"When {name} fails, the application should degrade gracefully and recover.",
        "environment": environment,
        "blast_radius": {"scope": f"{name} and what it names", "targets": [name, *others]},
        "duration": "60s",
        "rollback_plan": ["Revert the fault", "Verify the service answers normally"],
        "baseline_known_degraded": True,
    }


@dataclass(frozen=True)
class Truth:
    on_the_place: set[str]  # active experiments acting on what this one would act on
    on_the_names: set[str]  # active experiments holding one of its target names
    needed: bool  # a person's approval is needed
    refused: bool  # the policy refuses it outright


def ground_truth(run: Run, name: str, blast: list[str]) -> Truth:
    place, environment = run.targets[name]
    wide = place.kind == "redis"  # every Redis fault here acts on the whole server
    on_the_place = {
        a.experiment_id
        for a in run.active
        if a.place == place or (wide and a.place.instance == place.instance)
    }
    on_the_names = {a.experiment_id for a in run.active if a.names & {name, *blast}}
    needed, refused = environment == "production", False
    # Every other name the fault reaches (another name for the database, or any name on a paused server).
    for other, (seen, env) in run.targets.items():
        if other == name or not (seen == place or (wide and seen.instance == place.instance)):
            continue
        if env != environment:
            needed = True
            refused |= env == "production" and not run.allow_production
        elif other not in blast:
            needed = True
    return Truth(on_the_place, on_the_names, needed, refused)


# ---------------------------------------------------------------- the systems themselves


def blocked(database: str) -> bool:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT datallowconn, datconnlimit FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
    assert row is not None
    assert row[1] == -1, f"{database}: connection limit {row[1]}, the original was -1"
    return not row[0]


def writes_paused(server: RedisServer) -> bool:
    """From a fresh connection: does a write get no answer within 100 ms?"""
    client = redis.Redis(
        host=server.host,
        port=server.port,
        socket_timeout=0.1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.delete("chaos-test:probe")
        return False
    except redis.TimeoutError:
        return True
    finally:
        client.close()


def check_reality(run: Run, databases: dict[str, str], server: RedisServer) -> None:
    for place_name, database in databases.items():
        expected = any(a.place.name == place_name for a in run.active)
        assert blocked(database) == expected, f"seed {run.seed}: {place_name} blocked != {expected}"
    expected = any(a.place.kind == "redis" for a in run.active)
    assert writes_paused(server) == expected, f"seed {run.seed}: Redis paused != {expected}"


# ---------------------------------------------------------------- one run


async def attempt(engine: Engine, run: Run, name: str) -> None:
    plan = design(run, name)
    place, environment = run.targets[name]
    if environment == "production" and not run.allow_production:
        with pytest.raises(ValidationProblems):  # refused at design already
            engine.design(plan)
        return
    experiment_id = engine.design(plan)["experiment_id"]
    await engine.measure(experiment_id)
    person = run.rng.choice(["approves", "declines", "absent"])
    asked: list[str] = []

    async def approver(question: str) -> Approval:
        asked.append(question)
        if person == "absent":
            return Approval.UNAVAILABLE
        return Approval.APPROVED if person == "approves" else Approval.DECLINED

    blast = plan["blast_radius"]["targets"]
    truth = ground_truth(run, name, blast)
    try:
        await engine.inject(experiment_id, environment, name, approver=approver)
    except EngineError as exc:
        reason = str(exc)
        if "already under a fault" in reason:
            assert any(e in reason for e in truth.on_the_place), f"seed {run.seed}: untrue refusal: {reason}"
        if "held by experiment" in reason:
            assert any(e in reason for e in truth.on_the_names), f"seed {run.seed}: untrue refusal: {reason}"
        run.seen.append("refused: on the place" if "already under a fault" in reason else "refused")
        free = not truth.on_the_place and not truth.on_the_names
        allowed = free and not truth.refused and (not truth.needed or person == "approves")
        assert not allowed, f"seed {run.seed}: refused for nothing: {reason}"
        return
    context = f"seed {run.seed}: {name} ({place.name}, {environment}) injected"
    assert not truth.on_the_place, f"{context} over experiment(s) {truth.on_the_place} on the same place"
    assert not truth.on_the_names, f"{context} while {truth.on_the_names} hold its targets"
    assert not truth.refused, f"{context} although policy refuses it"
    assert not truth.needed or (asked and person == "approves"), f"{context} without a person's approval"
    run.active.append(Active(experiment_id, place, {name, *blast}))
    run.seen.append("injected after approval" if truth.needed else "injected")
    if place.kind == "postgres" and any(a.place.kind == "postgres" and a.place != place for a in run.active):
        run.seen.append("two databases of one cluster at once")


async def finish(engine: Engine, run: Run) -> str:
    ending = run.rng.choice(["rollback", "abort_all", "crash"])
    if ending == "rollback":
        for active in run.rng.sample(run.active, len(run.active)):
            result = await engine.rollback(active.experiment_id)
            assert all(s["status"] == "COMPLETE" for s in result["steps"]), (run.seed, result["steps"])
    elif ending == "abort_all":
        result = await engine.abort_all("randomized safety test")
        assert all(s["status"] == "COMPLETE" for s in result["reverted"]), (run.seed, result)
    else:  # the server dies: nothing of it survives but the journal; recover works from that alone
        for supervisor in engine._supervisors.values():
            supervisor.stop()
        engine._supervisors.clear()
        steps = await operations._recover(engine, lambda experiment_id, deadline: True, "test")
        operations._free_stale_holds(engine, min_age=0.0)
        assert all(s["status"] == "COMPLETE" for s in steps), (run.seed, steps)
    run.active.clear()
    return ending


async def one_run(seed: int, pool: list[Place], databases: dict[str, str], server: RedisServer) -> list[str]:
    run, toml = configure(seed, pool)
    async with Engine.running(parse_settings(toml)) as engine:
        for _ in range(run.rng.randint(2, 4)):
            await attempt(engine, run, run.rng.choice(list(run.targets)))
            check_reality(run, databases, server)
        ending = await finish(engine, run)
        check_reality(run, databases, server)
        journal = engine.journal
        assert journal.active_faults() == [], f"seed {seed}: the journal still shows active faults"
        assert not journal.list_experiments(state="injected"), f"seed {seed}: still injected"
        assert journal.holds() == {}, f"seed {seed}: holds left: {journal.holds()}"
    return [*run.seen, f"ended by {ending}"]


@pytest.mark.slow
async def test_random_shared_instances_never_stack_never_reach_production_unasked_and_leave_nothing(
    state_dir: Path, postgres_factory: Any, own_redis: RedisServer
) -> None:
    first, second = postgres_factory(), postgres_factory()
    pool = places(first, second, own_redis)
    databases = {"pgA": first.database, "pgB": second.database}
    seeds = [int(os.environ["CHAOS_SAFETY_SEED"])] if "CHAOS_SAFETY_SEED" in os.environ else range(RUNS)
    seen = [what for seed in seeds for what in await one_run(seed, pool, databases, own_redis)]
    if len(seeds) >= 50:
        walked = {what: seen.count(what) for what in sorted(set(seen))}
        for path in (
            "injected",
            "injected after approval",
            "refused",
            "refused: on the place",
            "two databases of one cluster at once",
            "ended by rollback",
            "ended by abort_all",
            "ended by crash",
        ):
            assert walked.get(path), f"{path!r} never happened in {len(seeds)} runs: {walked}"


# ---------------------------------------------------------------- real SIGKILLs of serve and the wardens

KILL_RUNS = int(os.environ.get("CHAOS_SAFETY_KILL_RUNS", "2"))


def shared_config(
    path: Path, database: PostgresDatabase, server: RedisServer, rng: random.Random
) -> list[str]:
    """Two names for one database (two spellings), and test + production Redis databases on one server."""
    names = ["dbkv", "dbenc"]
    rng.shuffle(names)
    spellings = [
        f"postgresql://postgres@{host}:5432/{database.database}" for host in ("127.0.0.1", "localhost")
    ]
    toml = "[policy]\nallow_production = true\n\n"
    for name, dsn in zip(names, spellings, strict=True):
        toml += f'[targets.{name}]\nkind = "postgres"\nenvironment = "test"\ndsn = "{dsn}"\n\n'
    for name, number, environment in (("cache", 0, "test"), ("prod", 1, "production")):
        url = f"redis://{rng.choice(['127.0.0.1', 'localhost'])}:{server.port}/{number}"
        toml += f'[targets.{name}]\nkind = "redis"\nenvironment = "{environment}"\nurl = "{url}"\n\n'
    path.write_text(toml)
    return names


def answers_within(server: RedisServer, seconds: float) -> bool:
    client = redis.Redis(
        host=server.host, port=server.port, socket_timeout=seconds, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except redis.TimeoutError:
        return False
    finally:
        client.close()


async def approve(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"approve": True})


@pytest.mark.slow
async def test_after_sigkill_of_serve_and_its_wardens_recover_frees_every_shared_resource(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase, own_redis: RedisServer
) -> None:
    for seed in range(KILL_RUNS):
        rng = random.Random(seed)
        config, pid_file = tmp_path / f"chaos{seed}.toml", tmp_path / f"serve{seed}.pid"
        first, second = shared_config(config, own_postgres, own_redis, rng)
        async with Client(
            serve_params(state_dir, pid_file, config), mode="legacy", elicitation_callback=approve
        ) as client:  # type: ignore[arg-type]
            ids = {name: await baselined(client, name, rng) for name in (first, second, "cache")}
            result_data(await call_inject(client, ids[first], first))
            refused = await call_inject(client, ids[second], second)
            assert refused.is_error and ids[first] in result_text(refused), result_text(refused)
            result_data(await call_inject(client, ids["cache"], "cache"))  # a person approved it
            assert blocked(own_postgres.database)
            os.kill(server_pid(pid_file), signal.SIGKILL)
        journal = Journal(f"sqlite:///{state_dir / 'journal.sqlite3'}")
        if rng.random() < 0.5 or seed == 0:  # the dead-man switches die too: recover alone must do it all
            for experiment_id in (ids[first], ids["cache"]):
                for event in journal.events(experiment_id, ["faults_injected"]):
                    with contextlib.suppress(ProcessLookupError, TypeError):
                        os.kill(int(event.data["warden_pid"]), signal.SIGKILL)
            for fault in journal.faults(ids[first]):
                kill_matching(str(fault.record["fields"]["warden_tag"]))
        journal.close()
        assert blocked(own_postgres.database), "the fault outlived the server, as it should until recovered"
        done = subprocess.run(
            [sys.executable, "-m", "chaos_mcp.cli", "--config", str(config), "recover"],
            env={**os.environ, "CHAOS_MCP_STATE_DIR": str(state_dir)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert not blocked(own_postgres.database)
        assert answers_within(own_redis, 0.2)
        journal = Journal(f"sqlite:///{state_dir / 'journal.sqlite3'}")
        assert journal.active_faults() == [] and journal.holds() == {}
        assert not journal.list_experiments(state="injected")
        journal.close()


async def baselined(client: Client, name: str, rng: random.Random) -> str:
    plan = {
        "experiment_type": "infrastructure",
        "target_component": name,
        "scenario": "redis_timeout" if name == "cache" else "db_connection_loss",
        "parameters": {"mode": rng.choice(["ALL", "WRITE"])} if name == "cache" else {},
        "hypothesis": f"When {name} fails, the application should degrade gracefully and recover.",
        "environment": "test",
        "blast_radius": {"scope": f"{name} only", "targets": [name]},
        "duration": "60s",
        "rollback_plan": ["Revert the fault", "Verify the service answers normally"],
    }
    experiment_id = result_data(await client.call_tool("design_experiment", plan))["experiment_id"]
    result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
    return str(experiment_id)


async def call_inject(client: Client, experiment_id: str, name: str) -> Any:
    return await client.call_tool(
        "inject_failure", {"experiment_id": experiment_id, "environment": "test", "target_component": name}
    )


# ---------------------------------------------------------------- real SIGKILLs of the proxy daemon

PROXY_RUNS = int(os.environ.get("CHAOS_SAFETY_PROXY_RUNS", "3"))
NETWORK = {
    "network_latency": {"latency_ms": 300},
    "network_down": {},
    "network_reset": {},
    "bandwidth_limit": {"rate_kbps": 8},
}


@pytest.fixture
def proxy_ports() -> Iterator[list[int]]:
    """Ports for supervised proxy daemons the engine starts; each and its supervisor die afterwards."""
    ports: list[int] = []
    yield ports
    for port in ports:
        kill_matching(f"chaos_mcp.cli proxy --host 127.0.0.1 --port {port}")


def daemon_version(api: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = httpx.get(f"{api}/version", timeout=1).json()
    except httpx.HTTPError:
        return None
    return found


async def restarted(api: str, old_pid: int) -> dict[str, Any]:
    with anyio.fail_after(15):
        while (found := daemon_version(api)) is None or found["pid"] == old_pid:
            await anyio.sleep(0.05)
    return found


@pytest.mark.slow
async def test_after_sigkill_of_the_proxy_daemon_mid_fault_recover_leaves_the_proxy_up_without_toxics(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer, proxy_ports: list[int]
) -> None:
    for seed in range(PROXY_RUNS):
        rng = random.Random(seed)
        scenario = rng.choice(sorted(NETWORK))
        # A daemon of its own per run: its supervisor gives up after 5 deaths in 30 s (a crash loop).
        proxy_ports.append(free_port())
        listen, api = free_port(), f"http://127.0.0.1:{proxy_ports[-1]}"
        config = tmp_path / f"chaos{seed}.toml"
        config.write_text(
            f'[journal]\nurl = "sqlite:///{tmp_path / "journal.sqlite3"}"\n\n'
            '[policy]\non_disconnect = "continue"\n\n'
            f'[proxy]\napi = "{api}"\n\n[targets.cache]\nkind = "redis"\nenvironment = "test"\n'
            f'url = "{own_redis.url}"\n'
            f'proxy = {{ listen = "127.0.0.1:{listen}", upstream = "127.0.0.1:{own_redis.port}" }}\n'
        )
        settings = load_settings(str(config))
        plan = {
            "experiment_type": "infrastructure",
            "target_component": "cache",
            "scenario": scenario,
            "parameters": NETWORK[scenario],
            "hypothesis": "When the cache's network fails, the application should degrade and recover.",
            "environment": "test",
            "blast_radius": {"scope": "through the proxy only", "targets": ["cache"]},
            "duration": "60s",
            "rollback_plan": ["Remove the toxic", "Verify the cache answers normally"],
            "baseline_known_degraded": True,
        }
        async with Engine.running(settings) as engine:  # the server: dies below, its journal stays
            experiment_id = engine.design(plan)["experiment_id"]
            await engine.measure(experiment_id)
            await engine.inject(experiment_id, "test", "cache")
            with httpx.Client(base_url=api, headers=token_header(state_dir), timeout=5) as control:
                assert control.get("/proxies/cache/toxics").json(), f"seed {seed}: no toxic in force"
            for supervisor in engine._supervisors.values():
                supervisor.stop()
            engine._supervisors.clear()
            for _ in range(rng.randint(1, 2)):  # the daemon dies, once or twice in a row
                before = await restarted(api, -1)
                os.kill(before["pid"], signal.SIGKILL)
                if rng.random() < 0.5:  # recover while the supervisor is still restarting it, or after
                    await restarted(api, before["pid"])
        with contextlib.suppress(ProcessLookupError, TypeError):
            warden = Journal(settings.journal.resolved_url()).events(experiment_id, ["faults_injected"])
            os.kill(int(warden[0].data["warden_pid"]), signal.SIGKILL)  # recover alone must do it
        done = subprocess.run(
            [sys.executable, "-m", "chaos_mcp.cli", "--config", str(config), "recover"],
            env={**os.environ, "CHAOS_MCP_STATE_DIR": str(state_dir)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"seed {seed} ({scenario}): {done.stdout}{done.stderr}"
        with httpx.Client(base_url=api, headers=token_header(state_dir), timeout=5) as control:
            assert control.get("/proxies/cache").json()["enabled"] is True, f"seed {seed}"
            assert control.get("/proxies/cache/toxics").json() == [], f"seed {seed} ({scenario})"
        with redis.Redis(host="127.0.0.1", port=listen, socket_timeout=2) as through_proxy:
            assert through_proxy.ping(), f"seed {seed}: no traffic through the restarted proxy"
        journal = Journal(settings.journal.resolved_url())
        assert journal.active_faults() == [] and journal.holds() == {}, f"seed {seed}"
        assert {f.status for f in journal.faults(experiment_id)} == {"reverted"}, f"seed {seed}"
        assert not journal.list_experiments(state="injected"), f"seed {seed}"
        journal.close()
        kill_matching(f"chaos_mcp.cli proxy --host 127.0.0.1 --port {proxy_ports[-1]}")


def token_header(state: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {(state / 'proxy.token').read_text().strip()}"}
