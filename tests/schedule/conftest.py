"""Shared fixtures: a private state dir, and small random programs for property tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos_mcp.config import ScheduleTarget


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    monkeypatch.setenv("CHAOS_MCP_STATE_DIR", str(state))
    yield state


@pytest.fixture
def target() -> ScheduleTarget:
    return ScheduleTarget(kind="schedule", environment="test")
