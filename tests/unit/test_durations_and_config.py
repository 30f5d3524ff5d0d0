"""Durations, criteria and chaos.toml: readable in every documented form, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos_mcp.config import ConfigError, embedded_default, load_settings, parse_settings
from chaos_mcp.criteria import CriterionError, parse_criterion
from chaos_mcp.durations import DurationError, format_duration, parse_duration
from tests.helpers import SECRET_PASSWORD, multi_target_settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30),
        ("30s", 30),
        ("5 minutes", 300),
        ("PT5M", 300),
        ("PT1M30S", 90),
        ("1.5m", 90),
        ("250ms", 0.25),
    ],
)
def test_parse_duration_reads_numbers_words_and_iso_8601(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "", "P", "PT", True, None, "-3s", float("nan")])
def test_parse_duration_refuses_what_it_cannot_read_and_says_what_is_accepted(text: object) -> None:
    with pytest.raises(DurationError, match=r"accepted|positive|finite"):
        parse_duration(text)


def test_format_duration_matches_the_reports_style() -> None:
    assert [format_duration(s) for s in (0.45, 45, 90, 120)] == ["450ms", "45s", "1m 30s", "2m"]


def test_parse_criterion_reads_the_spec_examples() -> None:
    assert parse_criterion("recovery_time < 2 min").unit == "min"
    assert parse_criterion("error_rate > 50%").threshold == 50
    with pytest.raises(CriterionError, match="accepted"):
        parse_criterion("fast enough")


def test_no_file_means_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHAOS_MCP_CONFIG", raising=False)
    settings = load_settings()
    assert settings == embedded_default()
    assert settings.targets["schedule"].kind == "schedule"


def test_config_is_found_through_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('[targets.c]\nkind = "redis"\nenvironment = "test"\nurl = "redis://127.0.0.1:6379/0"\n')
    monkeypatch.setenv("CHAOS_MCP_CONFIG", str(path))
    assert list(load_settings().targets) == ["c"]


def test_a_bad_file_names_the_key_and_line_without_a_traceback() -> None:
    text = '[targets.db]\nkind = "postgres"\nenvironment = "prod"\ndsn = "postgresql://x@h/db"\ncolour = 1\n'
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, source="chaos.toml")
    message = str(caught.value)
    assert "targets.db.environment (line 3)" in message
    assert "targets.db.colour (line 5)" in message and "unknown key" in message
    assert "Traceback" not in message


def test_invalid_toml_and_a_raised_duration_ceiling_are_refused() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_settings("[targets\n")
    with pytest.raises(ConfigError, match="never raise"):
        parse_settings('[policy]\nmax_duration = "20m"\n')


def test_settings_know_their_secrets_for_scrubbing() -> None:
    assert SECRET_PASSWORD in multi_target_settings().secrets()
