from __future__ import annotations

from pathlib import Path

import pytest

from chaos_mcp.config import ConfigError, HttpTarget, parse_settings
from chaos_mcp.probes.http import HttpProbe
from chaos_mcp.probes.registry import probes_for_target

API = '[targets.api]\nkind = "http"\nenvironment = "test"\nbase_url = "http://127.0.0.1:1"\n'


def test_a_header_read_from_a_file_reaches_the_probe_and_counts_as_a_secret(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("Bearer file-token-123\n")
    settings = parse_settings(API + f'headers = {{ Authorization = {{ file = "{secret}" }} }}\n')
    target = settings.targets["api"]
    assert isinstance(target, HttpTarget)
    (probe,) = probes_for_target("api", target)
    assert isinstance(probe, HttpProbe) and probe.headers == {"Authorization": "Bearer file-token-123"}
    assert {"Bearer file-token-123", "file-token-123"} <= settings.secrets()
    assert "file-token-123" not in repr(probe)
    assert (probe.rate, probe.concurrency, probe.requests) == (20.0, 2, 4)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('headers = { Authorization = { env = "NO_SUCH_VARIABLE_42" } }', "NO_SUCH_VARIABLE_42 is not set"),
        ('headers = { Authorization = { env = "A", file = "/etc/hostname" } }', "exactly one of env"),
        ('health_body = { path = "status", accepted = [] }', "at least 1 item"),
        ("concurrency = 0", "greater than or equal to 1"),
    ],
)
def test_bad_http_probe_keys_are_refused_naming_key_and_line(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(API + line + "\n")
    assert "targets.api." in str(caught.value) and "(line 5)" in str(caught.value)
    assert message in str(caught.value)
