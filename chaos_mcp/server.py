"""MCP wiring only: each tool validates its flat input and calls the engine.

The engine knows nothing of MCP; this module knows nothing of faults or probes.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import structlog
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from chaos_mcp import __version__
from chaos_mcp.config import Settings
from chaos_mcp.contract import (
    LIMITS_TEXT,
    AbortAllInput,
    AnalyzeContingencyInput,
    DesignExperimentInput,
    ExperimentRef,
    GenerateReportInput,
    InjectFailureInput,
    ListExperimentsInput,
    Problem,
    ValidationProblems,
    bounds_violation,
    pydantic_message,
)
from chaos_mcp.engine import catalog
from chaos_mcp.engine.core import Engine, EngineError
from chaos_mcp.engine.journal import JournalError
from chaos_mcp.engine.policy import Approval, Approver
from chaos_mcp.extras import register_extras
from chaos_mcp.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from chaos_mcp.metrics import render_metrics
from chaos_mcp.secrets import redact_text
from chaos_mcp.stdio import BoundedStdioServer

log = structlog.get_logger("chaos_mcp.server")

INSTRUCTIONS = """\
chaos-mcp runs chaos experiments on declared test/staging targets, with the safety rules enforced here.
Protocol, in order: design_experiment (full delegation context; every problem is listed at once) →
measure_steady_state (baseline; required before injecting) → inject_failure (restate environment and
target_component) → measure_steady_state (during) → rollback (always; reverts, verifies, measures recovery)
→ generate_report. Safety: only configured targets (list_targets); environment must match the target's;
duration ≤ 10 min; production needs the operator's policy and a person's approval; every fault is reverted
automatically at its deadline even if you stop; abort_all is the kill switch."""


class _Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalForm(BaseModel):
    approve: bool = Field(description="approve this chaos injection")


@dataclass
class _Holder:
    settings: Settings
    engine: Engine | None = None
    extra_secrets: set[str] = field(default_factory=set)

    def get(self) -> Engine:
        if self.engine is None:
            raise ToolError("the server is starting; try again in a moment")
        return self.engine


Handler = Callable[[Engine, Any, Context, dict[str, Any]], Awaitable[Any]]


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with every $ref inlined, so inputs stay flat and self-contained."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].split("/")[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    result: dict[str, Any] = inline(schema)
    result.pop("title", None)
    return result


def _validate(
    tool: str, model: type[BaseModel], raw: dict[str, Any], unknown: dict[str, Any] | None = None
) -> BaseModel:
    accepted = ", ".join(model.model_fields) or "none"
    problems = [
        Problem(field=k, message=f"unknown field; accepted fields: {accepted}") for k in unknown or {}
    ]
    try:
        validated = model.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "(input)"
            message = pydantic_message(error)
            if error["type"] == "missing":
                description = model.model_fields[str(error["loc"][0])].description or ""
                message = f"required and missing: {description}"
            problems.append(Problem(field=where, message=message))
        raise ValidationProblems(tool, problems) from None
    if problems:
        raise ValidationProblems(tool, problems)
    return validated


def _arguments(tool: str, model: type[BaseModel], given: dict[str, Any], unknown: dict[str, Any]) -> Any:
    """The bounds (whatever the transport), then the tool's model; design_experiment validates its own,
    naming unknown fields with the rest."""
    violation = bounds_violation(given | unknown)
    if violation is not None:
        where, what = violation
        raise ValidationProblems(tool, [Problem(field=where, message=f"{what} (limits: {LIMITS_TEXT})")])
    if model is DesignExperimentInput:
        return given | unknown
    return _validate(tool, model, given, unknown)


def _tool(
    holder: _Holder,
    name: str,
    model: type[BaseModel],
    handler: Handler,
    description: str,
    annotations: ToolAnnotations,
    resolved: dict[str, Any] | None = None,
) -> Tool:
    """A tool whose arguments are validated here (every problem at once), not by the SDK.

    `resolved` adds parameters filled by the SDK's resolvers (e.g. elicitation); they reach the
    handler in its `resolved` mapping and are not part of the input schema.
    """
    resolved = resolved or {}

    async def fn(ctx: Context, **raw: Any) -> dict[str, Any]:
        extras = {key: raw.pop(key) for key in list(raw) if key in resolved}
        unknown: dict[str, Any] = raw.pop(UNKNOWN_ARGUMENTS, None) or {}
        try:
            engine = holder.get()
            given = {k: v for k, v in raw.items() if v is not None}
            # Off the event loop, like every CPU-bound step, so abort_all and progress stay prompt.
            arguments = await anyio.to_thread.run_sync(
                _arguments, name, model, given, unknown, abandon_on_cancel=True
            )
            result = await handler(engine, arguments, ctx, extras)
        except (ValidationProblems, EngineError, JournalError) as exc:
            raise ToolError(redact_text(str(exc), holder.settings.secrets())) from None
        except ExceptionGroup as group:
            refusal = _single_refusal(group)
            if refusal is None:
                log.error("tool_crashed", tool=name, error=repr([type(e).__name__ for e in group.exceptions]))
                raise ToolError(f"{name} failed unexpectedly; nothing more was changed.") from None
            raise ToolError(redact_text(str(refusal), holder.settings.secrets())) from None
        except ToolError:
            raise
        except Exception as exc:
            log.error("tool_crashed", tool=name, error=type(exc).__name__)
            raise ToolError(
                f"{name} failed unexpectedly ({type(exc).__name__}); nothing more was changed. "
                "get_experiment shows the journal; chaos-mcp recover reverts anything left active."
            ) from None
        return dict(result)

    fields = list(model.model_fields)
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context)]
    params += [inspect.Parameter(f, keyword, default=None, annotation=Any) for f in fields]
    params += [inspect.Parameter(k, keyword, annotation=a) for k, a in resolved.items()]
    fn.__signature__ = inspect.Signature(params, return_annotation=dict[str, Any])  # type: ignore[attr-defined]
    fn.__annotations__ = {"ctx": Context, **dict.fromkeys(fields, Any), **resolved, "return": dict[str, Any]}
    tool = Tool.from_function(fn, name=name, description=description, annotations=annotations)
    tool.parameters = _schema(model)
    tool.fn_metadata = _KeepUnknown(**{f: getattr(tool.fn_metadata, f) for f in FuncMetadata.model_fields})
    return tool


UNKNOWN_ARGUMENTS = "chaos_mcp_unknown_arguments"


class _KeepUnknown(FuncMetadata):
    """The SDK drops argument names a tool does not declare; keep them, so a misspelt optional field
    (say `sucess_criteria`) is reported instead of silently ignored."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        validated = super().validate_arguments(arguments_to_validate)
        declared = {field.alias or key for key, field in self.arg_model.model_fields.items()}
        unknown = {k: v for k, v in arguments_to_validate.items() if k not in declared}
        return validated | {UNKNOWN_ARGUMENTS: unknown} if unknown else validated


def _single_refusal(group: BaseExceptionGroup[Any]) -> Exception | None:
    """A task group that failed with one refusal inside: show that refusal, not the group."""
    leaves = []
    pending: list[BaseException] = [group]
    while pending:
        current = pending.pop()
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        else:
            leaves.append(current)
    refusals = [e for e in leaves if isinstance(e, ValidationProblems | EngineError | JournalError)]
    return refusals[0] if len(refusals) == 1 and len(leaves) == 1 else None


# ---------------------------------------------------------------- handlers

NOT_NEEDED, CANNOT_ASK = "not_needed", "cannot_ask"


def _approval_resolver(holder: _Holder) -> Callable[..., Awaitable[Any]]:
    """Ask a person (elicitation) only when the policy needs it and the client can ask one."""

    async def approval(experiment_id: Any, ctx: Context) -> Elicit[ApprovalForm] | str:
        try:
            question = await holder.get().approval_question(str(experiment_id))
        except Exception:
            return NOT_NEEDED  # inject_failure itself reports what is wrong with the request
        if question is None:
            return NOT_NEEDED
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return CANNOT_ASK
        return Elicit(question, ApprovalForm)

    return approval


def _approver(outcome: Any) -> Approver:
    async def approver(question: str) -> Approval:
        if not isinstance(outcome, AcceptedElicitation):
            return Approval.DECLINED
        if isinstance(outcome.data, ApprovalForm):
            return Approval.APPROVED if outcome.data.approve else Approval.DECLINED
        return Approval.UNAVAILABLE

    return approver


async def _design(engine: Engine, raw: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    return await anyio.to_thread.run_sync(engine.design, raw)


async def _measure(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    return await engine.measure(args.experiment_id)


async def _inject(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    async def progress(done: float, total: float, message: str) -> None:
        await ctx.report_progress(done, total, message)

    return await engine.inject(
        args.experiment_id,
        args.environment,
        args.target_component,
        approver=_approver(resolved.get("approval")),
        wait=args.wait,
        progress=progress,
    )


async def _rollback(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    return await engine.rollback(args.experiment_id)


async def _report(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    from chaos_mcp.reports.render import generate_report

    return await anyio.to_thread.run_sync(
        generate_report, engine, args.experiment_id, args.since, args.until, args.format
    )


async def _abort(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    return await engine.abort_all(args.reason)


async def _targets(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    targets = await catalog.targets_now(engine.settings, engine.journal.holds())
    return {"targets": targets, "derived_metrics": catalog.derived_metrics()}


async def _scenarios(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    return {"scenarios": catalog.scenario_list()}


async def _get(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    return await anyio.to_thread.run_sync(engine.get, args.experiment_id)


async def _list(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    return {"experiments": await anyio.to_thread.run_sync(engine.list, args.state, args.limit)}


async def _contingency(engine: Engine, args: Any, ctx: Context, resolved: dict[str, Any]) -> Any:
    return await catalog.contingency(engine.settings, args.target_component, args.depth)


READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def build_server(settings: Settings) -> MCPServer[Any]:
    holder = _Holder(settings)
    writes = ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
    )
    tools = [
        _tool(
            holder,
            "design_experiment",
            DesignExperimentInput,
            _design,
            "Validate a chaos experiment's full delegation context at once and record its plan. Returns "
            "experiment_id, the resolved scenario, the faults it will inject and their automatic revert. "
            "Every problem is listed field by field. Next: measure_steady_state.",
            writes,
        ),
        _tool(
            holder,
            "measure_steady_state",
            ExperimentRef,
            _measure,
            "Run the experiment's probes and judge the steady-state criteria. The phase follows the "
            "lifecycle: baseline (before injection; required), during (while injected), recovery (after).",
            ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
            ),
        ),
        _tool(
            holder,
            "inject_failure",
            InjectFailureInput,
            _inject,
            "Inject the designed failure into the real target after checking policy, approvals and the "
            "baseline. Restate environment and target_component exactly. Every fault ends by its deadline "
            "on its own. Returns the deadline and what was injected.",
            ToolAnnotations(
                read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
            ),
            resolved={
                "approval": Annotated[ElicitationResult[ApprovalForm], Resolve(_approval_resolver(holder))]
            },
        ),
        _tool(
            holder,
            "rollback",
            ExperimentRef,
            _rollback,
            "Revert every fault of the experiment and verify each, measure recovery time and check data "
            "integrity. Idempotent: safe to call again. Returns COMPLETE/PARTIAL/FAILED per step. Before "
            "any injection (designed or baselined) it withdraws the experiment: cancelled, targets free.",
            ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
            ),
        ),
        _tool(
            holder,
            "generate_report",
            GenerateReportInput,
            _report,
            "The spec's Chaos Experiment Report for one experiment (or the period Chaos Engineering Report "
            "with since/until), as Markdown, JSON or HTML.",
            ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
            ),
        ),
        _tool(
            holder,
            "abort_all",
            AbortAllInput,
            _abort,
            "Kill switch: revert every active fault everywhere the journal knows of, mark the experiments "
            "aborted, remove toxics added to the fault proxy outside any experiment (listed in "
            "removed_stray_toxics), and refuse new injections until the operator re-arms (chaos-mcp arm).",
            ToolAnnotations(
                read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
            ),
        ),
        _tool(
            holder,
            "list_targets",
            _Empty,
            _targets,
            "The targets the operator configured: name, kind, environment, proxy, the metrics their probes "
            "measure (name, unit, labels: criteria may name only these), which are busy, and which share an "
            "instance (a Redis server, a PostgreSQL cluster) with which.",
            READ_ONLY,
        ),
        _tool(
            holder,
            "list_scenarios",
            _Empty,
            _scenarios,
            "The scenario catalogue: each scenario's type, target kinds, purpose, parameters with their "
            "defaults and limits, and its automatic revert.",
            READ_ONLY,
        ),
        _tool(
            holder,
            "get_experiment",
            ExperimentRef,
            _get,
            "One experiment from the journal: design, state, faults and recent events.",
            READ_ONLY,
        ),
        _tool(
            holder,
            "list_experiments",
            ListExperimentsInput,
            _list,
            "Experiments in the journal, newest first.",
            READ_ONLY,
        ),
        _tool(
            holder,
            "analyze_contingency",
            AnalyzeContingencyInput,
            _contingency,
            "Read-only N-1 (depth 1) or N-1 and N-2 (depth 2) contingency analysis of a schedule target.",
            READ_ONLY,
        ),
    ]

    @asynccontextmanager
    async def lifespan(server: MCPServer[Any]) -> AsyncIterator[None]:
        async with Engine.running(settings) as engine:
            holder.engine = engine
            try:
                yield None
            finally:
                holder.engine = None

    server: MCPServer[Any] = BoundedStdioServer(
        "chaos-mcp", instructions=INSTRUCTIONS, version=__version__, tools=tools, lifespan=lifespan
    )
    register_extras(server, holder.get)

    async def metrics(request: Request) -> Response:
        """Prometheus metrics (HTTP transport only), computed from the journal."""
        return PlainTextResponse(render_metrics(holder.get().journal), media_type=METRICS_CONTENT_TYPE)

    server.custom_route("/metrics", methods=["GET"])(metrics)

    return server
