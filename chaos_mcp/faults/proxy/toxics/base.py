"""What a toxic is, the stub it works through, and the registry by `type` name.

A toxic is a frozen pydantic model (its fields are the JSON `attributes`) with one method,
`pipe(stub)`, which moves chunks from `stub.recv()` to `stub.send()` for one direction of one
connection. The contract, as in Toxiproxy:

- every wait can be interrupted: `recv()` returns `INTERRUPTED`, `sleep()` returns False;
  `recv(deadline)` returns `TIMED_OUT` when the deadline passes first;
- on interruption the toxic sends on whatever it holds, then returns (bytes are never dropped
  unless dropping them is the toxic's purpose, and then it calls `stub.discard(n)`);
- on `EOF` the toxic sends `EOF` (possibly later, as slow_close does) and returns.

Per-connection state that must survive a restart (e.g. an HTTP parser's position) lives in
`stub.state`, created once per connection and toxic by `new_state()`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Final, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

HOUR_MS: Final = 3_600_000


class Chunk:
    """Bytes read from one side, stamped with their arrival time (monotonic seconds)."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float | None = None) -> None:
        self.data = data
        self.ts = time.monotonic() if ts is None else ts


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


EOF: Final = _Marker("EOF")
INTERRUPTED: Final = _Marker("INTERRUPTED")
TIMED_OUT: Final = _Marker("TIMED_OUT")
Item = Chunk | _Marker


class Stub(Protocol):
    """The toxic's view of one direction of one connection."""

    state: Any
    started: float
    """monotonic time this toxic first ran on this connection (kept across restarts)"""

    async def recv(self, deadline: float | None = None) -> Item:
        """The next chunk or EOF; INTERRUPTED, or TIMED_OUT once monotonic `deadline` passes."""
        ...

    def send(self, item: Item) -> None: ...

    async def sleep(self, seconds: float) -> bool:
        """Wait; False if interrupted first."""
        ...

    def discard(self, nbytes: int) -> None:
        """Account for bytes the toxic drops on purpose (flow control counts them as gone)."""
        ...

    def close(self) -> None:
        """Close the whole connection (both sides)."""
        ...

    def reset(self) -> None:
        """Abort the whole connection with a TCP RST."""
        ...

    def reply(self, data: bytes) -> None:
        """Write bytes back towards the side this direction reads from."""
        ...


async def next_chunk(stub: Stub) -> Chunk | None:
    """The next chunk for a toxic to work on; None when it must stop (interrupted, or EOF — which is
    passed on, so end-of-stream always closes the output)."""
    item = await stub.recv()
    if item is EOF:
        stub.send(EOF)
    return item if isinstance(item, Chunk) else None


class ToxicError(ValueError):
    """A toxic's JSON is not acceptable; the message names the field and what is accepted."""


class Toxic(BaseModel, ABC):
    """Subclasses set `type`, declare attributes as fields, implement `pipe`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ClassVar[str]
    streams: ClassVar[tuple[str, ...]] = ("upstream", "downstream")
    takes_proxy_down: ClassVar[bool] = False

    def new_state(self) -> Any:
        return None

    def leftovers(self, state: Any) -> bytes:
        """Bytes the toxic keeps in `state` between chunks, released when it is removed."""
        return b""

    @abstractmethod
    async def pipe(self, stub: Stub) -> None: ...

    def attributes(self) -> dict[str, Any]:
        return self.model_dump()


_REGISTRY: dict[str, type[Toxic]] = {}
T = TypeVar("T", bound=type[Toxic])


def register_toxic(cls: T) -> T:
    _REGISTRY[cls.type] = cls
    return cls


def toxic_types() -> list[str]:
    return sorted(_REGISTRY)


def build_toxic(type_name: str, attributes: object) -> Toxic:
    """Validate `attributes` for toxic `type_name`; ToxicError names what was wrong."""
    cls = _REGISTRY.get(type_name)
    if cls is None:
        raise ToxicError(f"type: unknown toxic type {type_name!r}; accepted: {', '.join(toxic_types())}")
    if not isinstance(attributes, dict):
        raise ToxicError(f"attributes: expected a JSON object, got {type(attributes).__name__}")
    try:
        return cls.model_validate(attributes)
    except ValidationError as exc:
        raise ToxicError(_explain(cls, exc)) from None


def _explain(cls: type[Toxic], exc: ValidationError) -> str:
    accepted = ", ".join(
        f"{name} ({field.description or field.annotation})" for name, field in cls.model_fields.items()
    )
    problems = []
    for error in exc.errors():
        field = ".".join(["attributes", *(str(part) for part in error["loc"])])
        message = "unknown attribute" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{field}: {message.removeprefix('Value error, ')}")
    return f"{'; '.join(problems)}. {cls.type} accepts: {accepted}"
