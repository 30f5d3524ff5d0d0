"""The working copy: active schedule faults as overlays persisted in the state dir.

``<state_dir>/schedule/<target>.json`` holds ``{"overlays": [...]}``. Any process that loads
the program applies them, so a fault injected by one process is measured by every other
one, and reverting is deleting an entry. Writes are atomic (temp file + ``os.replace``) and
serialized across processes with ``fcntl.flock`` on a sibling lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaos_mcp.schedule.model import Absence, Program, Service
from chaos_mcp.state import state_dir

Overlay = dict[str, Any]
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,62}")
UNHELD_CREDENTIAL = "neonatal_resuscitation"


class OverlayError(Exception):
    """The working copy cannot be read or written; the message says which file and why."""


def overlay_path(target_name: str) -> Path:
    if not _NAME.fullmatch(target_name):
        raise OverlayError(f"target name {target_name!r} is not a valid target name (letters, digits, _ . -)")
    folder = state_dir() / "schedule"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder / f"{target_name}.json"


@contextlib.contextmanager
def _locked(path: Path, exclusive: bool) -> Iterator[None]:
    with open(path.with_suffix(".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path) -> list[Overlay]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise OverlayError(
            f"working copy {path} is unreadable ({exc}); delete it to drop all overlays"
        ) from None
    overlays = data.get("overlays") if isinstance(data, dict) else None
    if not isinstance(overlays, list):
        raise OverlayError(f"working copy {path} has no 'overlays' list; delete it to drop all overlays")
    return [o for o in overlays if isinstance(o, dict)]


def _write(path: Path, overlays: list[Overlay]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"overlays": overlays}, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_overlays(target_name: str) -> list[Overlay]:
    path = overlay_path(target_name)
    with _locked(path, exclusive=False):
        return _read(path)


def add_overlay(target_name: str, overlay: Overlay) -> None:
    """Add (or replace, same ``id``) one overlay."""
    path = overlay_path(target_name)
    with _locked(path, exclusive=True):
        overlays = [o for o in _read(path) if o.get("id") != overlay["id"]]
        _write(path, [*overlays, overlay])


def remove_overlay(target_name: str, overlay_id: str) -> bool:
    """Drop one overlay; True if it was there. Idempotent."""
    path = overlay_path(target_name)
    with _locked(path, exclusive=True):
        overlays = _read(path)
        kept = [o for o in overlays if o.get("id") != overlay_id]
        if len(kept) != len(overlays):
            _write(path, kept)
        return len(kept) != len(overlays)


def apply_overlays(program: Program, overlays: list[Overlay]) -> Program:
    for overlay in overlays:
        kind = overlay.get("kind")
        if kind == "remove_faculty":
            program = _remove(program, [str(x) for x in overlay.get("faculty_ids", [])])
        elif kind == "constraint_conflict":
            program = _conflict(
                program, str(overlay.get("conflict", "missing_credential")), overlay.get("service")
            )
        elif kind == "solver_time_limit":
            program = program.replace(repair_time_limit_s=float(overlay.get("seconds", 0.01)))
    return program


def _remove(program: Program, ids: list[str]) -> Program:
    """Removal = an absence over the whole horizon (the person stays in the roster)."""
    known = {f.id for f in program.faculty}
    ids = [i for i in ids if i in known and i not in program.removed_faculty]
    leave = tuple(Absence(i, 0, program.blocks - 1, "removed by chaos experiment") for i in ids)
    return program.replace(
        absences=program.absences + leave, removed_faculty=program.removed_faculty + tuple(ids)
    )


def _conflict(program: Program, conflict: str, service_id: object) -> Program:
    services = list(program.services)
    index = next((i for i, s in enumerate(services) if s.id == service_id), None)
    if index is None:
        index = max(
            range(len(services)), key=lambda i: (len(services[i].days_of_week), services[i].min_faculty)
        )
    svc = services[index]
    if conflict == "min_faculty_exceeds_available":
        services[index] = _with(svc, min_faculty=len(program.faculty) + 1)
        return program.replace(services=tuple(services))
    services[index] = _with(svc, required_credentials=(*svc.required_credentials, UNHELD_CREDENTIAL))
    catalog = (
        program.credentials
        if UNHELD_CREDENTIAL in program.credentials
        else (
            *program.credentials,
            UNHELD_CREDENTIAL,
        )
    )
    return program.replace(services=tuple(services), credentials=catalog)


def _with(service: Service, **changes: Any) -> Service:
    import dataclasses

    return dataclasses.replace(service, **changes)
