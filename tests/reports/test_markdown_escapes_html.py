"""Markdown reports carry what people typed as text: no raw HTML from a hypothesis or a criterion."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos_mcp.config import JournalSettings, embedded_default
from chaos_mcp.engine.core import Engine
from chaos_mcp.reports.render import experiment_report
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio
SCRIPT = "<script src=https://evil.example/x.js></script>"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_script_tag_in_the_hypothesis_reaches_the_markdown_report_escaped(
    tmp_path: Path, state_dir: Path
) -> None:
    settings = embedded_default().model_copy(
        update={"journal": JournalSettings(url=f"sqlite:///{tmp_path / 'journal.sqlite3'}")}
    )
    design = valid_design(
        duration="2s",
        hypothesis=f"When the busiest faculty member is absent {SCRIPT}, the schedule should keep coverage.",
        rollback_plan=["Remove the absence overlay <img src=x onerror=alert(1)>", "Verify coverage"],
        success_criteria=["max_utilization <= 0.8"],
    )
    async with Engine.running(settings) as engine:
        experiment_id = engine.design(design)["experiment_id"]
        await engine.measure(experiment_id)
        await engine.inject(experiment_id, "test", "schedule", wait=True)
        await engine.rollback(experiment_id)
        result = experiment_report(engine, experiment_id, "html")
    markdown = str(result["markdown"])
    assert "&lt;script src=https://evil.example/x.js>&lt;/script>" in markdown, markdown
    assert "<script" not in markdown and "<img" not in markdown
    assert "| max_utilization | <= 0.8 |" in markdown  # comparisons stay readable
    assert "<script src=" not in str(result["html"])
