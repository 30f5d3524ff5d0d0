"""Run `chaos-mcp serve` as a real process we can kill, and talk to it over stdio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp import StdioServerParameters

PID_WRAPPER = (
    "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid())); "
    "from chaos_mcp.cli import main; sys.exit(main(sys.argv[2:]))"
)


def serve_params(state: Path, pid_file: Path, config: Path | None = None) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"}
    env["CHAOS_MCP_STATE_DIR"] = str(state)
    args = ["-c", PID_WRAPPER, str(pid_file)]
    if config is not None:
        args += ["--config", str(config)]
    return StdioServerParameters(command=sys.executable, args=[*args, "serve"], env=env)


def server_pid(pid_file: Path) -> int:
    return int(pid_file.read_text())
