"""Resource holds in the journal: one experiment per physical resource, containment included."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from chaos_mcp.engine.journal import ExperimentRow, Journal
from tests.fixtures.services import PostgresDatabase

SERVER, DB0, DB1 = "resource:redis:abc", "resource:redis:abc/db:0", "resource:redis:abc/db:1"


def injected(journal: Journal, *experiment_ids: str) -> Journal:
    """Experiments that are injected (holds of experiments that are over are cleared when in the way)."""
    for experiment_id in experiment_ids:
        now = time.time()
        journal.create_experiment(ExperimentRow(experiment_id, "t", "test", "s", "injected", now, now, {}))
    return journal


@pytest.fixture(params=["sqlite", "postgres"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    database: PostgresDatabase = request.getfixturevalue("own_postgres")
    return f"postgresql://postgres@{database.host}:{database.port}/{database.database}"


def test_a_database_and_the_server_that_contains_it_cannot_be_held_by_two_experiments(
    journal_url: str,
) -> None:
    journal = injected(Journal(journal_url), "e1", "e2", "e3", "e4")
    assert journal.acquire_holds([DB0], "e1") is None
    assert journal.acquire_holds([SERVER], "e2") == (DB0, "e1")
    assert journal.acquire_holds([DB0], "e2") == (DB0, "e1")
    assert journal.acquire_holds([DB1], "e2") is None  # another database of the same server is free
    journal.release_holds_of("e1")
    assert journal.acquire_holds([SERVER], "e3") == (DB1, "e2")
    journal.release_holds_of("e2")
    assert journal.acquire_holds([SERVER], "e3") is None
    assert journal.acquire_holds([DB0], "e4") == (SERVER, "e3")
    journal.close()


def test_faults_of_one_experiment_may_share_a_resource_and_a_refusal_takes_nothing(journal_url: str) -> None:
    journal = injected(Journal(journal_url), "e1", "e2")
    assert journal.acquire_holds(["db", SERVER, DB0], "e1") is None
    assert journal.acquire_holds([DB0, SERVER], "e1") is None  # taking them again is fine
    assert journal.acquire_holds(["other", DB1], "e2") == (SERVER, "e1")
    assert "other" not in journal.holds()  # all or nothing
    journal.close()


def test_a_key_that_only_starts_like_another_does_not_overlap(journal_url: str) -> None:
    journal = injected(Journal(journal_url), "e1", "e2")
    assert journal.acquire_holds(["resource:pg:12/db:1"], "e1") is None
    assert journal.acquire_holds(["resource:pg:12/db:10", "resource:pg:1"], "e2") is None
    journal.close()


def race(url: str, round_: int) -> list[object]:
    """Two journals (as two servers would hold) take a server and one of its databases at once."""
    journals = [Journal(url), Journal(url)]
    injected(journals[0], f"r{round_}-0", f"r{round_}-1")
    start = threading.Barrier(2)
    results: dict[int, object] = {}
    wanted = [[f"{SERVER}{round_}"], [f"{SERVER}{round_}/db:0"]]

    def take(index: int) -> None:
        start.wait()
        results[index] = journals[index].acquire_holds(wanted[index], f"r{round_}-{index}")

    threads = [threading.Thread(target=take, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for journal in journals:
        journal.close()
    return list(results.values())


def test_two_journals_racing_for_overlapping_resources_let_exactly_one_win(
    own_postgres: PostgresDatabase,
) -> None:
    url = f"postgresql://postgres@{own_postgres.host}:{own_postgres.port}/{own_postgres.database}"
    Journal(url).close()
    for round_ in range(10):
        results = race(url, round_)
        assert sorted(r is None for r in results) == [False, True], results


def test_a_resource_stays_held_while_a_fault_whose_revert_failed_is_in_force(journal_url: str) -> None:
    journal = injected(Journal(journal_url), "e1", "e2")
    journal.write_ahead("e1-f0", "e1", 0, {"kind": "postgres.block_connections"}, time.time() + 60)
    journal.set_fault_status("e1-f0", "revert_failed")
    assert journal.acquire_holds(["db", DB0], "e1") is None
    assert journal.transition("e1", ["injected"], "aborted", {})  # the experiment is over …
    assert journal.holds() == {"db": "e1", DB0: "e1"}  # … but its target and database stay held
    journal.release_hold(DB0, "e1")  # what recover does with holds of experiments that are over
    assert journal.acquire_holds([DB0, "db"], "e2") == (DB0, "e1")
    journal.set_fault_status("e1-f0", "reverted")  # recover retried it, and it worked
    assert journal.acquire_holds(["db", DB0], "e2") is None
    assert journal.holds() == {"db": "e2", DB0: "e2"}
    journal.close()
