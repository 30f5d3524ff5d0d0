"""HTTP probe sampling throughput against a real local server, vs a sequential baseline.

    python -m bench.bench_probes [--requests 3000] [--repeat 3]

The server is uvicorn + Starlette (one worker) in its own process on a free port of
127.0.0.1. Two routes: `GET /health` answers a small JSON body at once — the cheapest
realistic route, so the figure is the probe's own ceiling rather than the application's —
and `GET /slow` answers after 5 ms, like an endpoint doing real work, where concurrency pays.

The baseline is the brute-force way: the same number of requests, one after the other, with
a plain synchronous `httpx.Client` (keep-alive on). Each row is the median of `--repeat`
runs. Client CPU per request (process time of the sampling process) is reported too: it is
what bounds the rate on an idle core, and it moves less than wall time when other work
shares the machine. The target in issue 4 is at least 500 requests/s of sampling.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import anyio
import httpx

from chaos_mcp.probes.http import HttpProbe

TARGET_RPS = 500.0
SLOW_ROUTE_MS = 5.0  # a route with a little server-side latency, like a real endpoint


def serve(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def slow(request: Request) -> Response:
        await anyio.sleep(SLOW_ROUTE_MS / 1000)
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/health", health), Route("/slow", slow)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False, lifespan="off")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.bench_probes", "--serve", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=0.5).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the benchmark server did not start within 15 s")


Result = tuple[float, float, int]  # wall seconds, CPU seconds of this process, errors


def sequential(url: str, requests: int, route: str = "/health") -> Result:
    errors = 0
    begin, cpu = time.perf_counter(), time.process_time()
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        for _ in range(requests):
            errors += client.get(url + route).status_code != 200
    return time.perf_counter() - begin, time.process_time() - cpu, errors


def probe(url: str, requests: int, concurrency: int, use_uvloop: bool, route: str = "/health") -> Result:
    routes = [route] if route != "/health" else []
    health = "/health" if route == "/health" else None
    sampler = HttpProbe(
        "bench", url, routes=routes, health=health, requests=requests, concurrency=concurrency, timeout=120.0
    )
    begin, cpu = time.perf_counter(), time.process_time()
    measured = anyio.run(sampler.sample, backend_options={"use_uvloop": use_uvloop})
    elapsed, used = time.perf_counter() - begin, time.process_time() - cpu
    errors = next(m.value for m in measured if m.metric == "errors" and not m.labels)
    return elapsed, used, int(errors)


def median_run(run: Callable[[], Result], repeat: int) -> Result:
    results = [run() for _ in range(repeat)]
    return (
        statistics.median(r[0] for r in results),
        statistics.median(r[1] for r in results),
        max(r[2] for r in results),
    )


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model
            )
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, {platform.system()}"


def table(title: str, n: int, repeat: int, rows: list[tuple[str, Result]]) -> None:
    base = n / rows[0][1][0]
    print(f"{title}: {n} GETs per run, median of {repeat} runs\n")
    print("| sampler | seconds | requests/s | vs baseline | client CPU µs/request | errors | ≥ 500 req/s |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, (seconds, cpu, errors) in rows:
        rps = n / seconds
        verdict = "yes" if rps >= TARGET_RPS else "NO"
        cells = [label, f"{seconds:.2f}", f"{rps:.0f}", f"{rps / base:.2f}x", f"{cpu / n * 1e6:.0f}"]
        print("| " + " | ".join([*cells, str(errors), verdict]) + " |")
    print()


def measure(url: str, n: int, repeat: int, route: str, levels: tuple[int, ...]) -> list[tuple[str, Result]]:
    rows: list[tuple[str, Result]] = [
        (
            "baseline: sequential httpx.Client",
            median_run(functools.partial(sequential, url, n, route), repeat),
        )
    ]
    for concurrency in levels:
        for uvloop in (False, True):
            label = f"HttpProbe, concurrency {concurrency}, {'uvloop' if uvloop else 'asyncio'}"
            run = functools.partial(probe, url, n, concurrency, uvloop, route)
            rows.append((label, median_run(run, repeat)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    process, url = start_server()
    try:
        n = args.requests
        fast = measure(url, n, args.repeat, "/health", (1, 4, 8))
        slow = measure(url, n // 2, args.repeat, "/slow", (4, 8))
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"Machine: {machine()}")
    print(f"Load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    table("GET /health (answers at once)", n, args.repeat, fast)
    table(f"GET /slow (answers after {SLOW_ROUTE_MS:g} ms)", n // 2, args.repeat, slow)


if __name__ == "__main__":
    main()
