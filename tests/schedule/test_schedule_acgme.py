from __future__ import annotations

from datetime import date

from chaos_mcp.schedule import acgme
from chaos_mcp.schedule.coverage import build_coverage
from chaos_mcp.schedule.model import Assignment, Faculty, Program, Resident, Rules, Service

START = date(2025, 7, 7)  # a Monday
WARD = Service("ward", "Ward", 0, supervised=False)


def program(
    assignments: list[Assignment], days: int = 28, rules: Rules | None = None, **kw: object
) -> Program:
    base = Program(
        start=START,
        days=days,
        faculty=(Faculty("F1", "F1"), Faculty("F2", "F2")),
        residents=(Resident("R1", "R1", 1), Resident("R2", "R2", 1), Resident("R3", "R3", 1)),
        services=(WARD,),
        assignments=tuple(assignments),
        rules=rules or Rules(),
    )
    return base.replace(**kw) if kw else base


def rules_broken(p: Program) -> list[str]:
    return [v.rule for v in acgme.check(p, build_coverage(p))]


def month_of_duty(pm_hours: float) -> list[Assignment]:
    """24 duty days in 28 (a day off each week), AM 6 h + PM `pm_hours`."""
    out = []
    for day in range(28):
        if day % 7 == 6:
            continue
        out.append(Assignment("R1", 2 * day, "ward"))
        out.append(Assignment("R1", 2 * day + 1, "ward", hours=pm_hours))
    return out


def test_exactly_80_hours_a_week_averaged_over_28_days_is_compliant() -> None:
    assert rules_broken(program(month_of_duty(320 / 24 - 6))) == []


def test_81_hours_a_week_averaged_over_28_days_is_a_violation_naming_person_and_window() -> None:
    violations = acgme.check(program(month_of_duty(324 / 24 - 6)))
    assert [v.rule for v in violations] == ["weekly_hours_80"]
    v = violations[0]
    assert v.person == "R1" and v.severity == "high"
    assert "81.0 h/week" in v.detail and v.window == "2025-07-07 .. 2025-08-03"


def test_six_consecutive_duty_days_are_allowed() -> None:
    assert rules_broken(program([Assignment("R1", 2 * d, "ward") for d in range(6)])) == []


def test_the_seventh_consecutive_duty_day_is_a_violation() -> None:
    violations = acgme.check(program([Assignment("R1", 2 * d, "ward") for d in range(7)]))
    assert [v.rule for v in violations] == ["one_day_off_in_7"]
    assert "day 7 of the run is 2025-07-13" in violations[0].detail


def test_28_hours_of_continuous_duty_is_the_limit() -> None:
    ok = [Assignment("R1", 0, "ward"), Assignment("R1", 1, "ward", hours=22)]  # 07:00 .. 11:00 next day
    assert rules_broken(program(ok)) == []


def test_29_hours_of_continuous_duty_is_a_violation() -> None:
    bad = [Assignment("R1", 0, "ward"), Assignment("R1", 1, "ward", hours=23)]
    violations = acgme.check(program(bad))
    assert [v.rule for v in violations] == ["continuous_duty_24_4"]
    assert violations[0].severity == "critical" and "29 h" in violations[0].detail


def test_rest_between_shifts_below_the_configured_minimum_is_a_violation() -> None:
    shifts = [Assignment("R1", 1, "ward"), Assignment("R1", 2, "ward")]  # 13-19, then 07:00 next day: 12 h
    assert rules_broken(program(shifts)) == []
    assert rules_broken(program(shifts, rules=Rules(min_rest_hours=13))) == ["min_rest"]


def test_hours_per_half_day_are_configurable() -> None:
    shifts = [Assignment("R1", 2 * d + h, "ward") for d in range(28) if d % 7 != 6 for h in (0, 1)]
    assert rules_broken(program(shifts)) == []  # 6 h blocks: 72 h/week
    assert rules_broken(program(shifts, rules=Rules(hours_per_half_day=7))) == [
        "weekly_hours_80"
    ]  # 84 h/week


def test_supervision_ratio_one_faculty_for_two_pgy1() -> None:
    clinic = Service("clinic", "Clinic", 0)
    residents = [Assignment(r, 0, "clinic") for r in ("R1", "R2", "R3")]
    one = program([*residents, Assignment("F1", 0, "clinic")], services=(clinic,))
    violations = acgme.check(one, build_coverage(one))
    assert [v.rule for v in violations] == ["supervision_ratio"]
    assert violations[0].person == "service:clinic" and "need 2" in violations[0].detail
    two = program(
        [*residents, Assignment("F1", 0, "clinic"), Assignment("F2", 0, "clinic")], services=(clinic,)
    )
    assert rules_broken(two) == []


def test_supervision_ratios_are_configurable() -> None:
    clinic = Service("clinic", "Clinic", 0)
    shifts = [Assignment(r, 0, "clinic") for r in ("R1", "R2", "R3")] + [Assignment("F1", 0, "clinic")]
    relaxed = program(shifts, services=(clinic,), rules=Rules(supervision_ratio=((1, 3), (2, 4), (3, 4))))
    assert rules_broken(relaxed) == []
