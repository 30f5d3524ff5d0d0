"""Proxy benchmarks: the chaos-mcp proxy daemon against a direct connection and socat, same run.

    python bench/bench_proxy.py [--quick]

Needs redis-server on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 (user postgres, trust),
redis-benchmark, pgbench and socat. Creates and drops its own database `chaos_bench`.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import httpx

PG = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
BENCH_DB = "chaos_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


@contextlib.contextmanager
def proxy_daemon(
    relay: str = "auto", busy_poll_us: int = 0, extra_upstream: str = ""
) -> Iterator[httpx.Client]:
    """The daemon as `chaos-mcp proxy --relay R --busy-poll-us N` runs it (defaults: auto, 0)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "chaos_mcp.faults.proxy",
        "--port",
        str(port),
        "--busy-poll-us",
        str(busy_poll_us),
        "--relay",
        relay,
        "--allow-unauthenticated",  # a throwaway daemon on a free port, driven by this script alone
        *(f"--allow-upstream={u}" for u in ("127.0.0.1:6379", "127.0.0.1:5432", extra_upstream) if u),
    ]
    process = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
            yield api
    finally:
        process.terminate()
        process.wait(10)


def add_proxy(api: httpx.Client, name: str, upstream: str) -> int:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream})
    response.raise_for_status()
    return int(response.json()["listen"].rpartition(":")[2])


def default_relay(api: httpx.Client, proxy: str, port: int) -> str:
    """Which relay the default daemon gave a toxic-free connection: the kernel splice or the C thread."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"PING\r\n")
        sock.recv(64)
        metrics = api.get("/metrics").text
    spliced = f'chaos_proxy_connections_spliced{{proxy="{proxy}"}} 1' in metrics
    return "in-kernel splice (BPF sockmap)" if spliced else "C relay thread (no splice on this machine)"


@contextlib.contextmanager
def socat(upstream_port: int) -> Iterator[int]:
    port = free_port()
    listen = f"TCP-LISTEN:{port},fork,reuseaddr,bind=127.0.0.1"
    process = subprocess.Popen(["socat", listen, f"TCP:127.0.0.1:{upstream_port}"])
    try:
        wait_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(10)


# ---- redis-benchmark ---------------------------------------------------------------------
def redis_ops(port: int, requests: int) -> dict[str, float]:
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "8", "-n", str(requests)]
    out = subprocess.run([*cmd, "-t", "get,set", "--csv"], capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        fields = [f.strip('"') for f in line.split(",")]
        if fields[0] in ("SET", "GET"):
            result[fields[0]] = float(fields[1])
    return result


def redis_op(port: int, op: str, requests: int) -> float:
    return redis_ops(port, requests)[op]


# ---- pgbench -----------------------------------------------------------------------------
def pg_tps(port: int, seconds: int) -> float:
    cmd = ["pgbench", "-S", "-c", "4", "-j", "2", "-T", str(seconds), "-h", "127.0.0.1", "-p", str(port)]
    out = subprocess.run(
        [*cmd, "-U", "postgres", BENCH_DB], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"tps = ([\d.]+) \(without initial", out)
    if match is None:
        raise RuntimeError(f"pgbench output not understood:\n{out}")
    return float(match.group(1))


@contextlib.contextmanager
def bench_database() -> Iterator[None]:
    subprocess.run(["dropdb", *PG, "--if-exists", BENCH_DB], check=True)
    subprocess.run(["createdb", *PG, BENCH_DB], check=True)
    try:
        subprocess.run(["pgbench", "-i", "-s", "1", "-q", *PG, BENCH_DB], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["dropdb", *PG, "--if-exists", BENCH_DB], check=True)


# ---- latency and bulk --------------------------------------------------------------------
def ping_p50_us(port: int, count: int) -> float:
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(b"PING\r\n")
            sock.recv(64)
            samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


class Sink:
    """A server that reads and discards everything, a thread per connection."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        buffer = bytearray(1 << 20)
        with conn:
            while conn.recv_into(buffer):
                pass


def bulk_gbps(port: int, total: int) -> float:
    block = memoryview(bytes(1 << 20))
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        started = time.perf_counter()
        for _ in range(total // len(block)):
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # the sink closes after reading everything
        elapsed = time.perf_counter() - started
    return total / elapsed / 1e9


# ---- toxic effect time -------------------------------------------------------------------
def toxic_effect_ms(api: httpx.Client, proxy: str, port: int, rounds: int) -> tuple[float, float]:
    """Median ms for the API call to return; the very next request is checked to be (un)affected."""
    added, removed = [], []
    toxic = {"name": "lag", "type": "latency", "attributes": {"latency": 100}}
    with socket.create_connection(("127.0.0.1", port)) as sock:

        def rtt() -> float:
            started = time.perf_counter()
            sock.sendall(b"PING\r\n")
            sock.recv(64)
            return time.perf_counter() - started

        for _ in range(rounds):
            started = time.perf_counter()
            api.post(f"/proxies/{proxy}/toxics", json=toxic).raise_for_status()
            added.append((time.perf_counter() - started) * 1000)
            assert rtt() >= 0.1, "toxic not in effect on the next request"
            started = time.perf_counter()
            api.delete(f"/proxies/{proxy}/toxics/lag").raise_for_status()
            removed.append((time.perf_counter() - started) * 1000)
            assert rtt() < 0.05, "toxic still in effect after removal"
    return statistics.median(added), statistics.median(removed)


# ---- the run -----------------------------------------------------------------------------
def compare(
    measure: Callable[[int], float], ports: tuple[int, ...], repeats: int, low: bool = False
) -> list[float]:
    """Each port measured `repeats` times, interleaved so load changes hit all alike; the best of each."""
    runs: list[list[float]] = [[] for _ in ports]
    for _ in range(repeats):
        for index, port in enumerate(ports):
            runs[index].append(measure(port))
    return [min(r) if low else max(r) for r in runs]


def throughput_row(
    label: str, direct: float, ours: float, relay: float, native: float, python: float
) -> tuple[str, str, str, str, str]:
    """One table row: direct, our proxy, socat, and the ratios (the other two relays too)."""
    return (
        label,
        f"{direct:,.0f}",
        f"{ours:,.0f}",
        f"{relay:,.0f}",
        f"{ours / direct:.2f} of direct, {ours / relay:.2f} of socat "
        f"(C relay thread alone: {native:,.0f}, {native / direct:.2f}; "
        f"Python relay: {python:,.0f}, {python / direct:.2f})",
    )


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {sys.version.split()[0]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    requests, pg_seconds, repeats = (50_000, 5, 1) if args.quick else (200_000, 10, 3)
    rows: list[tuple[str, str, str, str, str]] = []
    sink = Sink()
    with (
        proxy_daemon(extra_upstream=f"127.0.0.1:{sink.port}") as api,
        proxy_daemon(relay="native") as api_native,
        proxy_daemon(relay="python") as api_python,
        socat(6379) as redis_socat,
        socat(5432) as pg_socat,
        socat(sink.port) as bulk_socat,
    ):
        redis_proxy = add_proxy(api, "redis", "127.0.0.1:6379")
        pg_proxy = add_proxy(api, "pg", "127.0.0.1:5432")
        bulk_proxy = add_proxy(api, "bulk", f"127.0.0.1:{sink.port}")
        relay_in_use = default_relay(api, "redis", redis_proxy)
        redis_native = add_proxy(api_native, "redis", "127.0.0.1:6379")
        pg_native = add_proxy(api_native, "pg", "127.0.0.1:5432")
        redis_python = add_proxy(api_python, "redis", "127.0.0.1:6379")
        pg_python = add_proxy(api_python, "pg", "127.0.0.1:5432")
        for op in ("GET", "SET"):
            direct, ours, relay, native, python = compare(
                functools.partial(redis_op, op=op, requests=requests),
                (6379, redis_proxy, redis_socat, redis_native, redis_python),
                repeats,
            )
            label = f"redis-benchmark {op}, 8 clients (ops/s)"
            rows.append(throughput_row(label, direct, ours, relay, native, python))
        with bench_database():
            direct, ours, relay, native, python = compare(
                lambda p: pg_tps(p, pg_seconds), (5432, pg_proxy, pg_socat, pg_native, pg_python), repeats
            )
            rows.append(throughput_row("pgbench -S, 4 clients (TPS)", direct, ours, relay, native, python))
        pings = 5000 if args.quick else 20000
        direct, ours, relay, native = compare(
            lambda p: ping_p50_us(p, pings), (6379, redis_proxy, redis_socat, redis_native), repeats, True
        )
        rows.append(
            (
                "redis PING p50 round trip, 1 client (µs)",
                f"{direct:.0f}",
                f"{ours:.0f}",
                f"{relay:.0f}",
                f"{ours - direct:+.0f} µs added (socat {relay - direct:+.0f}; "
                f"C relay thread alone {native:.0f}, {native - direct:+.0f})",
            )
        )
        total = (1 if args.quick else 4) << 30
        direct, ours, relay = compare(
            lambda p: bulk_gbps(p, total), (sink.port, bulk_proxy, bulk_socat), repeats
        )
        rows.append(
            (
                "bulk transfer, 1 stream (GB/s)",
                f"{direct:.2f}",
                f"{ours:.2f}",
                f"{relay:.2f}",
                f"{ours / direct:.2f} of direct",
            )
        )
        added, removed = toxic_effect_ms(api, "redis", redis_proxy, 20)
        rows.append(
            (
                "toxic add / remove in effect (ms, median of 20)",
                "",
                f"{added:.2f} / {removed:.2f}",
                "",
                "next request verified affected / unaffected",
            )
        )
    print(f"Machine: {machine()}; the default daemon relayed with the {relay_in_use}\n")
    print("| measure | direct | chaos-mcp proxy | socat | ratio |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
