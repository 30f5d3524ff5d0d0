"""Small pure pieces: the public surface, the HTTP request splitter, toxic validation, the slicer's cuts."""

from __future__ import annotations

import itertools

import pytest

import chaos_mcp.faults.proxy as proxy_package
from chaos_mcp.faults.proxy.toxics import ToxicError, build_toxic, toxic_types
from chaos_mcp.faults.proxy.toxics._http import END, Head, RequestSplitter
from chaos_mcp.faults.proxy.toxics.slicer import SlicerToxic


def test_the_public_surface_is_pinned() -> None:
    assert proxy_package.__all__ == [
        "ProxyApiError",
        "ProxyClient",
        "ProxyDaemon",
        "ToxicSpec",
        "main",
        "serve",
        "toxic_types",
    ]


def test_every_toxiproxy_toxic_and_ours_is_registered() -> None:
    assert set(toxic_types()) >= {
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "down",
        "http_latency",
        "http_status",
    }


def _split(*parts: bytes) -> list[object]:
    splitter = RequestSplitter()
    pieces: list[object] = []
    for part in parts:
        pieces += splitter.feed(part)
    return pieces


def test_the_splitter_finds_keep_alive_requests_split_across_reads() -> None:
    stream = (
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nPOST /api/v1/s HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    )
    pieces = _split(*(stream[i : i + 7] for i in range(0, len(stream), 7)))
    heads = [p for p in pieces if isinstance(p, Head)]
    assert [(h.method, h.path) for h in heads] == [("GET", "/health"), ("POST", "/api/v1/s")]
    assert pieces.count(END) == 2
    assert b"".join(p for p in pieces if isinstance(p, bytes)) == b"hello"


def test_the_splitter_follows_chunked_bodies_to_the_next_request() -> None:
    stream = (
        b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        b"GET /b HTTP/1.1\r\n\r\n"
    )
    heads = [p.path for p in _split(stream) if isinstance(p, Head)]
    assert heads == ["/a", "/b"]


def test_the_splitter_passes_through_what_is_not_http() -> None:
    pieces = _split(b"*1\r\n$4\r\nPING\r\n")
    assert pieces == [b"*1\r\n$4\r\nPING\r\n"]


def test_toxic_errors_name_the_field_and_what_is_accepted() -> None:
    with pytest.raises(ToxicError, match=r"attributes\.latency.*accepts: latency"):
        build_toxic("latency", {"latency": -1})
    with pytest.raises(ToxicError, match=r"size_variation must be less than average_size"):
        build_toxic("slicer", {"average_size": 4, "size_variation": 4})


@pytest.mark.parametrize("size", [0, 1, 99, 100, 1000, 65536])
def test_slicer_cuts_cover_the_chunk_in_order(size: int) -> None:
    toxic = SlicerToxic(average_size=100, size_variation=30)
    bounds = toxic.cuts(size)
    assert bounds[0] == 0 and bounds[-1] == size
    assert bounds == sorted(bounds)
    assert all(b - a <= 130 for a, b in itertools.pairwise(bounds))
