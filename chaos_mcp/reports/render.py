"""Render the spec's reports (Markdown, JSON, HTML) from the journal with jinja2."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from chaos_mcp.durations import format_duration
from chaos_mcp.engine.lifecycle import State
from chaos_mcp.reports.evidence import collect
from chaos_mcp.secrets import redact_text

if TYPE_CHECKING:
    from chaos_mcp.engine.core import Engine

_env = Environment(
    loader=PackageLoader("chaos_mcp.reports", "templates"),
    undefined=StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_env.filters["duration"] = lambda s: "n/a" if s is None else format_duration(float(s))


def experiment_facts(engine: Engine, experiment_id: str) -> dict[str, Any]:
    row, design = engine.load(experiment_id)
    facts = collect(row, design, engine.journal.events(experiment_id), engine.journal.faults(experiment_id))
    return {
        "experiment_id": experiment_id,
        "state": row.state,
        "design": design.model_dump(mode="json"),
        "title": f"{design.scenario} on {design.target_component}",
        **facts,
    }


def generate_report(
    engine: Engine, experiment_id: str | None, since: str | None, until: str | None, fmt: str
) -> dict[str, Any]:
    from chaos_mcp.engine.core import EngineError

    if experiment_id is None and since is None:
        raise EngineError(
            "generate_report needs experiment_id (one experiment) or since (a period report, "
            "e.g. since='2026-11-01')."
        )
    if experiment_id is not None:
        row, _ = engine.load(experiment_id)
        from chaos_mcp.engine.lifecycle import require

        require("generate_report", experiment_id, State(row.state))
        facts = experiment_facts(engine, experiment_id)
        markdown = _env.get_template("experiment.md.j2").render(**facts)
        engine.journal.transition(
            experiment_id, [State.ROLLED_BACK], State.REPORTED, {"status": facts["status"]}
        )
        return _formats(engine, fmt, markdown, facts)
    start, end = (
        _date(since or "", "since"),
        _date(until, "until") if until else datetime.now(UTC).timestamp(),
    )
    rows = engine.journal.list_experiments(limit=10_000, since=start, until=end)
    experiments = [experiment_facts(engine, r.id) for r in rows]
    facts = {
        "since": since,
        "until": until or datetime.now(UTC).date().isoformat(),
        "experiments": experiments,
        "confirmed": sum(e["status"] == "HYPOTHESIS_CONFIRMED" for e in experiments),
        "vulnerabilities": sum(e["status"] == "HYPOTHESIS_REJECTED" for e in experiments),
    }
    markdown = _env.get_template("period.md.j2").render(**facts)
    return _formats(engine, fmt, markdown, facts)


def _formats(engine: Engine, fmt: str, markdown: str, facts: dict[str, Any]) -> dict[str, Any]:
    secrets = engine.settings.secrets()
    markdown = redact_text(markdown, secrets)
    data = json.loads(redact_text(json.dumps(facts, default=str), secrets))
    result: dict[str, Any] = {"markdown": markdown, "status": facts.get("status")}
    if fmt in ("json", "html"):
        result["json"] = data
    if fmt == "html":
        result["html"] = redact_text(
            _env.get_template("experiment.html.j2").render(markdown=markdown, facts=data), secrets
        )
    return result


def _date(text: str, field: str) -> float:
    from chaos_mcp.engine.core import EngineError

    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise EngineError(f"{field}: {text!r} is not a date; use ISO 8601 such as 2026-11-01") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
