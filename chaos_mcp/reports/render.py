"""Render the spec's reports (Markdown, JSON, HTML) from the journal with jinja2.

generate_report(engine, experiment_id, since, until, fmt)   the tool: renders, and moves a
                                                             rolled-back experiment to `reported`
experiment_report(engine, experiment_id, fmt)                renders only (resources, CLI)
period_report(engine, since, until, fmt)                     the period report
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from chaos_mcp.durations import format_duration
from chaos_mcp.engine.errors import EngineError
from chaos_mcp.engine.lifecycle import State, require
from chaos_mcp.reports.evidence import experiment_facts
from chaos_mcp.reports.journal_view import ExperimentView
from chaos_mcp.reports.period import period_facts
from chaos_mcp.reports.svg import render_svg
from chaos_mcp.secrets import redact_text

if TYPE_CHECKING:
    from chaos_mcp.engine.core import Engine

FORMATS = ("markdown", "json", "html")


_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")


def _markdown_safe(value: Any) -> Any:
    """Markdown passes raw HTML through to whatever renders it, so a hypothesis's `<script>` must arrive
    as text. Raw HTML (and autolinks) can only begin with `<` and a letter, `/`, `!` or `?`; escaping
    just that `<` keeps criteria such as `latency <= 500` readable."""
    if value is None or isinstance(value, int | float):
        return value
    return _HTML_START.sub("&lt;", str(value))


def _environment(autoescape: bool) -> Environment:
    env = Environment(
        finalize=None if autoescape else _markdown_safe,
        loader=PackageLoader("chaos_mcp.reports", "templates"),
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["duration"] = lambda s: "n/a" if s is None else format_duration(float(s))
    env.filters["cell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    return env


_markdown = _environment(autoescape=False)
_html = _environment(autoescape=True)


def view_of(engine: Engine, experiment_id: str) -> ExperimentView:
    row, design = engine.load(experiment_id)
    return ExperimentView.build(
        row, design, engine.journal.events(experiment_id), engine.journal.faults(experiment_id)
    )


def experiment_report(engine: Engine, experiment_id: str, fmt: str = "markdown") -> dict[str, Any]:
    """The experiment report, without changing the experiment's state."""
    _check_format(fmt)
    row, _ = engine.load(experiment_id)
    stopped_in_recovery = row.state == State.ABORTED and engine.journal.events(experiment_id, ["rollback"])
    if not stopped_in_recovery:
        require("generate_report", experiment_id, State(row.state))
    facts = experiment_facts(view_of(engine, experiment_id))
    markdown = _markdown.get_template("experiment.md.j2").render(**facts)
    return _formats(engine, fmt, markdown, facts, "experiment.html.j2")


def generate_report(
    engine: Engine, experiment_id: str | None, since: str | None, until: str | None, fmt: str
) -> dict[str, Any]:
    if experiment_id is None and since is None:
        raise EngineError(
            "generate_report needs experiment_id (one experiment) or since (a period report, "
            "e.g. since='2026-11-01')."
        )
    if experiment_id is None:
        return period_report(engine, since or "", until, fmt)
    result = experiment_report(engine, experiment_id, fmt)
    engine.journal.transition(
        experiment_id, [State.ROLLED_BACK], State.REPORTED, {"status": result["status"]}
    )
    return result


def period_report(engine: Engine, since: str, until: str | None, fmt: str = "markdown") -> dict[str, Any]:
    _check_format(fmt)
    start = _date(since, "since")
    end = _date(until, "until", end_of_day=True) if until else datetime.now(UTC).timestamp()
    if end < start:
        raise EngineError(f"until ({until}) is before since ({since}); give a period that runs forward.")
    rows = engine.journal.list_experiments(limit=10_000, since=start, until=end)
    experiments = [experiment_facts(view_of(engine, r.id)) for r in reversed(rows)]
    facts = period_facts(since, until or datetime.now(UTC).isoformat(timespec="seconds"), experiments)
    markdown = _markdown.get_template("period.md.j2").render(**facts)
    result = _formats(engine, fmt, markdown, facts, "period.html.j2")
    result["status"] = None
    return result


def _formats(engine: Engine, fmt: str, markdown: str, facts: dict[str, Any], html: str) -> dict[str, Any]:
    secrets = engine.settings.secrets()
    result: dict[str, Any] = {"markdown": redact_text(markdown, secrets), "status": facts.get("status")}
    if fmt in ("json", "html"):
        result["json"] = json.loads(redact_text(json.dumps(_public(facts), default=str), secrets))
    if fmt == "html":
        page = _html.get_template(html).render(facts=facts, markdown=markdown, svg=_svgs(facts))
        result["html"] = redact_text(page, secrets)
    return result


def _public(facts: dict[str, Any]) -> dict[str, Any]:
    """JSON facts: everything except what only the HTML needs twice."""
    return {k: v for k, v in facts.items() if k != "svg"}


def _svgs(facts: dict[str, Any]) -> dict[str, str]:
    if "timeline" in facts:
        return {facts["experiment_id"]: render_svg(facts["timeline"])}
    return {e["experiment_id"]: render_svg(e["timeline"]) for e in facts.get("experiments", [])}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise EngineError(f"format {fmt!r} is not supported; use one of: {', '.join(FORMATS)}.")


def _date(text: str, field: str, end_of_day: bool = False) -> float:
    """An ISO date or datetime; a bare date as `until` means the end of that day."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise EngineError(f"{field}: {text!r} is not a date; use ISO 8601 such as 2026-11-01") from None
    stamp = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return stamp + 86_400 - 0.001 if end_of_day and len(text) == 10 else stamp
