"""The journal: durable, append-only, shared safely by several processes, SQLite or PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos_mcp.engine.journal import ExperimentRow, Journal, JournalError
from tests.fixtures.services import PostgresDatabase

WRITER = """
import sys, time
from chaos_mcp.engine.journal import ExperimentRow, Journal
journal = Journal(sys.argv[1])
for n in range(int(sys.argv[3])):
    experiment_id = f"{sys.argv[2]}-{n}"
    now = time.time()
    journal.create_experiment(ExperimentRow(experiment_id, "t", "test", "s", "designed", now, now, {"n": n}))
    for k in range(5):
        journal.append(experiment_id, "step", {"k": k})
    journal.transition(experiment_id, ["designed"], "baselined", {})
"""


def row(experiment_id: str, target: str = "schedule") -> ExperimentRow:
    now = time.time()
    return ExperimentRow(experiment_id, target, "test", "n1_removal", "designed", now, now, {"a": 1})


@pytest.fixture(params=["sqlite", "postgres"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    database: PostgresDatabase = request.getfixturevalue("own_postgres")
    return f"postgresql://postgres@{database.host}:{database.port}/{database.database}"


def test_events_survive_a_restart_in_order(journal_url: str) -> None:
    journal = Journal(journal_url)
    journal.create_experiment(row("e1"))
    journal.append("e1", "measurement", {"phase": "baseline"})
    journal.close()
    reopened = Journal(journal_url)
    assert [e.kind for e in reopened.events("e1")] == ["designed", "measurement"]
    assert reopened.get_experiment("e1") is not None
    reopened.close()


def test_a_state_change_happens_only_from_the_expected_state(journal_url: str) -> None:
    journal = Journal(journal_url)
    journal.create_experiment(row("e1"))
    assert journal.transition("e1", ["designed"], "baselined", {})
    assert not journal.transition("e1", ["designed"], "baselined", {})
    experiment = journal.get_experiment("e1")
    assert experiment is not None and experiment.state == "baselined"
    journal.close()


def test_one_active_experiment_per_target(journal_url: str) -> None:
    journal = Journal(journal_url)
    assert journal.acquire_hold("db", "e1") is None
    assert journal.acquire_hold("db", "e1") is None
    assert journal.acquire_hold("db", "e2") == "e1"
    journal.release_hold("db", "e1")
    assert journal.acquire_hold("db", "e2") is None
    journal.close()


def test_write_ahead_records_are_listed_until_reverted(journal_url: str) -> None:
    journal = Journal(journal_url)
    journal.create_experiment(row("e1"))
    journal.write_ahead("e1-f0", "e1", 0, {"kind": "k", "fields": {}}, time.time() + 5)
    assert [f.id for f in journal.active_faults()] == ["e1-f0"]
    journal.set_fault_status("e1-f0", "reverted")
    assert journal.active_faults() == []
    journal.close()


def test_two_processes_writing_at_once_do_not_corrupt_the_journal(journal_url: str) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, journal_url, name, "25"], stderr=subprocess.PIPE, text=True
        )
        for name in ("alpha", "beta")
    ]
    outcomes = [(w.wait(timeout=60), w.communicate()[1]) for w in writers]
    assert [code for code, _ in outcomes] == [0, 0], "\n".join(err[-1500:] for _, err in outcomes)
    journal = Journal(journal_url)
    experiments = journal.list_experiments(limit=1000)
    assert len(experiments) == 50 and {e.state for e in experiments} == {"baselined"}
    for experiment in experiments:
        kinds = [e.kind for e in journal.events(experiment.id)]
        assert kinds == ["designed", "step", "step", "step", "step", "step", "baselined"]
    journal.close()


def test_an_unusable_journal_url_gets_an_error_that_names_the_accepted_forms() -> None:
    with pytest.raises(JournalError, match="sqlite:/// or postgresql://"):
        Journal("mysql://x")
