"""Logs probe: what a service wrote to its log since the previous sample.

Each `sample()` reads the lines appended since the last one (the first sample starts at the
end of what was there when the probe was created, i.e. at the baseline) and counts:

    log_lines         count, complete lines read in this sample
    log_errors        count, lines with an error level word (error, critical, fatal, panic, severe)
    log_secrets       count, lines carrying a configured secret (DSN passwords, header tokens),
                      a bearer token, a `password=`/`password:` value or a private key
    log_stack_traces  count, stack traces begun (Python "Traceback", Java "at x.y(…)" frames
                      after a non-frame line, Go "goroutine N [")

Reads are bounded (`max_bytes` per sample; the rest is read by the next one, and the note says
so) and each line is scanned once by patterns without nested repetition, so the cost is linear
in what was written. Notes never quote a line: a leaked secret stays in the file it leaked to.

The source is pluggable: anything with `read(max_bytes) -> list[str]` and `describe()`;
`FileSource` follows a file across rotation (rename: the old file is drained first) and
truncation (read again from the start).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from chaos_mcp.probes.base import Measurement, Probe, ProbeError
from chaos_mcp.probes.catalog import MetricSpec

METRICS = {
    "log_lines": "lines the log gained",
    "log_errors": "of them, error lines",
    "log_secrets": "of them, lines carrying a secret (a configured password or token, a bearer token, "
    "`password=`, a private key)",
    "log_stack_traces": "of them, lines of a stack trace",
}
MAX_BYTES = 1 << 20
MAX_LINE = 64 * 1024

_ERROR = re.compile(r"\b(?:error|critical|fatal|panic|severe)\b", re.IGNORECASE)
_SECRET = re.compile(
    r"\bbearer\s+[A-Za-z0-9._~+/=-]{8}"
    r"|\b(?:password|passwd|pwd)\b\"?\s*[=:]\s*\"?[^\s\"',&;]"
    r"|-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----"
    r"|://[^/\s:@]{1,256}:[^/\s@]{1,256}@",
    re.IGNORECASE,
)
_TRACE_START = re.compile(r"Traceback \(most recent call last\)|^goroutine \d+ \[")
_JAVA_FRAME = re.compile(r"^\s+at [\w$.<>/]+\(")


class LogSource(Protocol):
    def read(self, max_bytes: int) -> list[str]:
        """Complete lines appended since the last read, at most about `max_bytes` of them."""
        ...

    def behind(self) -> bool:
        """True when more is waiting than the last read took."""
        ...

    def describe(self) -> str: ...


@dataclass
class FileSource:
    """Follows one file from its end at creation; survives rotation and truncation."""

    path: str
    _file: BinaryIO | None = field(default=None, init=False, repr=False)
    _inode: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _partial: bytes = field(default=b"", init=False, repr=False)
    _behind: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self._open(at_end=True)
        except OSError as exc:
            raise ProbeError(f"cannot follow the log file {self.path}: {exc.strerror}") from None

    def describe(self) -> str:
        return f"file {self.path}"

    def behind(self) -> bool:
        return self._behind

    def read(self, max_bytes: int) -> list[str]:
        lines: list[str] = []
        budget = max_bytes
        current = self._current_inode()
        if self._file is not None and current is not None and current != self._inode:
            old = self._file.read(max_bytes)  # rotated: drain the old file first
            if len(old) >= max_bytes:
                self._behind = True
                return self._lines(old)
            lines = self._lines(old) + ([self._flush()] if self._partial else [])
            budget -= len(old)
            self._reopen_from_start()
        elif self._file is None and current is not None:
            self._reopen_from_start()  # the file is back after being away
        if self._file is None:
            self._behind = False
            return lines
        if os.fstat(self._file.fileno()).st_size < self._file.tell():
            self._file.seek(0)  # truncated in place: what is there now is new
            self._partial = b""
        data = self._file.read(budget)
        self._behind = len(data) >= budget
        return lines + self._lines(data)

    def _flush(self) -> str:
        line, self._partial = self._partial[:MAX_LINE], b""
        return line.decode("utf-8", errors="replace")

    def _lines(self, data: bytes) -> list[str]:
        chunk = self._partial + data
        *complete, self._partial = chunk.split(b"\n")
        if len(self._partial) > MAX_LINE:
            complete.append(self._partial[:MAX_LINE])
            self._partial = b""
        return [line[:MAX_LINE].decode("utf-8", errors="replace") for line in complete]

    def _open(self, at_end: bool) -> None:
        handle = open(self.path, "rb")  # noqa: SIM115 - kept open to follow the file
        stat = os.fstat(handle.fileno())
        if at_end:
            handle.seek(stat.st_size)
        self._file, self._inode, self._partial = handle, (stat.st_dev, stat.st_ino), b""

    def _reopen_from_start(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            self._open(at_end=False)
        except OSError:
            self._file = None

    def _current_inode(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (stat.st_dev, stat.st_ino)


@dataclass(frozen=True)
class LogCounts:
    lines: int = 0
    errors: int = 0
    secrets: int = 0
    stack_traces: int = 0


def scan(lines: Iterable[str], secrets: Iterable[str] = ()) -> LogCounts:
    """Count error lines, lines with a secret and stack traces begun; one pass, linear time."""
    literal = [s for s in secrets if len(s) >= 4]
    total = errors = leaked = traces = 0
    in_java_trace = False
    for line in lines:
        total += 1
        errors += bool(_ERROR.search(line))
        leaked += bool(_SECRET.search(line) or any(s in line for s in literal))
        frame = bool(_JAVA_FRAME.match(line))
        traces += bool(_TRACE_START.search(line)) or (frame and not in_java_trace)
        in_java_trace = frame
    return LogCounts(total, errors, leaked, traces)


@dataclass
class LogsProbe(Probe):
    name: str
    source: LogSource
    secrets: frozenset[str] = frozenset()
    max_bytes: int = MAX_BYTES
    timeout: float = 2.0

    async def sample(self) -> list[Measurement]:
        started = time.time()
        counts = scan(self.source.read(self.max_bytes), self.secrets)
        ended = time.time()
        note = f"read {self.source.describe()}" + (
            f"; more than {self.max_bytes} bytes were waiting, the rest counts in the next sample"
            if self.source.behind()
            else ""
        )
        figures = {
            "log_lines": counts.lines,
            "log_errors": counts.errors,
            "log_secrets": counts.secrets,
            "log_stack_traces": counts.stack_traces,
        }
        return [
            Measurement(self.name, metric, float(value), "count", counts.lines, started, ended, note=note)
            for metric, value in figures.items()
        ]

    def metrics(self) -> list[MetricSpec]:
        return [MetricSpec(name, "count", (), what) for name, what in METRICS.items()]
