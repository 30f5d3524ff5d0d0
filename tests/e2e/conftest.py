"""MCP clients against a real chaos-mcp server: in memory (both protocol eras), stdio, Inspector."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from chaos_mcp.config import JournalSettings, Settings, embedded_default
from chaos_mcp.server import build_server
from tests.helpers import free_port, kill_matching

ERAS = ["legacy", "auto"]


def settings_with_journal(tmp_path: Path, base: Settings | None = None) -> Settings:
    base = base or embedded_default()
    return base.model_copy(
        update={"journal": JournalSettings(url=f"sqlite:///{tmp_path / 'journal.sqlite3'}")}
    )


@pytest.fixture(params=ERAS)
def era(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(tmp_path: Path, state_dir: Path, era: str) -> AsyncIterator[Client]:
    async with Client(build_server(settings_with_journal(tmp_path)), mode=era) as connected:  # type: ignore[arg-type]
        yield connected


def result_data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result_text(result)
    data = result.structured_content
    if data is None:
        data = json.loads(result_text(result))
    assert isinstance(data, dict)
    return data


def result_text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


@pytest.fixture
def proxy_port() -> Iterator[int]:
    """A port for the proxy daemon the engine starts detached; the daemon is killed afterwards."""
    port = free_port()
    yield port
    kill_matching(f"chaos_mcp.cli proxy --host 127.0.0.1 --port {port}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
