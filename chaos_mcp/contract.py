"""The delegation contract: every tool's input, as the spec's "Required Context" table.

The pydantic models here give each tool its JSON Schema (flat, every field described,
`required` exactly as the spec marks YES). Validation itself is done by
`validate_design`, which checks every field at once and returns every problem, so an
agent with an isolated context learns everything that is missing in one answer.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chaos_mcp.config import Settings
from chaos_mcp.criteria import CRITERION_EXAMPLES, Criterion, CriterionError, from_any
from chaos_mcp.durations import DURATION_FORMATS, DurationError, parse_duration
from chaos_mcp.measurable import catalogue, check_measured
from chaos_mcp.scenarios.base import DEFAULT_SCENARIO, ExperimentType, scenarios

REQUIRED_FIELDS = (
    "experiment_type",
    "target_component",
    "hypothesis",
    "environment",
    "blast_radius",
    "duration",
    "rollback_plan",
)
EXPERIMENT_TYPES: tuple[ExperimentType, ...] = ("infrastructure", "schedule", "data")
ENVIRONMENTS = ("test", "staging", "production")
# Linear on any text: the condition ends at its first comma for good (the atomic group; a later
# comma could only shorten the system part), and the system part ends on a non-space, so each run
# of spaces is tried once.
HYPOTHESIS_FORM = re.compile(
    r"^\s*(when|if|while|during|after)\s+(?>(?P<condition>\S.{2,}?),\s*)(?P<system>.*?\S)\s+"
    r"(should|must|will|shall)\b\s*(?P<behaviour>\S.*)",
    re.IGNORECASE | re.DOTALL,
)
HYPOTHESIS_EXAMPLE = (
    '"When the database connection is lost for 30 seconds, the API should return cached data '
    'and queue writes for retry."'
)
_PLACEHOLDER_WORDS = re.compile(
    r"<[a-z][a-z _-]*>|\bTBD\b|\bTBA\b|\bTODO\b|\bFIXME\b"
    r"|\bN/A\b|^\s*n\.?a\.?\s*$|\blorem ipsum\b|^\s*(\.\.\.|…|-|\?+|x+|none|null|placeholder)\s*$",
    re.IGNORECASE,
)
# `[...]` with a letter inside and `{{...}}`: each scan runs to its closing mark (or the line's end)
# and is consumed whether it qualifies or not, so 60,000 unclosed `[` cost one pass, not a cube.
_BRACKETED = re.compile(r"\[[^\]\n]*+(?P<closed>\])?")
_BRACED = re.compile(r"\{\{[^}]*+(?P<closed>\}\})?")
_LETTER = re.compile(r"[A-Za-z]", re.IGNORECASE)
_ROUTE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
MAX_ROWS_LIMIT = 10_000


class BlastRadius(BaseModel):
    """Scope limitation: what the experiment may affect, and hard limits the server enforces."""

    model_config = ConfigDict(extra="forbid")

    scope: str = Field(description="in words: e.g. 'staging API only', 'Pediatrics rotation, block 10'")
    targets: list[str] = Field(
        default_factory=list,
        description="configured target names the experiment may affect; must include target_component "
        "(default: just target_component)",
    )
    max_traffic_percent: float | None = Field(
        None, gt=0, le=100, description="share of requests/connections affected, 0 < x ≤ 100 (proxy faults)"
    )
    routes: list[str] | None = Field(
        None, description="HTTP path prefixes to affect, e.g. ['/api/v1/schedules']; others are left alone"
    )
    rotations: list[str] | None = Field(None, description="schedule services/rotations to affect")
    blocks: list[str] | None = Field(None, description="schedule blocks or dates to affect")
    max_rows: int | None = Field(
        None,
        ge=1,
        le=MAX_ROWS_LIMIT,
        description=f"data chaos: at most this many rows (1 to {MAX_ROWS_LIMIT})",
    )


CriterionInput = Criterion | str


class DesignExperimentInput(BaseModel):
    """The delegation context; `required` is exactly the spec's Required Context = YES."""

    model_config = ConfigDict(extra="forbid")

    experiment_type: Literal["infrastructure", "schedule", "data"] = Field(
        description="Infrastructure, Schedule (domain) or Data chaos: one of infrastructure, schedule, data"
    )
    target_component: str = Field(
        description="name of a configured target (see list_targets), e.g. 'db', 'cache', 'api', 'schedule'"
    )
    hypothesis: str = Field(
        description=f"expected behaviour under failure, as 'When <condition>, <system> should <behaviour>'; "
        f"e.g. {HYPOTHESIS_EXAMPLE}"
    )
    environment: Literal["test", "staging", "production"] = Field(
        description="test, staging or production; must equal the target's configured environment; "
        "production needs policy.allow_production and a human's approval"
    )
    blast_radius: BlastRadius = Field(
        description="scope limitation: {scope, targets, and optional max_traffic_percent, routes, rotations, "
        "blocks, max_rows}"
    )
    duration: float | str = Field(
        description=f"how long the fault stays injected, at most 10 minutes: {DURATION_FORMATS}"
    )
    rollback_plan: list[str] = Field(
        description="how to revert, as a non-empty list of concrete steps; the server also reverts "
        "every fault automatically"
    )
    success_criteria: list[CriterionInput] | None = Field(
        None, description=f"metrics that define 'passed', each {CRITERION_EXAMPLES}"
    )
    scenario: str | None = Field(
        None,
        description="scenario name from list_scenarios; default: implied by experiment_type and the target's "
        "kind (postgres→db_connection_loss, redis→redis_timeout, http→api_latency, schedule→n1_removal)",
    )
    parameters: dict[str, Any] | None = Field(
        None,
        description="scenario parameters (magnitudes); list_scenarios shows each one's fields and limits",
    )
    abort_conditions: list[CriterionInput] | None = Field(
        None,
        description=f"stop conditions: when one holds during the window, every fault is reverted at once; "
        "one with phase recovery (recovery.api.error_rate > 50%) acts after the revert and ends the "
        "experiment aborted; each on a metric list_targets shows for a blast-radius target, "
        f"{CRITERION_EXAMPLES}",
    )
    detection_signals: list[CriterionInput] | None = Field(
        None,
        description="signals the system under test should raise when it notices the failure, e.g. "
        '"api.healthy == 0" or "alerts.firing >= 1"; detection_time is from injection to the first sample '
        "where one holds",
    )
    steady_state: list[CriterionInput] | None = Field(
        None,
        description="what 'normal' means, each a criterion; default: the spec's (response time < 200 ms, "
        "error rate < 0.1 %, schedule coverage 100 %) for the target's kind",
    )
    system_state: dict[str, Any] | str | None = Field(
        None, description="context from the delegation: baseline metrics, known issues, recent changes"
    )
    baseline_known_degraded: bool = Field(
        False,
        description="true if the system is known not to be steady; injection then proceeds and the "
        "report says so",
    )
    dry_run: bool = Field(False, description="validate and return the plan without recording an experiment")


# An id as design_experiment hands it out (exp-20261203-092247-963b3a): letters, digits, '-', '_', '.'
# only, so a NUL or other control character is refused here, not by the journal's database.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ID_HELP = (
    "the id returned by design_experiment (letters, digits, '-', '_', '.'; e.g. exp-20261203-092247-963b3a)"
)


class ExperimentRef(BaseModel):
    experiment_id: str = Field(pattern=ID_PATTERN, description=ID_HELP)


class InjectFailureInput(BaseModel):
    experiment_id: str = Field(pattern=ID_PATTERN, description=ID_HELP)
    environment: Literal["test", "staging", "production"] = Field(
        description="restated from the design; a mismatch is refused as context drift"
    )
    target_component: str = Field(
        description="restated from the design; a mismatch is refused as context drift"
    )
    wait: bool = Field(
        False,
        description="true: stay in the call and supervise the whole window, with progress notifications",
    )


class GenerateReportInput(BaseModel):
    experiment_id: str | None = Field(
        None, pattern=ID_PATTERN, description="one experiment's report (its id); or give since/until"
    )
    since: str | None = Field(None, description="period report start, ISO date such as 2026-11-01")
    until: str | None = Field(None, description="period report end (default: now)")
    format: Literal["markdown", "json", "html"] = Field("markdown", description="markdown, json or html")


class AbortAllInput(BaseModel):
    reason: str = Field(description="why everything is being stopped; recorded in the journal and reports")


class AnalyzeContingencyInput(BaseModel):
    target_component: str = Field(description="a configured schedule target")
    depth: Literal[1, 2] = Field(1, description="1: N-1 for every faculty member; 2: also every pair (N-2)")


class ListExperimentsInput(BaseModel):
    state: str | None = Field(
        None,
        pattern=r"^[a-z_]{1,32}$",
        description="only experiments in this state (designed, baselined, injected, aborted, rolled_back, "
        "reported, failed, cancelled)",
    )
    limit: int = Field(50, ge=1, le=500, description="at most this many, newest first")


# ---------------------------------------------------------------- validation


class Problem(BaseModel):
    field: str
    message: str


class ValidationProblems(Exception):
    """Every problem found in one call, ready to be shown to the agent."""

    def __init__(self, tool: str, problems: list[Problem]) -> None:
        self.tool = tool
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.tool} refused: {len(self.problems)} problem(s). Fix all of them and call again."]
        lines += [f"- {p.field}: {p.message}" for p in self.problems]
        return "\n".join(lines)


class ExperimentDesign(BaseModel):
    """A validated design: what the engine runs and the journal keeps."""

    experiment_type: ExperimentType
    target_component: str
    target_kind: str
    hypothesis: str
    environment: str
    blast_radius: BlastRadius
    duration_s: float
    rollback_plan: list[str]
    success_criteria: list[Criterion]
    abort_conditions: list[Criterion]
    steady_state: list[Criterion]
    detection_signals: list[Criterion] = []
    scenario: str
    parameters: dict[str, Any]
    system_state: dict[str, Any] | str | None
    baseline_known_degraded: bool
    dry_run: bool


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, field: str, message: str) -> None:
        self.problems.append(Problem(field=field, message=message))


def validate_design(raw: dict[str, Any], settings: Settings) -> ExperimentDesign:
    """Check every field at once; raise ValidationProblems listing all of them."""
    check = _Checker()
    known = set(DesignExperimentInput.model_fields)
    for name in sorted(set(raw) - known):
        check.add(name, f"unknown field; accepted fields: {', '.join(sorted(known))}")
    missing = [name for name in REQUIRED_FIELDS if raw.get(name) is None]
    for name in missing:
        check.add(name, f"required and missing. {_FIELD_HELP[name]}")
    _check_placeholders(raw, check)

    experiment_type = _check_choice(raw, "experiment_type", EXPERIMENT_TYPES, check)
    environment = _check_choice(raw, "environment", ENVIRONMENTS, check)
    target_name = _check_target(raw, settings, environment, check)
    target = settings.targets.get(target_name) if target_name else None
    hypothesis = _check_hypothesis(raw, check)
    blast = _check_blast_radius(raw, settings, target_name, check)
    duration = _check_duration(raw, settings, check)
    rollback_plan = _check_steps(raw, check)
    criteria = {
        name: _check_criteria(raw, name, check)
        for name in ("success_criteria", "abort_conditions", "steady_state", "detection_signals")
    }
    if blast is not None and target_name:
        named = [c.target for given in criteria.values() for c in given]
        measured = catalogue(settings, blast.targets, named)
        for name, given in criteria.items():
            criteria[name], refused = check_measured(name, given, target_name, measured)
            for where, message in refused:
                check.add(where, message)
    scenario_name, parameters = _check_scenario(raw, experiment_type, target_name, settings, check)
    for flag in ("dry_run", "baseline_known_degraded"):
        if flag in raw and not isinstance(raw[flag], bool):
            check.add(flag, f"expected true or false, got {raw[flag]!r}")
    system_state = raw.get("system_state")
    if system_state is not None and not isinstance(system_state, dict | str):
        check.add(
            "system_state", "expected an object (baseline metrics, known issues, recent changes) or text"
        )
    if environment == "production" and not settings.policy.allow_production:
        check.add(
            "environment",
            "production experiments are refused: policy.allow_production is false in the server's "
            "configuration. Use the test or staging copy; only the operator can allow production, and even "
            "then a person must approve each injection.",
        )

    if check.problems:
        raise ValidationProblems("design_experiment", check.problems)
    assert target is not None and experiment_type and environment and hypothesis and blast and duration
    return ExperimentDesign(
        experiment_type=experiment_type,  # type: ignore[arg-type]
        target_component=target_name or "",
        target_kind=target.kind,
        hypothesis=hypothesis,
        environment=environment,
        blast_radius=blast,
        duration_s=duration,
        rollback_plan=rollback_plan or [],
        success_criteria=criteria["success_criteria"],
        abort_conditions=criteria["abort_conditions"],
        steady_state=criteria["steady_state"],
        detection_signals=criteria["detection_signals"],
        scenario=scenario_name or "",
        parameters=parameters,
        system_state=system_state if isinstance(system_state, dict | str) else None,
        baseline_known_degraded=bool(raw.get("baseline_known_degraded", False)),
        dry_run=bool(raw.get("dry_run", False)),
    )


_FIELD_HELP = {
    "experiment_type": "Accepted: infrastructure, schedule, data.",
    "target_component": "Give the name of a configured target (list_targets shows them).",
    "hypothesis": f"Write it as 'When <condition>, <system> should <behaviour>', e.g. {HYPOTHESIS_EXAMPLE}",
    "environment": "Accepted: test, staging, production; it must equal the target's configured environment.",
    "blast_radius": 'Give an object such as {"scope": "staging API only", "targets": ["api"], '
    '"routes": ["/api/v1/schedules"]}.',
    "duration": f"At most 10 minutes; accepted: {DURATION_FORMATS}.",
    "rollback_plan": 'Give a list of concrete steps, e.g. ["Remove the latency toxic", '
    '"Verify /health answers in < 200 ms"].',
}


def placeholder_in(text: str) -> str | None:
    """The leftmost template or placeholder text in `text` ('[failure condition]', 'TBD', ...), or None."""
    candidates = [
        next((m for m in _BRACKETED.finditer(text) if m["closed"] and _LETTER.search(m.group(0))), None),
        _PLACEHOLDER_WORDS.search(text),
        next((m for m in _BRACED.finditer(text) if m["closed"]), None),
    ]
    found = [m for m in candidates if m is not None]
    return min(found, key=lambda m: m.start()).group(0).strip() if found else None


def _check_placeholders(value: Any, check: _Checker, path: str = "") -> None:
    if isinstance(value, str):
        if path and not value.strip():
            check.add(path, "empty text; say something concrete")
        elif path and (found := placeholder_in(value)) is not None:
            check.add(path, f"template or placeholder text ({found!r}); replace it with the real content")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_placeholders(item, check, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_placeholders(item, check, f"{path}[{index}]")


def _has_problem(check: _Checker, field: str) -> bool:
    return any(
        p.field == field or p.field.startswith(f"{field}.") or p.field.startswith(f"{field}[")
        for p in check.problems
    )


def _check_choice(raw: dict[str, Any], field: str, choices: tuple[str, ...], check: _Checker) -> str | None:
    value = raw.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().lower() not in choices:
        check.add(field, f"{value!r} is not accepted; accepted: {', '.join(choices)}")
        return None
    return value.strip().lower()


def _check_target(
    raw: dict[str, Any], settings: Settings, environment: str | None, check: _Checker
) -> str | None:
    name = raw.get("target_component")
    if name is None:
        return None
    configured = ", ".join(f"{n} ({t.kind}, {t.environment})" for n, t in settings.targets.items()) or "none"
    if not isinstance(name, str) or name not in settings.targets:
        check.add(
            "target_component",
            f"{name!r} is not a configured target; configured targets: {configured}. Only the operator "
            "can add targets (chaos.toml).",
        )
        return None
    target = settings.targets[name]
    if environment and environment != target.environment:
        check.add(
            "environment",
            f"{environment!r} does not match target {name!r}, which the operator configured as "
            f"{target.environment!r}; restate environment as {target.environment!r} or pick another target",
        )
    return name


def _check_hypothesis(raw: dict[str, Any], check: _Checker) -> str | None:
    value = raw.get("hypothesis")
    if value is None or _has_problem(check, "hypothesis"):
        return None
    if not isinstance(value, str) or not HYPOTHESIS_FORM.match(value):
        check.add(
            "hypothesis",
            "must state a condition and an expected behaviour: 'When <condition>, <system> should "
            f"<behaviour>', e.g. {HYPOTHESIS_EXAMPLE}",
        )
        return None
    return value.strip()


def _check_blast_radius(
    raw: dict[str, Any], settings: Settings, target_name: str | None, check: _Checker
) -> BlastRadius | None:
    value = raw.get("blast_radius")
    if value is None or _has_problem(check, "blast_radius"):
        return None
    if not isinstance(value, dict):
        check.add("blast_radius", f"expected an object; {_FIELD_HELP['blast_radius']}")
        return None
    try:
        blast = BlastRadius.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            check.add(f"blast_radius.{where}", pydantic_message(error))
        return None
    ok = True
    if not blast.targets and target_name:
        blast = blast.model_copy(update={"targets": [target_name]})
    unknown = [t for t in blast.targets if t not in settings.targets]
    if unknown:
        check.add(
            "blast_radius.targets",
            f"not configured: {', '.join(unknown)}; configured: {', '.join(settings.targets) or 'none'}",
        )
        ok = False
    if target_name and target_name not in blast.targets:
        check.add("blast_radius.targets", f"must include target_component {target_name!r}")
        ok = False
    for route in blast.routes or []:
        if not _ROUTE.match(route):
            check.add("blast_radius.routes", f"{route!r} is not a path prefix; e.g. '/api/v1/schedules'")
            ok = False
    return blast if ok else None


def _check_duration(raw: dict[str, Any], settings: Settings, check: _Checker) -> float | None:
    value = raw.get("duration")
    if value is None or _has_problem(check, "duration"):
        return None
    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        check.add("duration", str(exc))
        return None
    limit = settings.policy.max_duration
    if seconds > limit:
        check.add(
            "duration",
            f"{seconds:g}s is above the limit of {limit:g}s "
            f"({'the spec' if limit == 600 else 'policy.max_duration'}); use at most {limit:g}s",
        )
        return None
    if seconds < 1:
        check.add("duration", f"{seconds:g}s is too short to observe anything; use at least 1s")
        return None
    return seconds


def _check_steps(raw: dict[str, Any], check: _Checker) -> list[str] | None:
    value = raw.get("rollback_plan")
    if value is None or _has_problem(check, "rollback_plan"):
        return None
    if not isinstance(value, list) or not value:
        check.add("rollback_plan", f"expected a non-empty list of steps. {_FIELD_HELP['rollback_plan']}")
        return None
    steps = [s for s in value if isinstance(s, str) and s.strip()]
    if len(steps) != len(value):
        check.add("rollback_plan", "every step must be non-empty text")
        return None
    return [s.strip() for s in steps]


def _check_criteria(raw: dict[str, Any], field: str, check: _Checker) -> list[Criterion]:
    value = raw.get(field)
    if value is None or _has_problem(check, field):
        return []
    if not isinstance(value, list):
        check.add(field, f"expected a list of criteria, each {CRITERION_EXAMPLES}")
        return []
    result: list[Criterion] = []
    for index, item in enumerate(value):
        try:
            result.append(from_any(item))
        except CriterionError as exc:
            check.add(f"{field}[{index}]", str(exc))
    return result


def _check_scenario(
    raw: dict[str, Any],
    experiment_type: str | None,
    target_name: str | None,
    settings: Settings,
    check: _Checker,
) -> tuple[str | None, dict[str, Any]]:
    catalogue = scenarios()
    name = raw.get("scenario")
    target = settings.targets.get(target_name) if target_name else None
    if name is not None and (not isinstance(name, str) or name not in catalogue):
        check.add("scenario", f"{name!r} is unknown; accepted: {', '.join(catalogue)}")
        return None, {}
    if name is None and experiment_type and target is not None:
        name = DEFAULT_SCENARIO.get((experiment_type, target.kind))
        if name is None or name not in catalogue:
            fitting = [s.name for s in catalogue.values() if target.kind in s.target_kinds]
            check.add(
                "scenario",
                f"no default scenario for {experiment_type} chaos on a {target.kind} target; "
                f"name one: {', '.join(fitting) or 'none fits this target'}",
            )
            return None, {}
    if name is None:
        return None, {}
    scenario = catalogue[name]
    if experiment_type and scenario.experiment_type != experiment_type:
        check.add(
            "scenario",
            f"{name} is {scenario.experiment_type} chaos, not {experiment_type}; "
            f"set experiment_type to {scenario.experiment_type!r} or pick another scenario",
        )
    if target is not None and target_name is not None:
        if target.kind not in scenario.target_kinds:
            check.add(
                "scenario",
                f"{name} runs on {', '.join(sorted(scenario.target_kinds))} targets; "
                f"{target_name!r} is a {target.kind} target",
            )
        else:
            for problem in scenario.check_target(target_name, target):
                check.add("target_component", problem)
    params = raw.get("parameters") or {}
    if not isinstance(params, dict):
        check.add("parameters", "expected an object of scenario parameters; list_scenarios shows them")
        return name, {}
    try:
        validated = scenario.Parameters.model_validate(params)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            check.add(f"parameters.{where}", f"{pydantic_message(error)} (scenario {name})")
        return name, {}
    if target is not None and target_name is not None and target.kind in scenario.target_kinds:
        for problem in scenario.check_parameters(validated, target_name, target):
            check.add("parameters", f"{problem} (scenario {name})")
    return name, validated.model_dump(mode="json")


def pydantic_message(error: Any) -> str:
    """One pydantic error as a sentence an agent can act on."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown field; remove it"
    if error["type"] == "missing":
        return "required and missing"
    ctx = error.get("ctx") or {}
    if ctx:
        return f"{message} (got {error.get('input')!r})"
    return message


# ---------------------------------------------------------------- argument bounds
#
# Checked on the raw JSON-RPC message, before any validation, redaction or tool work, so no argument
# can make the server do more than a bounded amount of it. The figures leave every honest input far
# inside (a design is a few KiB); what they stop is a megabyte id, a 10,000-deep list or a number
# that takes seconds to print.

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""One JSON-RPC message (a stdio line or an HTTP body)."""
MAX_STRING_CHARS = 64 * 1024
"""Any string, object keys included."""
MAX_ITEMS = 1_000
"""Items of one list, or members of one object."""
MAX_DEPTH = 32
"""Objects and lists inside each other, counting the message itself (its `params.arguments` is level 3)."""
MAX_SAFE_INTEGER = 2**53 - 1
"""Integers within ±(2^53 - 1), the range every JSON implementation reads exactly."""
LIMITS_TEXT = (
    f"messages ≤ {MAX_MESSAGE_BYTES // (1024 * 1024)} MiB, strings ≤ {MAX_STRING_CHARS:,} characters, "
    f"lists and objects ≤ {MAX_ITEMS:,} items, nesting ≤ {MAX_DEPTH} levels, integers within ±(2^53 - 1), "
    "numbers finite, strings valid Unicode"
)


class OversizedNumber:
    """What the wire parser keeps in place of a number too long to convert (its digits are not read)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def bounds_violation(value: Any, root: str = "") -> tuple[str, str] | None:
    """The first place where `value` (parsed JSON) exceeds the limits above: (field path, what is wrong).

    Iterative, so a value nested past Python's recursion limit is reported rather than crashing.
    """
    pending: list[tuple[Any, str, int]] = [(value, root, 1)]
    while pending:
        node, path, depth = pending.pop()
        problem = _node_problem(node, depth)
        if problem is not None:
            return path or "(message)", problem
        if isinstance(node, dict):
            pending.extend((v, _join(path, k), depth + 1) for k, v in node.items())
            bad_key = next((k for k in node if _string_problem(k) is not None), None)
            if bad_key is not None:
                return _join(path, bad_key), f"its name: {_string_problem(bad_key)}"
        elif isinstance(node, list):
            pending.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))
    return None


def _node_problem(node: Any, depth: int) -> str | None:
    if isinstance(node, dict | list):
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels; flatten the structure"
        if len(node) > MAX_ITEMS:
            kind = "an object of" if isinstance(node, dict) else "a list of"
            return f"{kind} {len(node):,} items; the limit is {MAX_ITEMS:,} per list or object"
        return None
    if isinstance(node, str):
        return _string_problem(node)
    if isinstance(node, OversizedNumber):
        return f"a number of {node.digits:,} digits; integers must lie within ±{MAX_SAFE_INTEGER:,}"
    if isinstance(node, bool):
        return None
    if isinstance(node, int) and abs(node) > MAX_SAFE_INTEGER:
        shown = (
            f"{node}"
            if node.bit_length() <= 128
            else f"an integer of ≈{node.bit_length() * 0.30103:,.0f} digits"
        )
        return f"{shown} is outside ±{MAX_SAFE_INTEGER:,} (2^53 - 1), the integers JSON carries exactly"
    if isinstance(node, float) and not math.isfinite(node):
        return "not a finite number (NaN, Infinity or an overflowing exponent); send a finite number"
    return None


def _string_problem(text: str) -> str | None:
    if len(text) > MAX_STRING_CHARS:
        return (
            f"a string of {len(text):,} characters; the limit is {MAX_STRING_CHARS:,} per string. "
            "Shorten it, or refer to large material by name instead of pasting it."
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "a string holding a lone UTF-16 surrogate (such as \\ud800); strings must be valid Unicode"
    return None


def _join(path: str, key: str) -> str:
    shown = key if len(key) <= 40 and key.isidentifier() else repr(key[:40] + ("…" if len(key) > 40 else ""))
    return f"{path}.{shown}" if path else shown
