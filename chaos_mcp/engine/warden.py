"""The dead-man switch: a detached process that reverts an experiment's faults at its deadline.

It outlives the MCP server (its own session, no shared pipes), reads everything it needs from
the journal, and exits as soon as nothing of the experiment is left active. Faults that expire
on their own (proxy toxics, Redis pauses, lock holders, ballast) are reverted by both; revert is
idempotent.

    CHAOS_MCP_WARDEN_JOURNAL=JOURNAL_URL python -m chaos_mcp.engine.warden LABEL EXPERIMENT_ID DEADLINE

The journal URL may carry a password, so it travels in the environment (readable by the same user
and root only), never on the command line that `ps` shows to everyone; LABEL is the URL with its
password masked, so an operator still sees which journal a warden serves.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import anyio

from chaos_mcp.secrets import redact_url

if TYPE_CHECKING:
    from chaos_mcp.engine.journal import Journal

JOURNAL_ENV = "CHAOS_MCP_WARDEN_JOURNAL"
GRACE = 0.2
POLL = 0.25
RETRY_FOR = 60.0
RETRY_EVERY = 2.0


def spawn_warden(journal_url: str, experiment_id: str, deadline: float) -> int | None:
    """Start the warden for one experiment; None when the journal cannot be shared (in memory)."""
    if ":memory:" in journal_url or journal_url in ("sqlite://", "sqlite:///"):
        return None
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaos_mcp.engine.warden",
            redact_url(journal_url),
            experiment_id,
            repr(deadline),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", JOURNAL_ENV: journal_url},
    )
    return process.pid


async def watch(journal_url: str, experiment_id: str, deadline: float) -> int:
    from chaos_mcp.engine.journal import IN_FORCE_STATUSES, Journal
    from chaos_mcp.faults.base import FaultError, fault_from_record

    journal = Journal(journal_url)
    for row in journal.faults(experiment_id):
        with contextlib.suppress(FaultError, TypeError):
            fault_from_record(row.record)  # import the fault's family now, not at the deadline
    try:
        while True:
            active = [f for f in journal.faults(experiment_id) if f.status in IN_FORCE_STATUSES]
            if not active:
                return 0
            if time.time() >= deadline + GRACE:
                return await _revert_until_gone(journal, experiment_id, deadline)
            await anyio.sleep(min(POLL, max(0.01, deadline + GRACE - time.time())))
    finally:
        journal.close()


async def _revert_until_gone(journal: Journal, experiment_id: str, deadline: float) -> int:
    """Revert at the deadline; a revert that fails is retried (verified each time) for RETRY_FOR seconds."""
    from chaos_mcp.engine.journal import IN_FORCE_STATUSES
    from chaos_mcp.engine.reverter import in_force, revert_faults

    attempt = 0
    while True:
        attempt += 1
        active = [f for f in journal.faults(experiment_id) if f.status in IN_FORCE_STATUSES]
        steps = await revert_faults(journal, active)
        still = in_force(steps)
        journal.append(
            experiment_id,
            "auto_reverted" if attempt == 1 else "revert_retried",
            {"reason": "deadline reached (warden)", "steps": steps, "by": "warden", "attempt": attempt},
        )
        if not still:
            journal.release_holds_of(experiment_id)
            return 0
        if time.time() >= deadline + GRACE + RETRY_FOR:
            return 1
        await anyio.sleep(RETRY_EVERY)


def main(argv: list[str] | None = None) -> int:
    args = argv or sys.argv[1:]
    journal_url = os.environ.get(JOURNAL_ENV)
    if len(args) != 3 or not journal_url:
        usage = f"usage: {JOURNAL_ENV}=URL python -m chaos_mcp.engine.warden LABEL EXPERIMENT_ID DEADLINE"
        print(usage, file=sys.stderr)
        return 2
    _label, experiment_id, deadline = args
    return anyio.run(watch, journal_url, experiment_id, float(deadline))


if __name__ == "__main__":
    raise SystemExit(main())
