"""Prompts and resources through a real MCP client (in memory), backed by a real experiment."""

from __future__ import annotations

import json

import pytest
from mcp.shared.exceptions import MCPError

from chaos_mcp.extras import PromptFileError, parse_prompt, prompt_files
from tests.extras.conftest import Session, run_experiment

pytestmark = pytest.mark.anyio
PROMPTS = {
    "chaos_delegation",
    "n1_contingency_test",
    "db_connection_failure_test",
    "chaos_experiment_template",
}


def text_of(result: object) -> str:
    contents = getattr(result, "contents", None) or getattr(result, "messages", [])
    parts = []
    for item in contents:
        content = getattr(item, "content", item)
        parts.append(getattr(content, "text", ""))
    return "\n".join(parts)


async def test_the_four_spec_prompts_are_listed_with_their_arguments(session: Session) -> None:
    prompts = {p.name: p for p in (await session.client.list_prompts()).prompts}
    assert set(prompts) == PROMPTS
    delegation = {a.name: a for a in prompts["chaos_delegation"].arguments or []}
    required = {n for n, a in delegation.items() if a.required}
    assert required == {
        "failure_scenario",
        "target_component",
        "environment",
        "hypothesis",
        "failure_type",
        "duration",
        "blast_radius",
        "rollback",
    }
    assert all(a.description for a in delegation.values())


async def test_a_prompt_fills_its_arguments_and_defaults(session: Session) -> None:
    result = await session.client.get_prompt(
        "n1_contingency_test", {"utilization": "72% (HEALTHY)", "max_utilization": "80%"}
    )
    text = text_of(result)
    assert "Current utilization: 72% (HEALTHY)" in text
    assert '"target_component": "schedule"' in text, "the default target"
    design = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    assert design["success_criteria"][1] == "max_utilization < 80%"


async def test_the_n1_prompts_design_is_accepted_by_design_experiment(session: Session) -> None:
    text = text_of(await session.client.get_prompt("n1_contingency_test", {"duration": "30s"}))
    design = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    plan = await session.client.call_tool("design_experiment", design)
    assert not plan.is_error, plan.content


async def test_a_quote_in_an_argument_keeps_the_embedded_json_valid(session: Session) -> None:
    text = text_of(await session.client.get_prompt("db_connection_failure_test", {"target_component": 'd"b'}))
    design = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    assert design["target_component"] == 'd"b'


async def test_a_prompt_without_its_required_arguments_is_an_error_naming_them(session: Session) -> None:
    with pytest.raises(MCPError):
        await session.client.get_prompt("chaos_delegation", {"environment": "test"})


async def test_targets_and_scenarios_resources_list_the_catalogue(session: Session) -> None:
    uris = {str(r.uri) for r in (await session.client.list_resources()).resources}
    assert {"chaos://targets", "chaos://scenarios"} <= uris
    templates = {t.uri_template for t in (await session.client.list_resource_templates()).resource_templates}
    assert templates == {"chaos://experiments/{experiment_id}", "chaos://experiments/{experiment_id}/report"}
    targets = json.loads(text_of(await session.client.read_resource("chaos://targets")))
    assert [t["name"] for t in targets["targets"]] == ["schedule"]
    scenarios = json.loads(text_of(await session.client.read_resource("chaos://scenarios")))
    assert "n1_removal" in {s["name"] for s in scenarios["scenarios"]}


async def test_an_experiment_and_its_report_are_readable_without_changing_its_state(session: Session) -> None:
    experiment_id = await run_experiment(session.client)
    record = json.loads(text_of(await session.client.read_resource(f"chaos://experiments/{experiment_id}")))
    assert record["state"] == "rolled_back"
    report = text_of(await session.client.read_resource(f"chaos://experiments/{experiment_id}/report"))
    assert report.startswith("## Chaos Experiment Report") and "**Status:** HYPOTHESIS_REJECTED" in report
    again = json.loads(text_of(await session.client.read_resource(f"chaos://experiments/{experiment_id}")))
    assert again["state"] == "rolled_back", "reading the report resource does not mark it reported"


async def test_an_unknown_experiment_or_one_not_rolled_back_is_a_clear_resource_error(
    session: Session,
) -> None:
    with pytest.raises(MCPError, match="no experiment 'exp-nope'"):
        await session.client.read_resource("chaos://experiments/exp-nope")
    designed = await session.client.call_tool(
        "design_experiment",
        {
            "experiment_type": "schedule",
            "target_component": "schedule",
            "hypothesis": "When a faculty member is absent, the schedule should keep coverage.",
            "environment": "test",
            "blast_radius": {"scope": "synthetic program only", "targets": ["schedule"]},
            "duration": "30s",
            "rollback_plan": ["Remove the absence overlay"],
        },
    )
    experiment_id = (designed.structured_content or {})["experiment_id"]
    with pytest.raises(MCPError, match="measure_steady_state"):
        await session.client.read_resource(f"chaos://experiments/{experiment_id}/report")


def test_every_shipped_prompt_file_parses_and_renders_with_only_its_required_arguments() -> None:
    files = prompt_files()
    assert {p.name for p in files} == PROMPTS
    for prompt in files:
        required = {n: "X" for n, spec in prompt.arguments.items() if spec.get("required")}
        assert "{{" not in prompt.render(required)


def test_a_malformed_prompt_file_is_refused_with_its_name() -> None:
    with pytest.raises(PromptFileError, match=r"bad\.prompt\.md: must start with TOML front matter"):
        parse_prompt("no front matter", "bad.prompt.md")
    with pytest.raises(PromptFileError, match="needs description"):
        parse_prompt('+++\nname = "x"\n+++\nbody', "x.prompt.md")
