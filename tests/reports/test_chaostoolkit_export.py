"""Chaos Toolkit interop: the exported experiment passes the real `chaos validate` (and runs with
`chaos run`), and a chaos-mcp run exports as a Chaos Toolkit journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaos_mcp.interop import export_experiment, export_journal
from chaos_mcp.reports.render import view_of
from tests.reports.conftest import Ran


def chaos(workdir: Path, *args: str, state: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "chaos"
    if not binary.exists():
        pytest.fail("the Chaos Toolkit CLI is needed: pip install chaostoolkit (in the venv)")
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"} | {"HOME": str(workdir)}
    if state is not None:
        env["CHAOS_MCP_STATE_DIR"] = str(state)
    return subprocess.run(
        [
            str(binary),
            "--no-version-check",
            "--no-log-file",
            "--settings",
            str(workdir / "settings.yaml"),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def exported(ran: Ran, name: str) -> dict[str, Any]:
    view = view_of(ran.engine(), ran.ids[name])
    return export_experiment(view.design, view.row.id)


@pytest.mark.parametrize("name", ["rejected", "aborted"])
def test_the_exported_experiment_passes_chaos_validate(ran: Ran, tmp_path: Path, name: str) -> None:
    (tmp_path / "experiment.json").write_text(json.dumps(exported(ran, name)), encoding="utf-8")
    done = chaos(tmp_path, "validate", "experiment.json")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "experiment syntax and semantic look valid" in done.stdout + done.stderr


def test_the_export_carries_the_hypothesis_probes_tolerances_method_and_rollbacks(ran: Ran) -> None:
    experiment = exported(ran, "rejected")
    assert experiment["title"] and experiment["description"].startswith("When the busiest faculty member")
    assert "chaos-mcp" in experiment["tags"] and "n1_removal" in experiment["tags"]
    probe = experiment["steady-state-hypothesis"]["probes"][0]
    assert probe["provider"]["arguments"] == {"target": "schedule", "metric": "coverage_pct", "unit": "%"}
    assert probe["tolerance"]["provider"]["arguments"] == {"op": ">=", "threshold": 100.0}
    kinds = [(a["type"], a["provider"]["func"]) for a in experiment["method"]]
    assert kinds[0] == ("action", "start_experiment") and kinds[-1] == ("action", "rollback_target")
    assert ("probe", "metric_value") in kinds, "the success criteria are recorded during the window"
    assert experiment["rollbacks"][0]["provider"]["func"] == "rollback_target"
    design = experiment["method"][0]["provider"]["arguments"]["design"]
    assert design["success_criteria"] == [
        "coverage_pct >= 100%",
        "max_utilization < 0.8",
        "recovery_time < 2 min",
    ]


@pytest.mark.slow
def test_chaos_run_of_the_export_injects_observes_and_rolls_back_for_real(ran: Ran, tmp_path: Path) -> None:
    (tmp_path / "experiment.json").write_text(json.dumps(exported(ran, "rejected")), encoding="utf-8")
    state = tmp_path / "state"
    state.mkdir()
    done = chaos(tmp_path, "run", "experiment.json", "--journal-path", "journal.json", state=state)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    journal = json.loads((tmp_path / "journal.json").read_text(encoding="utf-8"))
    assert journal["status"] == "completed" and journal["steady_states"]["before"]["steady_state_met"]
    outputs = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    assert outputs["schedule.coverage_pct (coverage_pct >= 100%)"] < 100, "measured while the fault acted"
    assert outputs["roll back schedule and measure recovery"][0]["status"] == "COMPLETE"
    assert journal["steady_states"]["after"]["steady_state_met"] is True


def test_a_run_exports_as_a_chaos_toolkit_journal(ran: Ran) -> None:
    journal = export_journal(view_of(ran.engine(), ran.ids["rejected"]))
    json.dumps(journal)
    for key in (
        "experiment",
        "start",
        "end",
        "duration",
        "status",
        "deviated",
        "steady_states",
        "run",
        "rollbacks",
    ):
        assert key in journal, key
    assert journal["status"] == "completed" and journal["deviated"] is True
    before = journal["steady_states"]["before"]
    assert before["steady_state_met"] is True and before["probes"][0]["output"] == 100.0
    names = [r["activity"]["name"] for r in journal["run"]]
    assert names[0].startswith("inject n1_removal") and names[-1].startswith("roll back schedule")
    window = [
        r["output"] for r in journal["run"] if r["activity"]["name"].startswith("schedule.coverage_pct")
    ]
    assert window and min(window) < 100
    assert (
        journal["run"][-1]["status"] == "succeeded" and journal["steady_states"]["after"]["steady_state_met"]
    )
    assert journal["extensions"][0]["status"] == "HYPOTHESIS_REJECTED"


def test_a_stopped_or_crashed_run_maps_to_the_chaos_toolkit_status(ran: Ran) -> None:
    assert export_journal(view_of(ran.engine(), ran.ids["aborted"]))["status"] == "aborted"
    assert export_journal(view_of(ran.engine(), ran.ids["crashed"]))["status"] == "interrupted"
