from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from chaos_mcp.config import ConfigError, parse_settings
from chaos_mcp.probes.logs import FileSource, LogsProbe, scan
from tests.probes.helpers import pick

pytestmark = pytest.mark.anyio


def append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as log:
        log.write("".join(line + "\n" for line in lines))


def test_error_lines_secrets_and_stack_traces_are_counted_and_plain_lines_are_not() -> None:
    counts = scan(
        [
            "2026-12-03T08:00:00Z INFO GET /health 200 1.2ms",
            "2026-12-03T08:00:01Z ERROR GET /api 503 database unavailable",
            "connecting to postgresql://app:hunter22@db:5432/app",
            "auth header was Bearer eyJhbGciOiJIUzI1NiJ9.abc",
            "login failed for user=bob password=letmein",
            "-----BEGIN RSA PRIVATE KEY-----",
            "the configured token s3cret-token-42 went to the log",
            "Traceback (most recent call last):",
            '  File "app.py", line 3, in <module>',
            "Exception in thread main java.lang.IllegalStateException",
            "\tat com.example.Api.handle(Api.java:12)",
            "\tat com.example.Server.run(Server.java:40)",
            "goroutine 1 [running]:",
            "password rotation finished; no errors",
        ],
        secrets={"s3cret-token-42"},
    )
    assert (counts.lines, counts.errors, counts.secrets, counts.stack_traces) == (14, 1, 5, 3)


def test_scanning_a_pathological_line_stays_linear() -> None:
    line = "password" + " " * 200_000 + "x" + ":" * 200_000 + "://" + "a:" * 100_000
    began = time.perf_counter()
    scan([line] * 5, secrets={"never-there-secret"})
    assert time.perf_counter() - began < 2.0


async def test_the_probe_counts_only_what_was_written_after_the_baseline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "ERROR before the experiment, password=old")
    probe = LogsProbe("api", FileSource(str(log)), frozenset({"hunter22"}))
    baseline = await probe.sample()
    assert pick(baseline, "log_lines").value == 0 and pick(baseline, "log_secrets").value == 0
    append(log, "INFO ok", "ERROR db down dsn=postgresql://app:hunter22@127.0.0.1/app")
    during = await probe.sample()
    assert [pick(during, m).value for m in ("log_lines", "log_errors", "log_secrets")] == [2, 1, 1]
    assert all("hunter22" not in m.note for m in during)
    assert pick(await probe.sample(), "log_lines").value == 0


async def test_rotation_drains_the_old_file_then_follows_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    probe = LogsProbe("api", FileSource(str(log)))
    await probe.sample()
    append(log, "ERROR one", "ERROR two")
    os.rename(log, tmp_path / "app.log.1")
    append(log, "ERROR three")
    measured = await probe.sample()
    assert pick(measured, "log_errors").value == 3


async def test_truncation_in_place_reads_the_new_content_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "INFO a long line that was there before the truncation happened")
    probe = LogsProbe("api", FileSource(str(log)))
    await probe.sample()
    log.write_text("ERROR x\n")
    assert pick(await probe.sample(), "log_errors").value == 1


async def test_reads_are_bounded_and_the_rest_is_counted_by_the_next_sample(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    probe = LogsProbe("api", FileSource(str(log)), max_bytes=1000)
    await probe.sample()
    append(log, *["ERROR " + "x" * 93] * 30)  # 3000 bytes
    first = await probe.sample()
    assert pick(first, "log_errors").value == 10 and "next sample" in pick(first, "log_errors").note
    rest = [pick(await probe.sample(), "log_errors").value for _ in range(3)]
    assert sum(rest) == 20


@pytest.mark.parametrize(
    ("path", "problem"), [("/no/such/dir/app.log", "does not exist"), ("/tmp", "is not a regular file")]
)
def test_a_log_file_that_cannot_be_read_is_refused_at_load_naming_key_line_and_path(
    path: str, problem: str
) -> None:
    toml = (
        '[targets.api]\nkind = "http"\nenvironment = "test"\n'
        f'base_url = "http://127.0.0.1:1"\nlogs = "{path}"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_settings(toml)
    assert f"targets.api.logs (line 5): log file '{path}' {problem}" in str(caught.value)
