"""No line of a report is printed twice, whatever the scenario and the format."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from chaos_mcp.reports.render import experiment_report
from tests.reports.conftest import Ran

RUN = ["rejected", "confirmed", "aborted", "detected", "crashed", "observed_twice"]
BORDER = re.compile(r"^\|?[\s|:-]*\|?$")
TAG_ONLY = re.compile(r"^(<[^>]+>\s*)+$")


def duplicates(lines: list[str]) -> dict[str, int]:
    meaningful = [line.strip() for line in lines if line.strip() and not BORDER.match(line.strip())]
    return {line: n for line, n in Counter(meaningful).items() if n > 1}


def html_text_lines(html: str) -> list[str]:
    """The HTML page's lines of text: not its CSS, not the Markdown it embeds, not the charts' points."""
    body = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    body = re.sub(r"<(script|textarea|pre|svg)[^>]*>.*?</\1>", "", body, flags=re.S)
    return [line for line in body.splitlines() if not TAG_ONLY.match(line.strip())]


@pytest.mark.parametrize("name", RUN)
def test_no_report_line_is_printed_twice_in_any_format(ran: Ran, name: str) -> None:
    result = experiment_report(ran.engine(), ran.ids[name], "html")
    markdown, facts, html = str(result["markdown"]), result["json"], str(result["html"])
    assert isinstance(facts, dict)
    assert duplicates(markdown.splitlines()) == {}, markdown
    for listed in ("summary", "unexpected", "recommendations"):
        assert duplicates(facts[listed]) == {}, facts[listed]
    assert duplicates(html_text_lines(html)) == {}


def test_an_observation_made_in_two_measurements_is_summarised_once_by_the_latest(ran: Ran) -> None:
    markdown = str(experiment_report(ran.engine(), ran.ids["observed_twice"])["markdown"])
    suggested = [line for line in markdown.splitlines() if line.startswith("- Suggested coverage")]
    assert len(suggested) == 1 and suggested[0].endswith("(the latest of 2 observations)."), suggested
    deadline = [line for line in markdown.splitlines() if line.startswith("- Deadline reached")]
    assert len(deadline) == 1, markdown


def test_the_duplicate_check_catches_a_repeated_line() -> None:
    assert duplicates(["- Deadline reached at 10:00:00", "|---|---|", "- Deadline reached at 10:00:00"]) == {
        "- Deadline reached at 10:00:00": 2
    }
    assert duplicates(["|---|---|", "|---|---|", "", ""]) == {}
