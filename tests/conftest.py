"""Shared test setup: every test run keeps its state (journal, schedule overlays) in a temp dir."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos_mcp.logs import configure_logging

pytest_plugins = ["tests.fixtures.services"]

_STATE = tempfile.mkdtemp(prefix="chaos-mcp-test-state-")
os.environ.setdefault("CHAOS_MCP_STATE_DIR", _STATE)
os.environ.pop("CHAOS_MCP_CONFIG", None)
configure_logging("INFO")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private state dir (journal, overlays) for one test."""
    path = tmp_path / "state"
    path.mkdir()
    monkeypatch.setenv("CHAOS_MCP_STATE_DIR", str(path))
    yield path
