"""Round trip of design_experiment over stdio (p50, p99) and the server's start-up time.

Baselines measured in the same run: `list_targets` (the transport's floor: a tool that does
almost nothing) for the round trip, and an empty MCPServer for start-up.

    python bench/bench_server.py [--calls 300] [--starts 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers import valid_design

EMPTY_SERVER = "from mcp.server.mcpserver import MCPServer; MCPServer('empty').run('stdio')"


def _params(args: list[str], state: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"} | {"CHAOS_MCP_STATE_DIR": state}
    return StdioServerParameters(command=sys.executable, args=args, env=env)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def startup(args: list[str], starts: int) -> list[float]:
    times = []
    for _ in range(starts):
        with tempfile.TemporaryDirectory() as state:
            began = time.perf_counter()
            async with Client(_params(args, state), mode="legacy") as client:
                await client.list_tools()
                times.append(time.perf_counter() - began)
    return times


async def round_trips(calls: int) -> tuple[list[float], list[float]]:
    design, floor = [], []
    with tempfile.TemporaryDirectory() as state:
        async with Client(_params(["-m", "chaos_mcp.cli", "serve"], state), mode="legacy") as client:
            for _ in range(20):
                await client.call_tool("design_experiment", valid_design())
            for _ in range(calls):
                began = time.perf_counter()
                result = await client.call_tool("design_experiment", valid_design())
                design.append(time.perf_counter() - began)
                assert not result.is_error
                began = time.perf_counter()
                await client.call_tool("list_targets", {})
                floor.append(time.perf_counter() - began)
    return design, floor


async def main(calls: int, starts: int) -> None:
    server_start = await startup(["-m", "chaos_mcp.cli", "serve"], starts)
    empty_start = await startup(["-c", EMPTY_SERVER], starts)
    design, floor = await round_trips(calls)
    ms = 1000.0
    print("| measurement | p50 | p99 | n |")
    print("|---|---|---|---|")
    print(
        f"| design_experiment round trip over stdio | {statistics.median(design) * ms:.2f} ms | "
        f"{_pct(design, 0.99) * ms:.2f} ms | {calls} |"
    )
    print(
        f"| baseline: list_targets round trip | {statistics.median(floor) * ms:.2f} ms | "
        f"{_pct(floor, 0.99) * ms:.2f} ms | {calls} |"
    )
    print(
        f"| chaos-mcp serve start-up (spawn → tools/list) | {statistics.median(server_start):.3f} s | "
        f"{max(server_start):.3f} s (max) | {starts} |"
    )
    print(
        f"| baseline: empty MCPServer start-up | {statistics.median(empty_start):.3f} s | "
        f"{max(empty_start):.3f} s (max) | {starts} |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--starts", type=int, default=5)
    options = parser.parse_args()
    anyio.run(main, options.calls, options.starts)
