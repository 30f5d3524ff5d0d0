from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schedule_helpers import fast_n1, fast_n2, random_program

from chaos_mcp.schedule import oracle
from chaos_mcp.schedule.analysis import analyze
from chaos_mcp.schedule.overlay import apply_overlays
from chaos_mcp.schedule.synthetic import generate


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    n_faculty=st.integers(2, 9),
    n_residents=st.integers(0, 8),
    days=st.integers(7, 16),
    removed=st.integers(0, 2),
)
def test_n1_and_n2_equal_a_brute_force_computation_on_random_programs(
    seed: int, n_faculty: int, n_residents: int, days: int, removed: int
) -> None:
    program = random_program(seed, n_faculty, n_residents, days)
    program = apply_overlays(
        program, [{"kind": "remove_faculty", "faculty_ids": [f"F{i}" for i in range(removed)]}]
    )
    a = analyze(program, depth=2)
    assert fast_n1(a) == oracle.n1(program)
    assert fast_n2(a) == oracle.n2(program)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), n_faculty=st.integers(4, 20), days=st.sampled_from([7, 14, 28]))
def test_n1_and_n2_equal_brute_force_on_generated_programs(seed: int, n_faculty: int, days: int) -> None:
    program = generate(seed, n_faculty, n_faculty + 5, days)
    a = analyze(program, depth=2)
    assert fast_n1(a) == oracle.n1(program)
    assert fast_n2(a) == oracle.n2(program)


def test_n2_covers_every_pair_without_pruning() -> None:
    a = analyze(generate(3, 15, 20, 14), depth=2)
    assert a.second is not None
    assert len(a.second.pairs) == 15 * 14 // 2


def test_removing_the_busiest_faculty_opens_gaps_in_the_default_program() -> None:
    program = generate()
    a = analyze(program)
    busiest = a.busiest()
    assert busiest is not None
    assert int(a.first.new_uncovered[busiest]) > 0
    after = analyze(
        apply_overlays(program, [{"kind": "remove_faculty", "faculty_ids": [program.faculty[busiest].id]}])
    )
    assert after.cov.uncovered == int(a.first.new_uncovered[busiest])


def test_the_default_program_is_green_or_yellow_with_moderate_utilization() -> None:
    a = analyze(generate())
    assert a.level.name in ("GREEN", "YELLOW")
    assert 0.6 <= a.util.rho <= 0.75
    assert a.cov.uncovered == 0
    assert a.violations == []


def test_cascade_spreads_lost_load_and_fails_those_pushed_past_the_limit() -> None:
    from chaos_mcp.schedule import contingency

    program = generate(7, 12, 17, 28)
    a = analyze(program)
    everyone_but_two = [int(i) for i in a.active[:-2]]
    result = contingency.cascade(program, a.util, everyone_but_two)
    assert result["collapsed"] is True or result["final_utilization"] is not None
    mild = contingency.cascade(program, a.util, [int(a.active[0])])
    assert mild["cascade_failures"] == 0 and mild["collapsed"] is False


def test_severity_follows_the_sole_provider_and_block_count_rules() -> None:
    from chaos_mcp.schedule.contingency import severity

    assert severity(1, 1) == "critical"
    assert severity(6, 0) == "high"
    assert severity(5, 0) == "medium"
    assert severity(0, 0) == "none"
