"""Where chaos-mcp keeps its files: `$CHAOS_MCP_STATE_DIR`, else the user's state dir."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    explicit = os.environ.get("CHAOS_MCP_STATE_DIR")
    if explicit:
        base = Path(explicit)
    else:
        xdg = os.environ.get("XDG_STATE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".local" / "state") / "chaos-mcp"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return base
