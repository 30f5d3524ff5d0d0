from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos_mcp.probes.base import Measurement
from chaos_mcp.probes.tolerance import (
    Criterion,
    ToleranceError,
    convert,
    evaluate,
    evaluate_all,
    parse_criterion,
    to_criterion,
)


def m(metric: str, value: float, unit: str, probe: str = "api", **labels: str) -> Measurement:
    return Measurement(probe=probe, metric=metric, value=value, unit=unit, labels=labels)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("recovery_time < 2 min", Criterion("recovery_time", "<", 2.0, "min")),
        ("error_rate > 50%", Criterion("error_rate", ">", 50.0, "%")),
        ("latency_p95 < 200ms", Criterion("latency_p95", "<", 200.0, "ms")),
        ("coverage >= 100%", Criterion("coverage", ">=", 100.0, "%")),
        ("api.latency_p95 <= 0.5 s", Criterion("latency_p95", "<=", 0.5, "s", probe="api")),
        ("db-main.error_rate == 0", Criterion("error_rate", "==", 0.0, "", probe="db-main")),
        ("healthy != 0", Criterion("healthy", "!=", 0.0)),
        ("error_rate < 1e-3 ratio", Criterion("error_rate", "<", 0.001, "ratio")),
        ("latency_p99 ≤ 250 MS", Criterion("latency_p99", "<=", 250.0, "ms")),
    ],
)
def test_criteria_are_read_from_text(text: str, expected: Criterion) -> None:
    assert parse_criterion(text) == expected


@pytest.mark.parametrize("text", ["latency_p95", "latency_p95 << 3ms", "< 200ms", "latency_p95 < fast", ""])
def test_unreadable_criteria_are_refused_with_examples(text: str) -> None:
    with pytest.raises(ToleranceError, match="examples"):
        parse_criterion(text)


def test_a_duration_metric_with_a_percentage_threshold_names_the_metrics_unit_and_the_accepted_ones() -> None:
    with pytest.raises(ToleranceError) as caught:
        parse_criterion("latency_p95 < 5%")
    message = str(caught.value)
    assert "latency_p95 is a duration measured in 'ms'" in message
    assert "'%'" in message
    assert "ms, s" in message and "min" in message


def test_a_rate_with_a_duration_threshold_is_refused() -> None:
    with pytest.raises(ToleranceError, match=r"error_rate is a fraction measured in 'ratio'.*ratio, %"):
        parse_criterion("error_rate < 200ms")


def test_an_unknown_unit_is_refused_with_the_list_of_units() -> None:
    with pytest.raises(ToleranceError, match=r"unknown unit 'parsecs'.*ms"):
        parse_criterion("latency_p95 < 3 parsecs")


def test_criteria_come_from_mappings_with_probe_or_qualified_metric() -> None:
    assert to_criterion(
        {"probe": "api", "metric": "latency_p95", "op": "<", "threshold": 200, "unit": "ms"}
    ) == (Criterion("latency_p95", "<", 200.0, "ms", probe="api"))
    assert to_criterion({"metric": "api.error_rate", "op": "<", "threshold": "0.1%"}) == Criterion(
        "error_rate", "<", 0.1, "%", probe="api"
    )


@pytest.mark.parametrize(
    ("mapping", "match"),
    [
        ({"metric": "x", "op": "~", "threshold": 1}, "unknown comparison"),
        ({"metric": "x", "op": "<", "threshold": "lots"}, "could not read"),
        ({"metric": "x", "op": "<", "threshold": True}, "must be a number"),
        ({"metric": "x", "op": "<", "threshold": 1, "colour": "red"}, "unknown key"),
        ({"op": "<", "threshold": 1}, "metric name"),
    ],
)
def test_bad_mappings_are_refused_clearly(mapping: dict[str, object], match: str) -> None:
    with pytest.raises(ToleranceError, match=match):
        to_criterion(mapping)


def test_any_object_shaped_like_a_criterion_is_accepted() -> None:
    class Elsewhere:
        metric, op, threshold, unit = "api.latency_p95", "<", 200.0, "ms"

    assert to_criterion(Elsewhere()) == Criterion("latency_p95", "<", 200.0, "ms", probe="api")


def test_error_rate_below_a_tenth_of_a_percent_compares_with_a_ratio() -> None:
    verdict = evaluate("error_rate < 0.1%", [m("error_rate", 0.0005, "ratio")])
    assert verdict.passed
    assert verdict.actual == pytest.approx(0.05)
    assert verdict.unit == "%"
    assert not evaluate("error_rate < 0.1%", [m("error_rate", 0.002, "ratio")]).passed


def test_durations_convert_between_minutes_seconds_and_milliseconds() -> None:
    measured = [m("recovery_time", 90_000.0, "ms")]
    assert evaluate("recovery_time < 2 min", measured).passed
    assert not evaluate("recovery_time < 1 min", measured).passed
    assert evaluate("recovery_time < 2 min", measured).actual == pytest.approx(1.5)


def test_coverage_measured_in_percent_meets_a_threshold_given_as_a_ratio_or_percent() -> None:
    assert evaluate("coverage >= 100%", [m("coverage", 100.0, "%", probe="schedule")]).passed
    assert evaluate("coverage >= 1", [m("coverage", 100.0, "%", probe="schedule")]).passed
    assert not evaluate("coverage >= 100%", [m("coverage", 0.97, "ratio", probe="schedule")]).passed


def test_a_threshold_without_unit_is_in_the_canonical_unit() -> None:
    assert evaluate("latency_p95 < 200", [m("latency_p95", 0.15, "s")]).passed
    assert not evaluate("latency_p95 < 100", [m("latency_p95", 0.15, "s")]).passed


def test_a_measurement_in_an_incompatible_unit_is_an_error_naming_both_units() -> None:
    with pytest.raises(
        ToleranceError, match=r"queue_depth is a number measured in 'count'.*'ms'.*accepted units: count"
    ):
        evaluate("queue_depth < 5 ms", [m("queue_depth", 3, "count")])


def test_a_criterion_nobody_measured_fails_with_a_note_of_what_was_measured() -> None:
    verdict = evaluate("db.latency_p95 < 200ms", [m("error_rate", 0, "ratio"), m("latency_p95", 3, "ms")])
    assert not verdict.passed
    assert verdict.actual is None
    assert (
        verdict.note == "no measurement of db.latency_p95; probes measured: api.error_rate, api.latency_p95"
    )


def test_a_missing_metric_note_carries_the_probes_own_explanation() -> None:
    down = Measurement("api", "error_rate", 1.0, "ratio", note="5 of 5 failed (connect_error x5)")
    verdict = evaluate("latency_p95 < 200ms", [down])
    assert not verdict.passed
    assert "5 of 5 failed" in verdict.note


def test_overall_figures_are_preferred_to_per_route_ones() -> None:
    measured = [m("latency_p95", 50, "ms"), m("latency_p95", 900, "ms", route="/slow")]
    assert evaluate("latency_p95 < 200ms", measured).passed
    labelled = evaluate(
        {"metric": "latency_p95", "op": "<", "threshold": 200, "labels": {"route": "/slow"}}, measured
    )
    assert not labelled.passed
    assert labelled.actual == 900


def test_every_probe_must_meet_an_unqualified_criterion() -> None:
    measured = [m("error_rate", 0.0, "ratio", probe="api"), m("error_rate", 0.5, "ratio", probe="cache")]
    verdict = evaluate("error_rate < 0.1%", measured)
    assert not verdict.passed
    assert "cache.error_rate" in verdict.note and "1 of 2" in verdict.note
    assert evaluate("api.error_rate < 0.1%", measured).passed


def test_a_nan_measurement_never_passes() -> None:
    assert not evaluate("value != 3", [m("value", math.nan, "")]).passed


@pytest.mark.parametrize(
    ("op", "value", "passed"),
    [("<", 1, True), ("<", 2, False), ("<=", 2, True), (">", 2, False), (">=", 2, True), ("==", 2, True),
     ("!=", 2, False), ("!=", 3, True)],
)  # fmt: skip
def test_each_comparison_operator(op: str, value: float, passed: bool) -> None:
    assert evaluate(f"errors {op} 2", [m("errors", value, "count")]).passed is passed


def test_steady_state_is_all_criteria_holding() -> None:
    measured = [m("latency_p95", 20, "ms"), m("error_rate", 0.0, "ratio")]
    verdicts, steady = evaluate_all(["latency_p95 < 200ms", "error_rate < 0.1%"], measured)
    assert steady and [v.passed for v in verdicts] == [True, True]
    _, steady = evaluate_all(["latency_p95 < 200ms", "healthy == 1"], measured)
    assert not steady


def test_verdicts_serialise_for_the_results_table() -> None:
    row = evaluate("latency_p95 < 200ms", [m("latency_p95", 20, "ms")]).as_dict()
    assert row["criterion"] == "latency_p95 < 200 ms"
    assert row["expected"] == "< 200ms"
    assert row["actual"] == 20 and row["passed"] is True


@given(st.floats(min_value=1e-6, max_value=1e6), st.sampled_from(["ms", "s", "min", "h", "us"]))
def test_converting_a_duration_there_and_back_is_the_identity(value: float, unit: str) -> None:
    assert convert(convert(value, unit, "ms", "t"), "ms", unit, "t") == pytest.approx(value)


def test_the_specs_words_read_the_probes_metric_names() -> None:
    measured = [m("latency_p95", 20, "ms"), m("coverage_pct", 100.0, "%", probe="schedule")]
    assert evaluate("response_time < 200 ms", measured).passed
    assert evaluate("coverage >= 100%", measured).passed
