"""MCP prompts (from the `*.prompt.md` files in chaos_mcp/prompts/) and resources.

    register_extras(server, engine)   adds the prompts and these resources to an MCPServer:
        chaos://targets                       the configured targets (secrets redacted)
        chaos://scenarios                     the scenario catalogue
        chaos://experiments/{experiment_id}   one experiment: design, state, faults, recent events
        chaos://experiments/{experiment_id}/report   its report (Markdown); reading it changes nothing

A prompt file is TOML front matter between `+++` lines (name, title, description and one
`[arguments.NAME]` table per argument: description, required, default) and a jinja2 body.
The files ship inside the package, so an installed wheel serves the same prompts.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from chaos_mcp.engine import catalog
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.errors import EngineError

PROMPT_SUFFIX = ".prompt.md"
_jinja = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_jinja.filters["j"] = lambda value: json.dumps(str(value))[1:-1]  # inside a JSON string literal


class PromptFileError(ValueError):
    """A prompt file is malformed; the message names the file and what is wrong."""


@dataclass(frozen=True)
class PromptFile:
    name: str
    title: str
    description: str
    arguments: dict[str, dict[str, Any]]
    body: str

    def render(self, given: dict[str, Any]) -> str:
        unknown = sorted(set(given) - set(self.arguments))
        if unknown:
            raise ValueError(
                f"unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(self.arguments)}"
            )
        values = {
            name: str(given[name]) if given.get(name) not in (None, "") else str(spec.get("default", ""))
            for name, spec in self.arguments.items()
        }
        missing = [n for n, spec in self.arguments.items() if spec.get("required") and not values[n]]
        if missing:
            raise ValueError(f"missing required argument(s): {', '.join(missing)}")
        return _jinja.from_string(self.body).render(**values)

    def prompt(self) -> Prompt:
        def render(**given: Any) -> str:
            return self.render(given)

        return _CheckedPrompt(
            name=self.name,
            title=self.title,
            description=self.description,
            arguments=[
                PromptArgument(name=n, description=_describe(spec), required=bool(spec.get("required")))
                for n, spec in self.arguments.items()
            ],
            fn=render,
        )


class _CheckedPrompt(Prompt):
    """Missing arguments are invalid params (-32602) naming them, not an internal error."""

    async def render(self, arguments: dict[str, Any] | None, context: Any) -> Any:
        given = arguments or {}
        missing = [a.name for a in self.arguments or [] if a.required and a.name not in given]
        if missing:
            required = [a.name for a in self.arguments or [] if a.required]
            raise MCPError(
                INVALID_PARAMS,
                f"prompt {self.name!r} is missing required argument(s): {', '.join(missing)}. "
                f"It needs {', '.join(required)}; call prompts/get again with all of them.",
            )
        return await super().render(arguments, context)


def _describe(spec: dict[str, Any]) -> str:
    default = spec.get("default")
    return str(spec.get("description", "")) + (f" (default: {default})" if default else "")


def parse_prompt(text: str, source: str) -> PromptFile:
    parts = text.split("+++\n", 2)
    if len(parts) != 3 or parts[0].strip():
        raise PromptFileError(f"{source}: must start with TOML front matter between '+++' lines")
    try:
        meta = tomllib.loads(parts[1])
    except tomllib.TOMLDecodeError as exc:
        raise PromptFileError(f"{source}: front matter is not valid TOML: {exc}") from None
    missing = [k for k in ("name", "description") if not meta.get(k)]
    if missing:
        raise PromptFileError(f"{source}: front matter needs {', '.join(missing)}")
    arguments = meta.get("arguments", {})
    _jinja.parse(parts[2])  # a template error is found at load time, not when a client asks
    return PromptFile(meta["name"], meta.get("title", meta["name"]), meta["description"], arguments, parts[2])


def prompt_files() -> list[PromptFile]:
    """Every prompt shipped in chaos_mcp/prompts/, sorted by name."""
    folder = resources.files("chaos_mcp") / "prompts"
    found = [
        parse_prompt(entry.read_text(encoding="utf-8"), f"chaos_mcp/prompts/{entry.name}")
        for entry in folder.iterdir()
        if entry.name.endswith(PROMPT_SUFFIX)
    ]
    return sorted(found, key=lambda p: p.name)


def _engine(engine: Callable[[], Engine]) -> Engine:
    try:
        return engine()
    except Exception as exc:
        raise ResourceError(
            f"the chaos-mcp engine is not available yet ({exc}); try again in a moment"
        ) from None


def _experiment_error(exc: EngineError) -> ResourceError:
    text = str(exc)
    return ResourceNotFoundError(text) if text.startswith("no experiment") else ResourceError(text)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def register_extras(server: MCPServer[Any], engine: Callable[[], Engine]) -> None:
    for prompt_file in prompt_files():
        server.add_prompt(prompt_file.prompt())

    @server.resource(
        "chaos://targets",
        name="targets",
        title="Configured targets",
        description="The targets the operator configured: kind, environment, proxy, scenarios, the metrics "
        "their probes measure (name, unit, labels), busy or not, and which share an instance with which.",
        mime_type="application/json",
    )
    async def targets() -> str:
        running = _engine(engine)
        targets = await catalog.targets_now(running.settings, running.journal.holds())
        return _json({"targets": targets, "derived_metrics": catalog.derived_metrics()})

    @server.resource(
        "chaos://scenarios",
        name="scenarios",
        title="Scenario catalogue",
        description="Every scenario: type, target kinds, purpose, parameters with limits, automatic revert.",
        mime_type="application/json",
    )
    def scenarios() -> str:
        return _json({"scenarios": catalog.scenario_list()})

    @server.resource(
        "chaos://experiments/{experiment_id}",
        name="experiment",
        title="One experiment",
        description="An experiment from the journal: design, state, faults and recent events.",
        mime_type="application/json",
    )
    def experiment(experiment_id: str) -> str:
        try:
            return _json(_engine(engine).get(experiment_id))
        except EngineError as exc:
            raise _experiment_error(exc) from None

    @server.resource(
        "chaos://experiments/{experiment_id}/report",
        name="experiment_report",
        title="Experiment report",
        description="The spec's Chaos Experiment Report of a rolled-back experiment (Markdown). Read-only: "
        "the generate_report tool is what marks an experiment reported.",
        mime_type="text/markdown",
    )
    def report(experiment_id: str) -> str:
        from chaos_mcp.reports.render import experiment_report

        running = _engine(engine)
        try:
            return str(experiment_report(running, experiment_id, "markdown")["markdown"])
        except EngineError as exc:
            raise _experiment_error(exc) from None
