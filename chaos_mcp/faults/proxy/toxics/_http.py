"""Split a client→server byte stream into HTTP/1.1 requests (keep-alive, several per connection).

`RequestSplitter.feed(data)` returns pieces in order: `Head` (a complete request head, parsed),
body bytes of the current request, and `END` when that request is complete. Anything it cannot
parse (not HTTP, an upgrade, a head over 64 KiB) switches it to pass-through for the rest of the
connection, so a toxic never corrupts traffic it does not understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_HEAD: Final = 65536
_REQUEST_LINE = re.compile(rb"([A-Z]+) (\S+) HTTP/1\.[01]")


@dataclass(frozen=True, slots=True)
class Head:
    method: str
    path: str
    raw: bytes


class _End:
    pass


END: Final = _End()
Piece = Head | bytes | _End


class RequestSplitter:
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.mode = "head"  # head | body | chunked | passthrough
        self.body_left = 0
        self.chunk_state = "size"  # size | data | trailer

    def feed(self, data: bytes) -> list[Piece]:
        self.buffer += data
        pieces: list[Piece] = []
        while self.buffer:
            before = len(self.buffer), self.mode
            getattr(self, f"_{self.mode}")(pieces)
            if (len(self.buffer), self.mode) == before:
                break
        return pieces

    def leftovers(self) -> bytes:
        data, self.buffer = bytes(self.buffer), bytearray()
        return data

    def _passthrough(self, pieces: list[Piece]) -> None:
        pieces.append(self.leftovers())

    def _head(self, pieces: list[Piece]) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD or not _could_be_request(self.buffer):
                self.mode = "passthrough"
            return
        raw = bytes(self.buffer[: end + 4])
        del self.buffer[: end + 4]
        head = _parse(raw)
        if head is None:
            self.mode = "passthrough"
            self.buffer[:0] = raw
            return
        pieces.append(head)
        self._start_body(raw, pieces)

    def _start_body(self, raw: bytes, pieces: list[Piece]) -> None:
        headers = raw.lower()
        if re.search(rb"\r\ntransfer-encoding:[^\r]*chunked", headers):
            self.mode, self.chunk_state = "chunked", "size"
        elif re.search(rb"\r\nupgrade:", headers) or raw.startswith(b"CONNECT "):
            self.mode = "passthrough"
        else:
            match = re.search(rb"\r\ncontent-length:\s*(\d+)", headers)
            self.body_left = int(match.group(1)) if match else 0
            self.mode = "body"
            if self.body_left == 0:
                self._finish(pieces)

    def _finish(self, pieces: list[Piece]) -> None:
        pieces.append(END)
        self.mode = "head"

    def _body(self, pieces: list[Piece]) -> None:
        if self.body_left == 0:
            self._finish(pieces)
            return
        take = bytes(self.buffer[: self.body_left])
        del self.buffer[: len(take)]
        self.body_left -= len(take)
        pieces.append(take)
        if self.body_left == 0:
            self._finish(pieces)

    def _chunked(self, pieces: list[Piece]) -> None:
        if self.chunk_state == "data":
            self._body_bytes(pieces)
            return
        end = self.buffer.find(b"\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self.mode = "passthrough"
            return
        line = bytes(self.buffer[: end + 2])
        del self.buffer[: end + 2]
        pieces.append(line)
        if self.chunk_state == "trailer":
            if line == b"\r\n":
                self._finish(pieces)
            return
        size = _chunk_size(line)
        if size is None:
            self.mode = "passthrough"
        elif size == 0:
            self.chunk_state = "trailer"
        else:
            self.chunk_state, self.body_left = "data", size + 2

    def _body_bytes(self, pieces: list[Piece]) -> None:
        take = bytes(self.buffer[: self.body_left])
        del self.buffer[: len(take)]
        self.body_left -= len(take)
        pieces.append(take)
        if self.body_left == 0:
            self.chunk_state = "size"


def _could_be_request(buffer: bytearray) -> bool:
    start = bytes(buffer[:16])
    return bool(re.match(rb"[A-Z]{0,16}( |$)", start)) or b"\r\n" not in start


def _parse(raw: bytes) -> Head | None:
    match = _REQUEST_LINE.match(raw)
    if match is None:
        return None
    path = match.group(2).decode("latin-1")
    if path.startswith(("http://", "https://")):
        path = "/" + path.split("/", 3)[-1] if path.count("/") >= 3 else "/"
    return Head(method=match.group(1).decode("ascii"), path=path, raw=raw)


def _chunk_size(line: bytes) -> int | None:
    try:
        return int(line.split(b";", 1)[0].strip(), 16)
    except ValueError:
        return None
