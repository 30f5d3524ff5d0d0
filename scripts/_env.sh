# Shared by scripts/demo.sh and scripts/test.sh: a venv with the project installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CHAOS_MCP_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.installed-$extras"
    local changed=""
    for source in pyproject.toml setup.py chaos_mcp/faults/proxy/_relay.c chaos_mcp/faults/proxy/_sockmap.c \
        chaos_mcp/faults/proxy/_sockmap.h; do
        if [ "$ROOT/$source" -nt "$stamp" ]; then changed=1; fi
    done
    if [ ! -f "$stamp" ] || [ -n "$changed" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
        "$VENV/bin/python" -m pip install --quiet -e "$ROOT$extras" >&2
        touch "$stamp"
    fi
}
