"""The period "Chaos Engineering Report" over the experiments of the session's journal."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from chaos_mcp.config import JournalSettings
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.errors import EngineError
from chaos_mcp.engine.journal import Journal
from chaos_mcp.reports.render import generate_report, period_report
from tests.helpers import SECRET_PASSWORD, multi_target_settings, valid_design
from tests.reports.conftest import Ran


def test_the_period_report_counts_runs_confirmations_and_vulnerabilities(ran: Ran) -> None:
    result = period_report(ran.engine(), "2020-01-01", None, "json")
    markdown = str(result["markdown"])
    for heading in (
        "## Chaos Engineering Report",
        "**Period:** 2020-01-01 to ",
        "**Experiments Run:** 6",
        "**Hypotheses Confirmed:** 2",
        "**Vulnerabilities Found:** ",
        "### Summary of Findings",
        "### Critical Findings",
        "### Experiments Detail",
        "### Recommendations",
    ):
        assert heading in markdown, heading
    facts = result["json"]
    assert isinstance(facts, dict)
    assert (
        facts["rejected"] == 3
        and facts["failed"] == 1
        and facts["designed_only"] == 2
        and facts["withdrawn"] == 1
    )
    vulnerabilities = re.search(r"\*\*Vulnerabilities Found:\*\* (\d+)", markdown)
    assert vulnerabilities and int(vulnerabilities.group(1)) == len(facts["critical_findings"]) > 0
    assert "NOT RUN (designed)" in markdown
    assert "2 more designed but not run (1 withdrawn)" in markdown
    withdrawn = next(line for line in markdown.splitlines() if ran.ids["withdrawn"] in line)
    assert "NOT RUN (cancelled): not run: withdrawn by rollback while baselined" in withdrawn
    assert ran.ids["aborted"] in markdown.split("### Critical Findings")[1]


def test_the_period_recommendations_are_checkboxes_ordered_by_priority(ran: Ran) -> None:
    markdown = str(period_report(ran.engine(), "2020-01-01", None)["markdown"])
    boxes = [line for line in markdown.split("### Recommendations")[1].splitlines() if line.strip()]
    assert boxes and all(line.startswith("- [ ] Priority ") for line in boxes)
    priorities = [int(line.split("Priority ")[1][0]) for line in boxes]
    assert priorities == sorted(priorities)
    assert all("evidence: " in line for line in boxes)


def test_a_period_that_ends_before_it_begins_or_is_not_a_date_is_refused(ran: Ran) -> None:
    with pytest.raises(EngineError, match="before since"):
        period_report(ran.engine(), "2026-02-01", "2026-01-01")
    with pytest.raises(EngineError, match="ISO 8601"):
        generate_report(ran.engine(), None, "last tuesday", None, "markdown")


def test_a_period_without_experiments_says_so(ran: Ran) -> None:
    markdown = str(period_report(ran.engine(), "2001-01-01", "2001-12-31")["markdown"])
    assert "**Experiments Run:** 0" in markdown and "No experiment was run in this period" in markdown


def test_secrets_of_the_configuration_never_reach_any_format(ran: Ran, tmp_path: Path) -> None:
    copy = tmp_path / "journal.sqlite3"  # a copy, so the shared journal keeps its counts
    with (
        sqlite3.connect(ran.settings.journal.resolved_url().removeprefix("sqlite:///")) as source,
        sqlite3.connect(copy) as target,
    ):
        source.backup(target)
    journal = JournalSettings(url=f"sqlite:///{copy}")
    settings = multi_target_settings().model_copy(update={"journal": journal})
    engine = Engine(settings, Journal(settings.journal.resolved_url()))
    hypothesis = f"When the password {SECRET_PASSWORD} leaks into a design, the report should redact it."
    engine.design(valid_design(hypothesis=hypothesis))
    result = period_report(engine, "2020-01-01", None, "html")
    for text in (result["markdown"], str(result["json"]), result["html"]):
        assert SECRET_PASSWORD not in str(text)
    assert "When the password" in str(result["json"])
