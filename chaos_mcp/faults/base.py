"""The one contract every fault keeps.

A fault is a small dataclass whose fields are plain JSON values. Its lifecycle:

    prepare()  capture what revert will need (previous settings) into the fields
    ── the engine writes `to_record()` to the journal: write-ahead ──
    inject()   touch the real system
    verify()   True while the fault is in effect (read-only, from an independent connection)
    revert()   undo; idempotent, and safe after a partial or failed inject

Because the record is written before `inject()`, any process can rebuild the fault with
`fault_from_record(record)` and call `revert()`: crash recovery and the kill switch need
nothing but the journal.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, TypeVar

JSON = Any
Reach = Literal["database", "instance", "listener", "working_copy", "host"]
"""How widely a fault acts: one database (PostgreSQL database, Redis db number), the whole instance
(every database of a Redis server or PostgreSQL cluster), one proxy listener, one schedule working
copy, or the host alone (nothing shared with another target). See chaos_mcp.resources."""

_REGISTRY: dict[str, type[Fault]] = {}
F = TypeVar("F", bound="type[Fault]")


class FaultError(Exception):
    """A fault could not be prepared, injected, verified or reverted; the message says why."""


class NotInjected(FaultError):
    """inject() refused before it changed anything: there is nothing to revert (journaled `not_injected`)."""


@dataclasses.dataclass
class Fault(ABC):
    """Subclasses are dataclasses, set `kind`, and register with `@register_fault`."""

    kind: ClassVar[str]
    reach: ClassVar[Reach] = "host"
    one_shot: ClassVar[bool] = False
    """True for faults with nothing to undo (killed sessions reconnect): verify() then tells whether it
    took effect, and a revert is complete as soon as it has run."""

    async def prepare(self) -> None:  # noqa: B027 - most faults need no preparation
        """Capture prior state needed by revert (runs before the record is journaled)."""

    @abstractmethod
    async def inject(self) -> None: ...

    @abstractmethod
    async def revert(self) -> None: ...

    @abstractmethod
    async def verify(self) -> bool:
        """True while the fault is in effect."""

    def describe(self) -> str:
        """One line for people: what this fault does to what (no secrets)."""
        return self.kind

    def to_record(self) -> dict[str, JSON]:
        return {"kind": self.kind, "module": type(self).__module__, "fields": dataclasses.asdict(self)}


def register_fault(cls: F) -> F:
    if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
        raise ValueError(f"fault kind {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def fault_from_record(record: dict[str, JSON]) -> Fault:
    """Rebuild a fault from its journal record, in any process.

    Only the fault's own family is imported when the record names it: a dead-man warden per
    experiment should not pay for importing every client library there is.
    """
    if "unreadable" in record:  # a sealed record this process has no key for (engine/sealing.py)
        raise FaultError(str(record["unreadable"]))
    kind = record.get("kind")
    cls = _REGISTRY.get(str(kind))
    if cls is None:
        _load_family(record.get("module"))
        cls = _REGISTRY.get(str(kind))
    if cls is None:
        _load_builtin_faults()
        cls = _REGISTRY.get(str(kind))
    if cls is None:
        raise FaultError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(_REGISTRY))}")
    return cls(**record.get("fields", {}))


def registered_fault_kinds() -> list[str]:
    _load_builtin_faults()
    return sorted(_REGISTRY)


def _load_family(module: JSON) -> None:
    import contextlib
    import importlib

    if isinstance(module, str) and module.startswith("chaos_mcp.faults."):
        # A module renamed since the record was written: every built-in family is tried next.
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def _load_builtin_faults() -> None:
    import importlib
    import pkgutil

    import chaos_mcp.faults as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg and not module.name.startswith("_") and module.name != "base":
            importlib.import_module(f"chaos_mcp.faults.{module.name}")
