from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.schedule import api
from chaos_mcp.schedule.errors import ScheduleError, ScheduleValidationError
from chaos_mcp.schedule.jsonfmt import from_dict, parse_json, to_dict
from chaos_mcp.schedule.synthetic import generate


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    return to_dict(generate(7, 6, 6, 14))


def problems_of(raw: object) -> list[tuple[str, str]]:
    with pytest.raises(ScheduleValidationError) as info:
        from_dict(raw)
    return [(p.code, p.where) for p in info.value.problems]


def test_a_generated_program_round_trips_through_the_json_format(good: dict[str, Any]) -> None:
    assert to_dict(from_dict(good)) == good


def test_a_json_target_gives_the_same_metrics_as_its_synthetic_source(tmp_path: Path) -> None:
    path = tmp_path / "program.json"
    path.write_text(json.dumps(to_dict(generate())))
    from_file = api.schedule_metrics(
        "j", ScheduleTarget(kind="schedule", environment="test", source=f"json:{path}")
    )
    synthetic = api.schedule_metrics("s", ScheduleTarget(kind="schedule", environment="test"))
    assert from_file == synthetic


def test_dangling_references_are_each_named(good: dict[str, Any]) -> None:
    bad = copy.deepcopy(good)
    bad["assignments"][0]["person"] = "NOBODY"
    bad["assignments"][1]["service"] = "no-such-service"
    bad["absences"].append({"person": "GHOST", "start_block": 0, "end_block": 1})
    found = problems_of(bad)
    assert ("dangling_reference", "assignments[0]") in found
    assert ("dangling_reference", "assignments[1]") in found
    assert any(code == "dangling_reference" and where.startswith("absences[") for code, where in found)


def test_overlapping_assignments_are_named(good: dict[str, Any]) -> None:
    bad = copy.deepcopy(good)
    first = bad["assignments"][0]
    other = next(s["id"] for s in bad["services"] if s["id"] != first["service"])
    bad["assignments"].append({**first, "service": other})
    found = problems_of(bad)
    assert found == [("overlapping_assignment", f"assignments[{len(bad['assignments']) - 1}]")]


@pytest.mark.parametrize("hours", [-4, 0, 100])
def test_negative_zero_or_absurd_hours_are_named(good: dict[str, Any], hours: float) -> None:
    bad = copy.deepcopy(good)
    bad["assignments"][3]["hours"] = hours
    assert problems_of(bad) == [("bad_hours", "assignments[3]")]


def test_unknown_credentials_are_named_with_the_known_ones(good: dict[str, Any]) -> None:
    bad = copy.deepcopy(good)
    bad["faculty"][0]["credentials"].append({"name": "JEDI", "expires": None})
    bad["services"][0]["required_credentials"].append("WIZARD")
    with pytest.raises(ScheduleValidationError) as info:
        from_dict(bad)
    codes = [p.code for p in info.value.problems]
    assert codes == ["unknown_credential", "unknown_credential"]
    assert "known credentials: ACLS" in info.value.problems[0].message


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ([1, 2, 3], "$"),
        ({"start_date": "2025-07-01", "days": 14, "services": []}, "$.faculty"),
        ({"start_date": "yesterday", "days": 14, "faculty": [], "services": []}, "$.start_date"),
        ({"start_date": "2025-07-01", "days": 14, "faculty": [{"id": 1}], "services": []}, "$.faculty[0].id"),
        (
            {"start_date": "2025-07-01", "days": 14, "faculty": [], "services": [], "surprise": 1},
            "$.surprise",
        ),
    ],
)
def test_a_file_of_the_wrong_shape_is_a_report_not_a_crash(raw: object, where: str) -> None:
    found = problems_of(raw)
    assert ("wrong_shape", where) in found


def test_text_that_is_not_json_is_named() -> None:
    with pytest.raises(ScheduleValidationError, match="not valid JSON"):
        parse_json("{not json")


def test_a_missing_file_is_a_schedule_error_with_the_path(tmp_path: Path) -> None:
    target = ScheduleTarget(kind="schedule", environment="test", source=f"json:{tmp_path}/absent.json")
    with pytest.raises(ScheduleError, match=r"absent\.json"):
        api.schedule_metrics("t", target)


def test_every_problem_is_reported_at_once(good: dict[str, Any]) -> None:
    bad = copy.deepcopy(good)
    bad["assignments"][0]["person"] = "NOBODY"
    bad["assignments"][2]["hours"] = -1
    bad["assignments"][4]["block"] = 10_000
    codes = sorted(code for code, _ in problems_of(bad))
    assert codes == ["bad_hours", "block_out_of_range", "dangling_reference"]
