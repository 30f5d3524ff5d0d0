"""The criteria grammar `phase.target.metric{labels} op threshold unit`, and the design-time check."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos_mcp.config import PHASES, ConfigError, parse_settings
from chaos_mcp.contract import ValidationProblems, validate_design
from chaos_mcp.criteria import from_any
from chaos_mcp.probes.base import Measurement
from chaos_mcp.probes.tolerance import OPS, ToleranceError, evaluate, parse_criterion

names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(lambda n: n not in PHASES)
label_values = st.from_regex(r"[A-Za-z0-9_./ ,=:-]{0,12}", fullmatch=True)
units = st.sampled_from(["", "ms", "s", "min", "%", "ratio", "count"])


@given(
    phase=st.none() | st.sampled_from(PHASES),
    target=st.none() | names,
    metric=names,
    labels=st.dictionaries(names, label_values, max_size=3),
    op=st.sampled_from(list(OPS)),
    threshold=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: round(x, 3)),
    unit=units,
)
def test_every_criterion_reads_back_from_its_own_text_and_from_its_object_form(
    phase: str | None,
    target: str | None,
    metric: str,
    labels: dict[str, str],
    op: str,
    threshold: float,
    unit: str,
) -> None:
    qualified = f"{target}.{metric}" if target else metric
    mapping: dict[str, Any] = {"metric": qualified, "op": op, "threshold": threshold, "unit": unit}
    mapping |= {"labels": labels} if labels else {}
    mapping |= {"phase": phase} if phase else {}
    try:
        criterion = from_any(mapping)
    except Exception:  # a unit the metric's name rules out (latency in %): refused either way
        with pytest.raises(Exception):  # noqa: B017
            from_any(f"{qualified} {op} {threshold:g}{unit}")
        return
    assert (criterion.phase, criterion.metric, criterion.labels) == (phase, qualified, labels)
    again = from_any(criterion.text())
    assert again.model_dump() == criterion.model_dump(), criterion.text()


@pytest.mark.parametrize(
    ("text", "phase", "probe", "labels"),
    [
        ('api.responses{status="503"} >= 1', None, "api", {"status": "503"}),
        ("api.responses{status='500', route=/x} == 0", None, "api", {"status": "500", "route": "/x"}),
        ('api.responses{route="/a,b", status=503,} == 0', None, "api", {"route": "/a,b", "status": "503"}),
        ("recovery.api.error_rate > 50%", "recovery", "api", {}),
        ("during.error_rate < 1%", "during", None, {}),
        ("db-main.v2.error_rate == 0", None, "db-main.v2", {}),
    ],
)
def test_the_text_form_names_phase_target_and_labels(
    text: str, phase: str | None, probe: str | None, labels: dict[str, str]
) -> None:
    criterion = parse_criterion(text)
    assert (criterion.phase, criterion.probe, dict(criterion.labels)) == (phase, probe, labels)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("api.responses{status=503 >= 1", "could not read"),
        ("api.responses{503} >= 1", 'name="value"'),
        ({"metric": "api.error_rate", "phase": "after", "op": ">", "threshold": 1}, "accepted: baseline"),
        ({"metric": "recovery.api.error_rate", "phase": "during", "op": ">", "threshold": 1}, "phase field"),
        ({"metric": "api.responses", "labels": ["status"], "op": ">", "threshold": 1}, "label names"),
    ],
)
def test_unreadable_selectors_and_phases_are_refused_with_what_is_accepted(value: object, says: str) -> None:
    with pytest.raises((ToleranceError, ValueError)) as caught:
        from_any(value)
    assert says in str(caught.value)


def responses(*statuses: str) -> list[Measurement]:
    return [Measurement("api", "responses", 3.0, "count", labels={"status": s}) for s in statuses] + [
        Measurement("api", "requests", 3.0 * len(statuses), "count")
    ]


def test_a_status_the_probe_did_not_see_in_a_sample_counts_zero_and_one_it_saw_counts_its_answers() -> None:
    no_500 = evaluate('api.responses{status="500"} == 0', responses("200", "503"))
    assert no_500.passed and no_500.actual == 0.0, no_500.note
    got_503 = evaluate('api.responses{status="503"} >= 1', responses("200", "503"))
    assert got_503.passed and got_503.actual == 3.0
    got_500 = evaluate('api.responses{status="500"} == 0', responses("500"))
    assert not got_500.passed and got_500.actual == 3.0
    nothing = evaluate('api.responses{status="500"} == 0', [Measurement("api", "requests", 0, "count")])
    assert not nothing.passed and nothing.actual is None, "no responses counted at all is not zero"


TOML = """
[targets.cache]
kind = "redis"
environment = "test"
url = "redis://127.0.0.1:9/0"
[targets.api]
kind = "http"
environment = "test"
base_url = "http://127.0.0.1:9"
[targets.web]
kind = "http"
environment = "test"
base_url = "http://127.0.0.1:8"
"""


def design(**extra: Any) -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": "cache",
        "scenario": "redis_timeout",
        "hypothesis": "When the cache stalls, the API should answer 503 quickly and recover by itself.",
        "environment": "test",
        "blast_radius": {"scope": "cache and both web tiers", "targets": ["cache", "api", "web"]},
        "duration": "5s",
        "rollback_plan": ["Unpause the cache"],
        **extra,
    }


def test_a_bare_metric_several_targets_measure_but_not_the_target_component_is_refused_naming_them() -> None:
    with pytest.raises(ValidationProblems) as caught:
        validate_design(design(abort_conditions=["healthy == 0"]), parse_settings(TOML))
    [problem] = caught.value.problems
    assert "(api, web)" in problem.message and "api.healthy or web.healthy" in problem.message


def test_a_bare_metric_means_the_target_component_or_the_one_target_that_measures_it() -> None:
    checked = validate_design(
        design(abort_conditions=["error_rate > 50%"], detection_signals=["web.healthy == 0"]),
        parse_settings(TOML.replace("[targets.api]", "[targets.api]\nhealth = ''")),
    )
    assert checked.abort_conditions[0].measured_by == "cache"
    assert checked.detection_signals[0].metric == "web.healthy"


def test_an_abort_condition_on_an_unmeasured_metric_is_refused_even_in_the_recovery_phase() -> None:
    with pytest.raises(ValidationProblems) as caught:
        validate_design(design(abort_conditions=["recovery.solver_time > 120 s"]), parse_settings(TOML))
    [problem] = caught.value.problems
    assert "solver_time" in problem.message and "api: latency_p50{route} (ms)" in problem.message


def test_a_phase_that_does_not_fit_the_kind_of_criterion_is_refused() -> None:
    with pytest.raises(ValidationProblems) as caught:
        validate_design(
            design(
                abort_conditions=["baseline.api.error_rate > 1%"], steady_state=["during.error_rate < 1%"]
            ),
            parse_settings(TOML),
        )
    found = {p.field: p.message for p in caught.value.problems}
    assert "accepted here: during, recovery" in found["abort_conditions[0]"]
    assert "steady state takes no phase" in found["steady_state[0]"]


@pytest.mark.parametrize("name", ["recovery", "baseline.api", "during"])
def test_the_configuration_refuses_a_target_named_like_a_phase(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(f'[targets."{name}"]\nkind = "redis"\nenvironment = "test"\nurl = "redis://h:1/0"\n')
    assert "a phase of criteria" in str(caught.value)
