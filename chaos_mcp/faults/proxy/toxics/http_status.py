"""http_status: answer matching HTTP requests with `status` instead of forwarding them.

The request (head and body) is swallowed and the proxy replies on the same keep-alive
connection. Clients that pipeline requests may see the injected reply before the replies to
earlier requests; ordinary clients wait for each reply and are unaffected.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from pydantic import Field

from chaos_mcp.faults.proxy.toxics._http import END, Head, Piece
from chaos_mcp.faults.proxy.toxics._http_toxic import HttpToxic
from chaos_mcp.faults.proxy.toxics.base import Stub, register_toxic


@register_toxic
class HttpStatusToxic(HttpToxic):
    type = "http_status"
    status: int = Field(503, ge=200, le=599, description="HTTP status to answer with, 200..599")

    def response(self) -> bytes:
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Injected"
        body = json.dumps({"error": f"injected by chaos-mcp: {reason}", "status": self.status}).encode()
        head = (
            f"HTTP/1.1 {self.status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nx-chaos-mcp-toxic: http_status\r\n\r\n"
        )
        return head.encode("ascii") + body

    async def affect(self, stub: Stub, piece: Piece, ts: float) -> bool:
        if isinstance(piece, Head):
            stub.discard(len(piece.raw))
        elif isinstance(piece, bytes):
            stub.discard(len(piece))
        elif piece is END:
            stub.reply(self.response())
        return True
