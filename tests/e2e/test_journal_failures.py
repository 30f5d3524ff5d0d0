"""Operator commands and injections on a journal that is damaged, read-only, missing or on a full disk:
one line a person can act on and a non-zero exit, never a traceback, never a hold or a half-state."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos_mcp.config import JournalSettings, embedded_default
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.errors import EngineError
from chaos_mcp.engine.journal import Journal
from tests.helpers import valid_design

COMMANDS = ["recover", "abort", "arm"]


@contextlib.contextmanager
def small_mount(where: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of its own: a disk that can really be filled, or remounted read-only."""
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=False)
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def run_cli(tmp_path: Path, journal: Path, command: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "chaos.toml"
    config.write_text(f'[journal]\nurl = "sqlite:///{journal}"\n')
    env = {**os.environ, "CHAOS_MCP_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run(
        [sys.executable, "-m", "chaos_mcp.cli", command, "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def assert_one_line_refusal(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chaos-mcp: "), done.stderr
    assert expected in lines[0], lines[0]


def a_written_journal(path: Path) -> None:
    journal = Journal(f"sqlite:///{path}")
    journal.set_control("armed", "true")
    journal.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_journal_of_garbage_bytes_is_refused_in_one_line(tmp_path: Path, command: str) -> None:
    journal = tmp_path / "journal.sqlite3"
    journal.write_bytes(os.urandom(64 * 1024))
    assert_one_line_refusal(run_cli(tmp_path, journal, command), "the journal")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_journal_damaged_after_its_header_is_refused_in_one_line(tmp_path: Path, command: str) -> None:
    journal = tmp_path / "journal.sqlite3"
    a_written_journal(journal)
    data = bytearray(journal.read_bytes())
    data[100:] = os.urandom(len(data) - 100)  # the header says SQLite, every page is garbage
    journal.write_bytes(bytes(data))
    assert_one_line_refusal(run_cli(tmp_path, journal, command), "the journal")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_journal_is_refused_not_created(tmp_path: Path, command: str) -> None:
    journal = tmp_path / "nowhere" / "journal.sqlite3"
    assert_one_line_refusal(run_cli(tmp_path, journal, command), "does not exist")
    assert not journal.exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_journal_on_a_read_only_filesystem_is_refused_in_one_line(tmp_path: Path, command: str) -> None:
    with small_mount(tmp_path / "ro") as mount:
        a_written_journal(mount / "journal.sqlite3")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        assert_one_line_refusal(run_cli(tmp_path, mount / "journal.sqlite3", command), "the journal")


@pytest.mark.anyio
async def test_a_full_disk_at_inject_says_so_and_leaves_no_hold(tmp_path: Path, state_dir: Path) -> None:
    with small_mount(tmp_path / "disk") as disk:
        url = f"sqlite:///{disk / 'journal.sqlite3'}"
        settings = embedded_default().model_copy(update={"journal": JournalSettings(url=url)})
        async with Engine.running(settings) as engine:
            experiment_id = engine.design(valid_design(duration="5s"))["experiment_id"]
            await engine.measure(experiment_id)
            filler = disk / "filler"
            with open(filler, "wb") as out, contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            with pytest.raises(EngineError) as refused:
                await engine.inject(experiment_id, "test", "schedule")
            message = str(refused.value)
            assert message.startswith("the journal could not be written: "), message
            assert "full" in message and "Traceback" not in message
            filler.unlink()
            assert engine.journal.holds() == {}
            assert engine.journal.active_faults() == []
            state = engine.journal.get_experiment(experiment_id)
            assert state is not None and state.state != "injected"
            again = engine.design(valid_design(duration="2s"))["experiment_id"]
            await engine.measure(again)
            await engine.inject(again, "test", "schedule")
            await engine.rollback(again)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


@pytest.mark.anyio
@pytest.mark.parametrize("step", ["design", "measure", "rollback"])
async def test_a_full_disk_at_another_step_says_so_in_one_sentence(
    tmp_path: Path, state_dir: Path, step: str
) -> None:
    from chaos_mcp.engine.journal import JournalError
    from chaos_mcp.schedule.api import schedule_metrics

    def coverage() -> float:
        return float(schedule_metrics("schedule", settings.targets["schedule"])["coverage_pct"])  # type: ignore[arg-type]

    with small_mount(tmp_path / "disk") as disk:
        url = f"sqlite:///{disk / 'journal.sqlite3'}"
        settings = embedded_default().model_copy(update={"journal": JournalSettings(url=url)})
        async with Engine.running(settings) as engine:
            experiment_id = (
                "" if step == "design" else engine.design(valid_design(duration="30s"))["experiment_id"]
            )
            if step == "rollback":
                await engine.measure(experiment_id)
                await engine.inject(experiment_id, "test", "schedule")
                assert coverage() < 100
            filler = fill(disk)
            with pytest.raises((EngineError, JournalError, ExceptionGroup)) as refused:
                if step == "design":
                    engine.design(valid_design(duration="30s"))
                elif step == "measure":
                    await engine.measure(experiment_id)
                else:
                    await engine.rollback(experiment_id)
            error: BaseException = refused.value
            while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                error = error.exceptions[0]  # as the MCP layer shows it: the one refusal inside
            assert str(error).startswith("the journal could not be written: "), str(error)
            filler.unlink()
            if step == "rollback":
                assert coverage() == 100  # the fault itself was reverted; the journal catches up below
                await engine.rollback(experiment_id)
                row = engine.journal.get_experiment(experiment_id)
                assert row is not None and row.state == "rolled_back"
                assert engine.journal.active_faults() == [] and engine.journal.holds() == {}
