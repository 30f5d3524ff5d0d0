"""Helper processes that outlive the MCP server: spawn, identify, find and stop them.

A fault that must end on time even if everyone else dies (a lock holder, a memory ballast)
runs in a detached process. The parent starts `python -m <module> --tag <tag>`, sends it a JSON
payload on stdin (so secrets never show in `ps`), and reads a short handshake on stdout:

    pid <pid> <start_ticks>     the worker, after a double fork (init adopts it: no zombie of ours)
    ready                       the fault is in effect
    error <message>             it is not, and why

A process is identified by pid *and* its start time (field 22 of /proc/<pid>/stat), so a recycled
pid is never killed. The tag is in the worker's argv, so a fresh process can find it from the
journal record alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn, TextIO

import anyio

from chaos_mcp.faults.base import FaultError

_PROC = Path("/proc")


@dataclasses.dataclass(frozen=True)
class Worker:
    pid: int
    start_ticks: int


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if it is gone or a zombie."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def known(pid: int | None, ticks: int | None) -> Worker | None:
    """The worker a fault recorded after inject, if it recorded one."""
    return None if pid is None or ticks is None else Worker(pid, ticks)


def is_alive(worker: Worker) -> bool:
    return start_ticks(worker.pid) == worker.start_ticks


def rss_kib(pid: int) -> int:
    """Resident set size from /proc/<pid>/status; 0 if the process is gone."""
    try:
        status = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tagged_workers(tag: str) -> list[Worker]:
    """Live processes whose argv carries `--tag <tag>`."""
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if tag.encode() in argv:
            ticks = start_ticks(int(entry.name))
            if ticks is not None:
                found.append(Worker(int(entry.name), ticks))
    return found


def stop_workers(tag: str, known: Worker | None = None, sig: int = signal.SIGKILL) -> int:
    """Signal every live worker with this tag (and `known`, if still the same process)."""
    workers = set(tagged_workers(tag))
    if known is not None and is_alive(known):
        workers.add(known)
    workers = {worker for worker in workers if worker.pid != os.getpid()}  # a warden reverting
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, sig)
    return len(workers)


async def wait_gone(tag: str, within: float = 5.0) -> None:
    """Poll (bounded) until no process (but this one) carries the tag any more."""
    with anyio.fail_after(within):
        while True:
            if all(worker.pid == os.getpid() for worker in tagged_workers(tag)):
                return
            await anyio.sleep(0.01)


async def spawn(module: str, tag: str, payload: dict[str, Any], ready_timeout: float) -> Worker:
    """Start a detached worker and wait (bounded) for it to report `ready`."""
    return await anyio.to_thread.run_sync(_spawn_blocking, module, tag, payload, ready_timeout)


def _spawn_blocking(module: str, tag: str, payload: dict[str, Any], ready_timeout: float) -> Worker:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    from chaos_mcp.state import state_dir

    with open(state_dir() / "helpers.log", "ab") as errors:  # a helper's own failures, for the operator
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--tag", tag],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,
            env=env,
        )
    assert proc.stdin is not None and proc.stdout is not None
    with proc.stdin:
        proc.stdin.write(json.dumps(payload).encode())
    try:
        return _handshake(proc.stdout.fileno(), time.monotonic() + ready_timeout, tag)
    finally:
        proc.stdout.close()
        proc.wait(timeout=5)


def _handshake(fd: int, deadline: float, tag: str) -> Worker:
    buffer, worker = b"", None
    while True:
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                stop_workers(tag)
                raise FaultError(f"helper process {tag} did not become ready in time; it was stopped")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise FaultError(f"helper process {tag} exited before it was ready")
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        word, _, rest = line.decode().partition(" ")
        if word == "pid":
            pid, ticks = rest.split()
            worker = Worker(int(pid), int(ticks))
        elif word == "ready" and worker is not None:
            return worker
        elif word == "error":
            raise FaultError(rest)


# ── the worker side ──────────────────────────────────────────────────────────────────────────


def become_worker() -> tuple[dict[str, Any], TextIO]:
    """In the child: read the payload, double-fork, announce the pid; returns (payload, channel)."""
    payload: dict[str, Any] = json.loads(sys.stdin.read())
    _log_as_json(payload)
    if os.fork() > 0:
        os._exit(0)
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    pid = os.getpid()
    channel.write(f"pid {pid} {start_ticks(pid)}\n")
    return payload, channel


def _log_as_json(payload: dict[str, Any]) -> None:
    """A helper's stderr (helpers.log) gets the same redacted JSON lines as the server's, uncaught
    exceptions included, with the credentials of its own payload masked."""
    from chaos_mcp.logs import configure_logging
    from chaos_mcp.secrets import secrets_in_url

    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str):
            found.update(secrets_in_url(value))
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(payload)
    configure_logging("WARNING", found)


def report_ready(channel: TextIO) -> None:
    channel.write("ready\n")
    channel.close()


def report_error(channel: TextIO, message: str) -> NoReturn:
    with contextlib.suppress(OSError):
        channel.write(f"error {message}\n")
        channel.close()
    os._exit(1)


def sleep_until(deadline: float) -> None:
    """Sleep until the wall-clock deadline (epoch seconds)."""
    while (remaining := deadline - time.time()) > 0:
        time.sleep(min(remaining, 1.0))


def tag_from_argv() -> str:
    args = sys.argv[1:]
    if len(args) != 2 or args[0] != "--tag":
        raise SystemExit("usage: python -m <worker> --tag TAG  (payload as JSON on stdin)")
    return args[1]


async def start_warden(tag: str, record: dict[str, Any], expires_at: float) -> Worker:
    """A detached process that reverts `record` at `expires_at` unless stopped first."""
    payload = {"record": record, "expires_at": expires_at}
    return await spawn("chaos_mcp.faults._warden", tag, payload, ready_timeout=10)


async def stop_warden(tag: str) -> None:
    stop_workers(tag)
    await wait_gone(tag)
