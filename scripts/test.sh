#!/usr/bin/env bash
# The whole suite: installs what it needs, starts PostgreSQL and Redis if they are not running,
# then ruff, mypy and pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
    else
        echo "missing: $* (install them, then run again)" >&2
        exit 1
    fi
}

command -v redis-server >/dev/null || apt_install redis-server
command -v pg_ctlcluster >/dev/null || apt_install postgresql
command -v npx >/dev/null || apt_install nodejs npm
command -v chromium >/dev/null || apt_install chromium

if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start >&2
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >&2
fi
for _ in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break
    sleep 0.2
done

ensure_venv "[test]"
cd "$ROOT"
"$VENV/bin/ruff" check chaos_mcp tests bench
"$VENV/bin/ruff" format --check chaos_mcp tests bench
"$VENV/bin/mypy" chaos_mcp
exec "$VENV/bin/python" -m pytest "$@"
