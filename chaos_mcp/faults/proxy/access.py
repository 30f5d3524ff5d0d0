"""Who may change the daemon, and what may be asked of it: the token, listen hosts, upstreams, expiry.

The token lives in a 0600 file (default `<state dir>/proxy.token`, or `$CHAOS_MCP_PROXY_TOKEN_FILE`),
created at the daemon's first start; every request that changes state carries it as
`Authorization: Bearer <token>` (scheme in any case) or `X-Chaos-Proxy-Token: <token>`.
The server's client reads the same file, so only the operator and the server hold it.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos_mcp.config import SPEC_MAX_DURATION, Settings
from chaos_mcp.faults.proxy.client import default_token_path
from chaos_mcp.faults.proxy.proxy import ProxyError, split_address

__all__ = ["AccessPolicy", "default_token_path", "load_or_create_token"]
TOKEN_HEADER = "x-chaos-proxy-token"
Address = tuple[str, int]


def load_or_create_token(path: Path) -> str:
    """The token in `path`, written there first (0600, exclusive create) if the file does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = read_token(path)
        if token is None:
            raise ProxyError(f"{path} is empty or unreadable; delete it to get a new token", 1) from None
        return token
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    token = read_token(path)
    assert token is not None
    return token


def read_token(path: Path) -> str | None:
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def presented_token(headers: Mapping[str, str]) -> str | None:
    direct = headers.get(TOKEN_HEADER)
    if direct:
        return direct.strip()
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _address(value: str) -> Address:
    host, port = split_address(value, "address")
    return host.lower(), port


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AccessPolicy:
    """`token` None: no credential required; `upstreams` None: any upstream (in-process embedding)."""

    token: str | None = None
    upstreams: frozenset[Address] | None = None
    listen_hosts: frozenset[str] = frozenset()
    max_ttl: float = SPEC_MAX_DURATION

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        token: str | None,
        more_upstreams: Sequence[str] = (),
        more_listen_hosts: Sequence[str] = (),
        max_ttl: float | None = None,
    ) -> AccessPolicy:
        declared = [t.proxy.upstream for t in settings.targets.values() if t.proxy is not None]
        upstreams = [*declared, *settings.proxy.allowed_upstreams, *more_upstreams]
        listen_hosts = [*settings.proxy.allowed_listen_hosts, *more_listen_hosts]
        longest = min(settings.policy.max_duration, SPEC_MAX_DURATION)
        return cls(
            token=token,
            upstreams=frozenset(_address(u) for u in upstreams),
            listen_hosts=frozenset(h.lower().strip("[]") for h in listen_hosts),
            max_ttl=longest if max_ttl is None else min(max_ttl, longest),
        )

    def authorized(self, headers: Mapping[str, str]) -> bool:
        if self.token is None:
            return True
        given = presented_token(headers)
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def check_listen(self, listen: str) -> None:
        host, _ = split_address(listen, "listen")
        if is_loopback(host) or host.lower() in self.listen_hosts:
            return
        extra = f" or {', '.join(sorted(self.listen_hosts))}" if self.listen_hosts else ""
        raise ProxyError(
            f"listen: {host} is not allowed; accepted: a loopback address (127.0.0.1, ::1, "
            f"localhost){extra}. To expose a proxy on another address, add its host to [proxy] "
            "allowed_listen_hosts in chaos.toml",
            403,
        )

    def check_upstream(self, upstream: str) -> None:
        if self.upstreams is None or _address(upstream) in self.upstreams:
            return
        accepted = ", ".join(f"{h}:{p}" for h, p in sorted(self.upstreams)) or "none declared"
        raise ProxyError(
            f"upstream: {upstream} is not declared; accepted: {accepted}. Declare it as a target's "
            "proxy.upstream or in [proxy] allowed_upstreams in chaos.toml, then restart the daemon",
            403,
        )
