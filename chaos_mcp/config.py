"""`chaos.toml` → typed settings, and the embedded default.

Only the operator declares targets; every tool refers to them by name. A bad file gets
a `ConfigError` naming the key and line, never a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chaos_mcp.durations import DurationError, parse_duration
from chaos_mcp.secrets import secrets_in_url
from chaos_mcp.state import state_dir

Environment = Literal["test", "staging", "production"]
SPEC_MAX_DURATION = 600.0
DEFAULT_PROXY_API = "http://127.0.0.1:8474"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


PHASES = ("baseline", "during", "response", "recovery")
"""Phases of an experiment, the first word of a criterion `phase.target.metric`; no target may be named so."""


class ConfigError(Exception):
    """The configuration file cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProxySpec(_Strict):
    listen: str = Field(description="host:port the proxy listens on, e.g. 127.0.0.1:15432")
    upstream: str = Field(description="host:port of the real service")

    @field_validator("listen", "upstream")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return _host_port(value)


def _host_port(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port such as 127.0.0.1:15432, got {value!r}")
    return value


class PrometheusQuery(_Strict):
    base_url: str = Field(description="a Prometheus-compatible HTTP API, e.g. http://127.0.0.1:9090")
    query: str = Field(min_length=1, description="an instant PromQL query")
    metric: str | None = Field(None, description="the metric name the result is recorded under")
    unit: str | None = None
    timeout: float | None = Field(None, gt=0, le=60)


def _readable_file(value: str, what: str) -> str:
    """`value` names a regular file this process can read, else an error naming the path."""
    path = Path(value).expanduser()
    if not path.exists():
        raise ValueError(f"{what} {value!r} does not exist; give the path of an existing file")
    if not path.is_file():
        raise ValueError(f"{what} {value!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{what} {value!r} is not readable by this process; grant read access")
    return str(path)


class _Target(_Strict):
    environment: Environment
    description: str = ""
    sensitive: bool = False
    proxy: ProxySpec | None = None
    prometheus: list[PrometheusQuery] | None = Field(None, description="extra Prometheus queries to probe")
    logs: str | None = Field(None, description="a log file the service writes, followed by the logs probe")

    @field_validator("logs")
    @classmethod
    def _logs(cls, value: str | None) -> str | None:
        return None if value is None else _readable_file(value, "log file")


class SecretFrom(_Strict):
    """A header value read at probe time from the environment or a file, never written in the config."""

    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: str | None = None

    @field_validator("file")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        return None if value is None else _readable_file(value, "header file")

    @model_validator(mode="after")
    def _one_source(self) -> SecretFrom:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of env = "NAME" or file = "PATH"')
        if self.env is not None and self.env not in os.environ:
            raise ValueError(f"environment variable {self.env} is not set; export it before starting")
        return self

    def resolve(self) -> str:
        """The value now: the variable's, or the file's first line; "" when it has gone since loading."""
        if self.env is not None:
            return os.environ.get(self.env, "")
        try:
            text = Path(self.file or "").read_text(encoding="utf-8")
        except OSError:
            return ""
        return text.strip().splitlines()[0].strip() if text.strip() else ""


class HealthBody(_Strict):
    path: str = Field(min_length=1, description="dotted JSON path to the health answer's status, e.g. status")
    accepted: list[str | int | float | bool] = Field(min_length=1, description="values that read healthy")


class PostgresTarget(_Target):
    kind: Literal["postgres"]
    dsn: str = Field(description="admin connection used for native faults and probes")
    database: str | None = Field(None, description="the database faults act on; default: the DSN's")


class RedisTarget(_Target):
    kind: Literal["redis"]
    url: str


class HttpTarget(_Target):
    kind: Literal["http"]
    base_url: str
    health: str = "/health"
    headers: dict[str, SecretFrom] = Field(
        default_factory=dict, description='request headers, each { env = "NAME" } or { file = "PATH" }'
    )
    health_body: HealthBody | None = Field(None, description="the healthy answer's JSON path and values")
    requests_per_second: float = Field(20.0, gt=0, le=200, description="pace of the probe's requests")
    concurrency: int = Field(2, ge=1, le=8, description="requests in flight at once, at most")
    requests: int = Field(4, ge=1, le=200, description="requests per sample")
    request_timeout: float = Field(2.0, gt=0, le=30, description="each request's own time limit, seconds")

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, SecretFrom]) -> dict[str, SecretFrom]:
        for name in headers:
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
        return headers

    def header_values(self) -> dict[str, str]:
        return {name: source.resolve() for name, source in self.headers.items()}


class TcpTarget(_Target):
    kind: Literal["tcp"]
    address: str


class ProcessTarget(_Target):
    kind: Literal["process"]
    max_memory_mb: int = Field(1024, ge=1, le=65536, description="ceiling for memory-pressure ballast")


class ScheduleTarget(_Target):
    kind: Literal["schedule"]
    source: str = Field("synthetic", description="synthetic | json:PATH | postgres")
    seed: int = 7
    faculty: int = Field(12, ge=2, le=500)
    residents: int = Field(17, ge=0, le=1000)
    days: int = Field(28, ge=7, le=365)
    dsn: str | None = None
    mapping: dict[str, dict[str, str]] | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value in ("synthetic", "postgres") or (value.startswith("json:") and len(value) > 5):
            return value
        raise ValueError(f"expected synthetic, json:PATH or postgres, got {value!r}")


Target = Annotated[
    PostgresTarget | RedisTarget | HttpTarget | TcpTarget | ProcessTarget | ScheduleTarget,
    Field(discriminator="kind"),
]
TargetKind = Literal["postgres", "redis", "http", "tcp", "process", "schedule"]
_KINDS = ("postgres", "redis", "http", "tcp", "process", "schedule")


class JournalSettings(_Strict):
    url: str | None = Field(None, description="sqlite:///PATH or postgresql://…; default: the state dir")

    def resolved_url(self) -> str:
        return self.url or f"sqlite:///{state_dir() / 'journal.sqlite3'}"


class ProxySettings(_Strict):
    api: str = DEFAULT_PROXY_API
    allowed_upstreams: list[str] = Field(
        default_factory=list,
        description="host:port upstreams the proxy daemon accepts besides the targets' proxy.upstream",
    )
    allowed_listen_hosts: list[str] = Field(
        default_factory=list, description="listen hosts the proxy daemon accepts besides loopback"
    )

    @field_validator("allowed_upstreams")
    @classmethod
    def _upstreams(cls, values: list[str]) -> list[str]:
        return [_host_port(value) for value in values]


class PolicySettings(_Strict):
    allow_production: bool = False
    data_mutation: Literal["approve", "allow", "deny"] = "approve"
    max_duration: float = SPEC_MAX_DURATION
    max_concurrent: int = Field(20, ge=1, le=1000)
    on_disconnect: Literal["rollback", "continue"] = "rollback"

    @field_validator("max_duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise ValueError(str(exc)) from None
        if seconds > SPEC_MAX_DURATION:
            raise ValueError(f"may lower the spec's 10-minute ceiling, never raise it (got {seconds:g}s)")
        return seconds


class Settings(_Strict):
    journal: JournalSettings = JournalSettings()
    targets: dict[str, Target] = Field(default_factory=dict)
    proxy: ProxySettings = ProxySettings()
    policy: PolicySettings = PolicySettings()
    source: str = Field("embedded default", description="where these settings came from")

    @field_validator("targets")
    @classmethod
    def _names(cls, targets: dict[str, Target]) -> dict[str, Target]:
        for name in targets:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,62}", name):
                raise ValueError(f"target name {name!r} must start with a letter; letters, digits, _ . -")
            if name.partition(".")[0] in PHASES:
                raise ValueError(
                    f"target name {name!r} starts with {name.partition('.')[0]!r}, a phase of criteria "
                    f"({', '.join(PHASES)}: recovery.api.error_rate); rename the target, e.g. {name}_svc"
                )
        return targets

    def secrets(self) -> set[str]:
        """Every credential in the configuration, so it can be scrubbed from output."""
        found: set[str] = set()
        urls = [self.journal.url or ""]
        for target in self.targets.values():
            urls += [getattr(target, attr, None) or "" for attr in ("dsn", "url", "base_url")]
        for url in urls:
            found |= secrets_in_url(url)
        for target in self.targets.values():
            if isinstance(target, HttpTarget):
                for value in target.header_values().values():
                    # "Bearer abc…": the credential alone is a secret too, wherever it shows up.
                    found |= {value, value.split()[-1]} if value.strip() else set()
        token = os.environ.get("CHAOS_MCP_TOKEN")
        if token:
            found.add(token)
        return found


def embedded_default() -> Settings:
    """No file at all: an SQLite journal and a synthetic residency program."""
    return Settings(
        targets={
            "schedule": ScheduleTarget(
                kind="schedule",
                environment="test",
                description="bundled synthetic residency program (12 faculty, 17 residents)",
            )
        }
    )


def find_config_path(explicit: str | None = None) -> Path | None:
    """`--config`, then `$CHAOS_MCP_CONFIG`, then `./chaos.toml`; None means the embedded default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("CHAOS_MCP_CONFIG")
    if env:
        return Path(env)
    local = Path("chaos.toml")
    return local if local.is_file() else None


def load_settings(explicit: str | None = None) -> Settings:
    path = find_config_path(explicit)
    if path is None:
        return embedded_default()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    return parse_settings(text, source=str(path))


def parse_settings(text: str, source: str = "<string>") -> Settings:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Settings.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise ConfigError(_explain(exc, text, source)) from None


def _explain(exc: ValidationError, text: str, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} problem(s) in the configuration:"]
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if len(loc) > 2 and loc[0] == "targets" and loc[2] in _KINDS:
            del loc[2]
        key = ".".join(loc)
        line = _line_of(text, loc)
        where = f" (line {line})" if line else ""
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling"
        lines.append(f"- {key}{where}: {message}")
    return "\n".join(lines)


def _line_of(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of the last key in `loc` within its table."""
    tables = [i for i, part in enumerate(loc) if i < len(loc) - 1]
    header = ".".join(loc[: tables[-1] + 1]) if tables else ""
    in_table = header == ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = stripped.strip("[]").strip() == header or header.startswith(
                stripped.strip("[]").strip()
            )
            if in_table and stripped.strip("[]").strip() == header and len(loc) == 1:
                return number
            continue
        if in_table and re.match(rf"{re.escape(loc[-1])}\s*=", stripped):
            return number
    for number, line in enumerate(text.splitlines(), start=1):
        if loc and re.search(rf"\b{re.escape(loc[-1])}\b", line):
            return number
    return None
