"""The HTML report is one self-contained page whose inline SVG timeline a real browser draws."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chaos_mcp.reports.render import experiment_report, period_report
from tests.reports.conftest import Ran
from tests.reports.png import pixels

INJECTED_BAND = bytes((0xFE, 0xE2, 0xE2))  # the timeline's "injected" phase fill
BASELINE_BAND = bytes((0xDB, 0xEA, 0xFE))


def html_of(ran: Ran, name: str) -> str:
    return str(experiment_report(ran.engine(), ran.ids[name], "html")["html"])


def test_the_html_page_is_self_contained_with_an_inline_svg_timeline(ran: Ran) -> None:
    page = html_of(ran, "confirmed")
    assert page.startswith("<!doctype html>") and "<svg" in page and "<polyline" in page
    assert not re.search(r"<script|<link|src=|@import|url\(", page), "no scripts and no external assets"
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"]
    for phase in ("baseline", "injected", "recovery"):
        assert f"<title>{phase}</title>" in page
    assert 'data-metric="schedule.max_utilization"' in page
    assert "HYPOTHESIS_CONFIRMED" in page and "Quality Gates" in page


def test_text_from_the_journal_is_escaped_in_the_html(ran: Ran) -> None:
    page = html_of(ran, "aborted")
    assert "coverage_pct &lt; 99%" in page and "coverage_pct < 99%" not in page


def test_the_period_report_has_an_html_page_with_one_timeline_per_experiment(ran: Ran) -> None:
    page = str(period_report(ran.engine(), "2020-01-01", None, "html")["html"])
    assert "<h1>Chaos Engineering Report</h1>" in page
    assert page.count("<svg") == len(ran.ids)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium")
    return found


@pytest.mark.slow
def test_headless_chromium_draws_the_timeline_of_the_html_report(ran: Ran, tmp_path: Path) -> None:
    page, shot = tmp_path / "report.html", tmp_path / "report.png"
    page.write_text(html_of(ran, "confirmed"), encoding="utf-8")
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    assert shot.stat().st_size > 20_000
    width, height, rows = pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    non_white = sum(1 for row in rows for i in range(0, len(row), 3) if row[i : i + 3] != b"\xff\xff\xff")
    assert non_white > width * height * 0.05, "the page is drawn, not blank"
    top = rows[: height // 2]
    injected = sum(row.count(INJECTED_BAND) for row in top)
    baseline = sum(row.count(BASELINE_BAND) for row in top)
    assert injected > 10_000, f"the injected phase of the timeline is visible ({injected} px)"
    assert baseline > 100, f"the baseline phase of the timeline is visible ({baseline} px)"
