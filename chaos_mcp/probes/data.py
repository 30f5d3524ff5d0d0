"""The `data` probe: the data validator on a PostgreSQL schedule database, one measurement per check.

Metrics (counts of offending rows): invalid_rows, dangling_refs, impossible_blocks, missing_roles,
overlaps, absence_conflicts, credential_gaps; `checksum` (the first 48 bits of an md5 over every
mapped table, as a number: it changes whenever any row does); `errors`/`error_rate` = 1 when
the database cannot be reached. A mapping that does not fit the database is a ProbeError.
"""

from __future__ import annotations

import time

import anyio
import anyio.to_thread
import psycopg

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.data.db import connect
from chaos_mcp.data.errors import DataError, MappingError
from chaos_mcp.data.mapping import check_live, resolve
from chaos_mcp.data.validate import CHECKS, Report, validate
from chaos_mcp.probes import catalog
from chaos_mcp.probes.base import Measurement, Probe, ProbeError


class DataProbe(Probe):
    timeout: float = 30.0

    def __init__(self, name: str, target: ScheduleTarget) -> None:
        if target.source != "postgres" or not target.dsn:
            raise ProbeError(
                f"data probe {name!r}: needs a schedule target with source = 'postgres' and a dsn"
            )
        self.name = name
        self.target = target
        self.dsn = target.dsn
        try:
            self.mapping = resolve(target.mapping, f"data probe {name!r}")
        except DataError as exc:
            raise ProbeError(str(exc)) from None

    def metrics(self) -> list[catalog.MetricSpec]:
        found = [catalog.MetricSpec("invalid_rows", "count", (), "rows failing any data check")]
        found += [catalog.MetricSpec(name, "count", (), f"rows failing the {name} check") for name in CHECKS]
        found.append(catalog.MetricSpec("checksum", "hash", (), "checksum of the mapped tables"))
        return found + [m for m in catalog.errors() if m.name != "requests"]

    async def sample(self) -> list[Measurement]:
        started = time.time()
        try:
            with anyio.fail_after(self.timeout):
                report = await anyio.to_thread.run_sync(self._validate, abandon_on_cancel=True)
        except MappingError as exc:
            raise ProbeError(str(exc)) from None
        except (DataError, psycopg.Error, TimeoutError) as exc:
            note = str(exc) if isinstance(exc, DataError) else type(exc).__name__
            return [
                self._m("errors", 1.0, "count", started, note),
                self._m("error_rate", 1.0, "ratio", started, note),
            ]
        return self._measurements(report, started)

    def _validate(self) -> Report:
        with connect(self.dsn) as conn:
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            check_live(conn, self.mapping, f"data probe {self.name!r}")
            return validate(conn, self.mapping)

    def _measurements(self, report: Report, started: float) -> list[Measurement]:
        out = [self._m("invalid_rows", float(report.invalid_rows), "count", started)]
        for name, finding in report.findings.items():
            note = ", ".join(finding.examples)
            out.append(self._m(name, float(finding.count), "count", started, note))
        out.append(
            self._m("checksum", float(int(report.checksum[:12], 16)), "hash", started, report.checksum)
        )
        out += [self._m("errors", 0.0, "count", started), self._m("error_rate", 0.0, "ratio", started)]
        return out

    def _m(self, metric: str, value: float, unit: str, started: float, note: str = "") -> Measurement:
        return Measurement(
            self.name, metric, value, unit, started_at=started, ended_at=time.time(), note=note
        )
