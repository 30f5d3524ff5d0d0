from __future__ import annotations

import math
import statistics as stdlib_statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos_mcp.probes.statistics import StatisticsError, error_rate, percentile, summarize

LATENCIES = [15.0, 20.0, 35.0, 40.0, 50.0]
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 15.0), (25, 20.0), (40, 29.0), (50, 35.0), (75, 40.0), (90, 46.0), (95, 48.0), (100, 50.0)],
)
def test_percentiles_of_a_fixed_sequence_interpolate_linearly_between_ranks(
    q: float, expected: float
) -> None:
    assert percentile(LATENCIES, q) == pytest.approx(expected)


def test_percentiles_of_one_to_a_hundred_match_the_textbook_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)


def test_order_of_the_input_does_not_matter() -> None:
    assert percentile([50.0, 15.0, 40.0, 20.0, 35.0], 40) == percentile(LATENCIES, 40)


def test_a_single_value_is_every_percentile() -> None:
    assert [percentile([7.0], q) for q in (0, 50, 99, 100)] == [7.0, 7.0, 7.0, 7.0]


def test_no_values_have_no_percentile() -> None:
    with pytest.raises(StatisticsError, match="no values"):
        percentile([], 50)


@pytest.mark.parametrize("q", [-1, 100.5, math.nan])
def test_a_percentile_outside_zero_to_a_hundred_is_refused(q: float) -> None:
    with pytest.raises(StatisticsError, match="between 0 and 100"):
        percentile(LATENCIES, q)


@given(st.lists(finite, min_size=1, max_size=60), st.floats(min_value=0, max_value=100))
def test_percentile_agrees_with_numpys_linear_method(values: list[float], q: float) -> None:
    expected = float(np.percentile(np.array(values), q))
    assert percentile(values, q) == pytest.approx(expected, rel=1e-12, abs=1e-6)


@given(st.lists(finite, min_size=2, max_size=60))
def test_whole_percentiles_agree_with_the_stdlib_inclusive_quantiles(values: list[float]) -> None:
    cuts = stdlib_statistics.quantiles(values, n=100, method="inclusive")
    for q in (1, 25, 50, 95, 99):
        assert percentile(values, q) == pytest.approx(cuts[q - 1], rel=1e-9, abs=1e-6)


@given(st.lists(finite, min_size=1, max_size=60), st.floats(min_value=0, max_value=100))
def test_percentile_lies_between_its_neighbouring_ranks(values: list[float], q: float) -> None:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = ordered[math.floor(rank)], ordered[math.ceil(rank)]
    assert low <= percentile(values, q) <= high


@given(st.lists(finite, min_size=1, max_size=40), st.floats(0, 100), st.floats(0, 100))
def test_percentile_never_decreases_as_q_grows(values: list[float], a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert percentile(values, low) <= percentile(values, high)


def test_summary_of_a_known_sequence() -> None:
    summary = summarize([10.0, 20.0, 30.0, 40.0])
    assert summary is not None
    assert summary.as_dict() == pytest.approx(
        {"count": 4, "min": 10.0, "mean": 25.0, "p50": 25.0, "p95": 38.5, "p99": 39.7, "max": 40.0}
    )


def test_summary_of_a_uniform_sample_sits_near_its_true_quantiles() -> None:
    sample = np.random.default_rng(7).uniform(0.0, 100.0, 20_000).tolist()
    summary = summarize(sample)
    assert summary is not None
    assert summary.p50 == pytest.approx(50, abs=1.5)
    assert summary.p95 == pytest.approx(95, abs=1.0)
    assert summary.p99 == pytest.approx(99, abs=0.5)
    assert summary.mean == pytest.approx(50, abs=1.5)


def test_summary_of_an_exponential_sample_matches_its_closed_form_quantiles() -> None:
    scale = 20.0  # ms; quantile q of Exp(1/scale) is -scale * ln(1 - q)
    sample = np.random.default_rng(11).exponential(scale, 50_000).tolist()
    summary = summarize(sample)
    assert summary is not None
    assert summary.p50 == pytest.approx(-scale * math.log(0.5), rel=0.03)
    assert summary.p95 == pytest.approx(-scale * math.log(0.05), rel=0.03)
    assert summary.p99 == pytest.approx(-scale * math.log(0.01), rel=0.05)


def test_summary_of_nothing_is_none() -> None:
    assert summarize([]) is None


@pytest.mark.parametrize(
    ("errors", "total", "expected"),
    [(0, 10, 0.0), (1, 1000, 0.001), (3, 4, 0.75), (5, 5, 1.0), (0, 1, 0.0)],
)
def test_error_rate_is_the_ratio_of_errors_to_requests(errors: int, total: int, expected: float) -> None:
    assert error_rate(errors, total) == pytest.approx(expected)


def test_error_rate_of_zero_requests_is_undefined_rather_than_zero() -> None:
    assert error_rate(0, 0) is None


@pytest.mark.parametrize(("errors", "total"), [(2, 1), (-1, 3), (0, -1)])
def test_impossible_counts_are_refused(errors: int, total: int) -> None:
    with pytest.raises(StatisticsError):
        error_rate(errors, total)
