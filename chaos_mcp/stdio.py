"""The stdio transport, bounded: every line from stdin reaches the SDK or is answered by wire.py.

Replaces the SDK's stdio reader, which drops a line it cannot parse without an answer. Lines are read
in chunks and capped at MAX_MESSAGE_BYTES (the rest of a longer line is skipped, then answered);
large messages are checked in a worker thread so the event loop keeps serving `abort_all` and
progress. At end of input the read stream closes at once, even while a tool call runs, so the
server's lifespan applies policy.on_disconnect.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage

from chaos_mcp.contract import MAX_MESSAGE_BYTES
from chaos_mcp.wire import INTERNAL_ERROR, Rejected, error_reply, oversized, read_message_off_loop

log = structlog.get_logger("chaos_mcp.stdio")

_CHUNK = 1024 * 1024
_HEAD = 4096


class BoundedStdioServer(MCPServer[Any]):
    """MCPServer whose `run("stdio")` uses the bounded transport below."""

    async def run_stdio_async(self) -> None:
        async with bounded_stdio() as (read_stream, write_stream):
            lowlevel = self._lowlevel_server
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


@asynccontextmanager
async def bounded_stdio() -> AsyncIterator[
    tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]
]:
    wire_in, wire_out = _claim_stdio()
    to_sdk, from_wire = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    to_wire, from_sdk = anyio.create_memory_object_stream[SessionMessage](0)
    lock = anyio.Lock()

    async def emit(payload: bytes) -> None:
        async with lock:
            try:
                await anyio.to_thread.run_sync(_write_all, wire_out, payload + b"\n", abandon_on_cancel=True)
            except OSError as exc:  # the client closed its end; end of input will follow
                log.warning("reply_undeliverable", error=type(exc).__name__)

    async def reader() -> None:
        async with to_sdk:
            async for item in _lines(wire_in):
                inbound = item if isinstance(item, Rejected) else await read_message_off_loop(item)
                if isinstance(inbound, SessionMessage):
                    await to_sdk.send(inbound)
                    continue
                answered = inbound.reply is not None
                log.warning("message_rejected", reason=inbound.reason[:500], answered=answered)
                if inbound.reply is not None:
                    await emit(json.dumps(inbound.reply).encode())

    async def writer() -> None:
        async with from_sdk:
            async for outgoing in from_sdk:
                payload = _serialized(outgoing)
                if payload is not None:
                    await emit(payload)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        yield from_wire, to_wire


async def _lines(fd: int) -> AsyncIterator[bytes | Rejected]:
    """Each non-blank line of `fd`; a line over the limit becomes its Rejected answer, unbuffered."""
    buffer = bytearray()
    scanned = 0
    skipping: tuple[bytes, int] | None = None  # (head, bytes so far) of an over-long line being skipped
    while chunk := await anyio.to_thread.run_sync(os.read, fd, _CHUNK, abandon_on_cancel=True):
        if skipping is not None:
            end = chunk.find(b"\n")
            if end < 0:
                skipping = (skipping[0], skipping[1] + len(chunk))
                continue
            yield oversized(skipping[0], skipping[1] + end)
            skipping, chunk = None, chunk[end + 1 :]
        buffer += chunk
        while (end := buffer.find(b"\n", scanned)) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            scanned = 0
            if line.strip():
                yield line if len(line) <= MAX_MESSAGE_BYTES else oversized(line[:_HEAD], len(line))
        scanned = len(buffer)
        if len(buffer) > MAX_MESSAGE_BYTES:
            skipping = (bytes(buffer[:_HEAD]), len(buffer))
            buffer.clear()
            scanned = 0
    if skipping is not None:
        yield oversized(skipping[0], skipping[1])
    elif buffer.strip():
        yield bytes(buffer)


def _serialized(outgoing: SessionMessage) -> bytes | None:
    message = outgoing.message
    try:
        return message.model_dump_json(by_alias=True, exclude_unset=True).encode()
    except Exception as exc:  # a reply we cannot encode still gets an answer, never silence
        request_id = getattr(message, "id", None)
        log.error("reply_not_encodable", error=type(exc).__name__, answered=request_id is not None)
        if request_id is None:
            return None
        reply = error_reply(request_id, INTERNAL_ERROR, "the reply could not be encoded as JSON")
        return json.dumps(reply).encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _claim_stdio() -> tuple[int, int]:
    """Private copies of fd 0 and 1 for the protocol; fd 0 then reads /dev/null and fd 1 goes to stderr,
    so neither a child process nor a stray print can read from or write into the protocol."""
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return wire_in, wire_out
