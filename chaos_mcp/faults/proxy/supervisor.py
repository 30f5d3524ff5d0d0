"""`chaos-mcp proxy --supervise`: one daemon process kept alive, restarted if it dies.

The application's traffic goes through the daemon, so it must not stay dead after a crash or a
SIGKILL. The supervisor runs the daemon as its child; when the child dies of anything but a
requested stop, it starts a new one at once, with the same arguments, a higher `--generation`
(shown in GET /version) and the proxies the previous one persisted — but without toxics: a
fault never outlives the process that carried it. Each restart is a structlog warning and a line
in `<state dir>/proxy-<port>.supervisor.json`.

SIGTERM/SIGINT to the supervisor stop the daemon and then the supervisor. SIGKILL of the
supervisor leaves the daemon running unsupervised; `ensure_proxies` (serve, or the first proxied
experiment) then starts a new supervisor that adopts it (`--adopt PID`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from chaos_mcp.state import state_dir

log = structlog.get_logger("chaos_mcp.proxy")
CRASH_WINDOW = 30.0
MAX_CRASHES = 5
ADOPT_POLL = 0.05


def proxies_file(port: int) -> Path:
    return state_dir() / f"proxy-{port}.proxies.json"


def status_file(port: int) -> Path:
    return state_dir() / f"proxy-{port}.supervisor.json"


def stopped_file(port: int) -> Path:
    """Where a daemon that stops on request writes its pid, so an adopting supervisor lets it be."""
    return state_dir() / f"proxy-{port}.stopped"


def stopped_cleanly(port: int, pid: int) -> bool:
    try:
        return stopped_file(port).read_text().strip() == str(pid)
    except OSError:
        return False


def read_status(port: int) -> dict[str, Any]:
    try:
        data = json.loads(status_file(port).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class Supervisor:
    def __init__(self, daemon_argv: list[str], port: int) -> None:
        self.daemon_argv = daemon_argv
        self.port = port
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None
        self.generation = 0
        self.restarts: list[dict[str, Any]] = []

    def run(self, adopt: int | None = None) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        if adopt is not None:
            if not self._adopt(adopt):
                return 0
        else:
            proxies_file(self.port).unlink(missing_ok=True)
            code = self._run_child()
            if self.stopping or code in (0, 1, 2):
                return max(code, 0)
        return self._keep_alive()

    def _keep_alive(self) -> int:
        crashes: deque[float] = deque()
        while not self.stopping:
            crashes.append(time.monotonic())
            while crashes and crashes[0] < time.monotonic() - CRASH_WINDOW:
                crashes.popleft()
            if len(crashes) > MAX_CRASHES:
                log.error("proxy_daemon_crash_loop", crashes=len(crashes), within_s=CRASH_WINDOW)
                return 1
            time.sleep(0.2 * (len(crashes) - 1))  # the first restart at once, then a growing pause
            self.generation += 1
            code = self._run_child()
            if self.stopping or code == 0:
                return 0
        return 0

    def _run_child(self) -> int:
        command = [sys.executable, "-m", "chaos_mcp.cli", "proxy", *self.daemon_argv]
        command += ["--state-file", str(proxies_file(self.port)), "--generation", str(self.generation)]
        self.child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self._write_status()
        code = self.child.wait()
        if not self.stopping and code != 0:
            self._record_death(code)
        return code

    def _adopt(self, pid: int) -> bool:
        """Watch a daemon we did not start until it dies; True if it died without being asked to."""
        previous = read_status(self.port)
        self.generation = int(previous.get("generation", 0))
        self.restarts = list(previous.get("restarts", []))
        self._write_status(daemon_pid=pid)
        while not self.stopping and alive(pid):
            time.sleep(ADOPT_POLL)
        if self.stopping:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            return False
        if stopped_cleanly(self.port, pid):
            return False
        self._record_death(None)
        return True

    def _record_death(self, code: int | None) -> None:
        how = "unknown" if code is None else f"signal {-code}" if code < 0 else f"exit {code}"
        self.restarts.append({"at": time.time(), "generation": self.generation, "died_of": how})
        log.warning(
            "proxy_daemon_restarted",
            port=self.port,
            died_of=how,
            generation=self.generation + 1,
            detail="the daemon died; starting it again with its proxies and without toxics",
        )

    def _write_status(self, daemon_pid: int | None = None) -> None:
        status = {
            "supervisor_pid": os.getpid(),
            "daemon_pid": daemon_pid or (self.child.pid if self.child else None),
            "generation": self.generation,
            "restarts": self.restarts[-50:],
        }
        temporary = status_file(self.port).with_suffix(".tmp")
        temporary.write_text(json.dumps(status), encoding="utf-8")
        os.replace(temporary, status_file(self.port))

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)


def is_supervised(port: int, daemon_pid: int) -> bool:
    """True if a live supervisor's status names `daemon_pid` as the daemon it watches on `port`."""
    status = read_status(port)
    supervisor = status.get("supervisor_pid")
    return status.get("daemon_pid") == daemon_pid and isinstance(supervisor, int) and alive(supervisor)


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie no one reaps yet counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def supervise(daemon_argv: list[str], port: int, adopt: int | None = None) -> int:
    return Supervisor(daemon_argv, port).run(adopt)
