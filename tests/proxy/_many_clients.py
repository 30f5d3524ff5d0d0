"""Open N connections through a proxy to an echo server, all at once, in a process of its own.

    python -m tests.proxy._many_clients API_URL N

Prints `upstream HOST:PORT` (the test creates the proxy), reads the proxy port from stdin,
holds all connections open, prints `held N` after every echo came back, then waits for a line
on stdin before closing them. (A subprocess, because CPython 3.11.7 can corrupt its recursion
counter after `gather` over a thousand coroutines, which then breaks later imports in pytest.)
"""

from __future__ import annotations

import asyncio
import sys

from chaos_mcp.faults.proxy.daemon import raise_fd_limit


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def main(count: int) -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0, backlog=4096)
    print(f"upstream 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    port = int(await asyncio.to_thread(sys.stdin.readline))
    connections = await asyncio.gather(
        *(asyncio.open_connection("127.0.0.1", port, limit=1024) for _ in range(count))
    )
    for index, (_, writer) in enumerate(connections):
        writer.write(f"hello {index}\n".encode())
    replies = await asyncio.wait_for(asyncio.gather(*(reader.readline() for reader, _ in connections)), 30)
    good = sum(reply == f"hello {index}\n".encode() for index, reply in enumerate(replies))
    print(f"held {good}", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    for _, writer in connections:
        writer.close()
    server.close()


if __name__ == "__main__":
    raise_fd_limit()
    asyncio.run(main(int(sys.argv[1])))
