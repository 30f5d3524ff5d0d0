#!/usr/bin/env bash
# Run a complete chaos experiment on the embedded default (no servers needed).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_venv ""
exec "$VENV/bin/chaos-mcp" demo "$@"
