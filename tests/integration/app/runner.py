"""Start and stop the application under test as a subprocess (uvicorn on a free loopback port)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 15.0
SCHEDULES = [
    ("Internal Medicine block 10", "2026-11-02"),
    ("Pediatrics block 10", "2026-11-02"),
    ("Night float", "2026-11-09"),
]


@dataclasses.dataclass(frozen=True)
class RunningApp:
    base_url: str
    process: subprocess.Popen[bytes]
    token: str | None = None

    def set_failing(self, failing: bool) -> float:
        """Flip the app into (or out of) failing mode; returns the app's own timestamp of the flip."""
        answer = httpx.post(
            f"{self.base_url}/admin/failing", json={"failing": failing}, timeout=5, trust_env=False
        )
        answer.raise_for_status()
        return float(answer.json()["at"])

    def set_ready(self, ready: bool) -> None:
        """What /ready says (its HTTP status stays 200 either way)."""
        answer = httpx.post(f"{self.base_url}/admin/ready", json={"ready": ready}, timeout=5, trust_env=False)
        answer.raise_for_status()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def seed(app_dsn: str) -> None:
    """Create and fill the app's table, as the app's own role."""
    with psycopg.connect(app_dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schedules (id serial PRIMARY KEY, name text NOT NULL, "
            "starts_on date NOT NULL)"
        )
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO schedules (name, starts_on) VALUES (%s, %s)", SCHEDULES)


@contextlib.contextmanager
def running_app(
    app_dsn: str,
    redis_url: str,
    cache_ttl: float = 3.0,
    *,
    log: Path | None = None,
    token: str | None = None,
    leak_dsn: bool = False,
) -> Iterator[RunningApp]:
    """The app on a free port, answering /health; stopped (and waited for) on exit.

    `log`: every request logged there; `token`: every route but /admin/* needs it as a bearer
    token; `leak_dsn`: each log line carries the DSN, password included.
    """
    port = free_port()
    env = os.environ | {"APP_DSN": app_dsn, "APP_REDIS_URL": redis_url, "APP_CACHE_TTL": str(cache_ttl)}
    env |= {"APP_LOG": str(log or ""), "APP_TOKEN": token or "", "APP_LOG_LEAKS": "1" if leak_dsn else ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.app.server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    app = RunningApp(f"http://127.0.0.1:{port}", process, token)
    try:
        _wait_until_answering(app)
        yield app
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def _wait_until_answering(app: RunningApp) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=1.0, trust_env=False, headers=app.headers()) as client:
        while time.monotonic() < deadline:
            if app.process.poll() is not None:
                error = app.process.stderr.read().decode(errors="replace") if app.process.stderr else ""
                raise RuntimeError(f"the app exited with {app.process.returncode}: {error[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{app.base_url}/health").status_code == 200:
                    return
            time.sleep(0.05)
    raise RuntimeError(f"the app at {app.base_url} did not answer /health with 200 in {START_TIMEOUT:g}s")
