"""A small typed client for the control API (ours, or a real Toxiproxy for the standard parts).

async with ProxyClient("http://127.0.0.1:8474") as client:
    await client.ensure_proxy("db", listen="127.0.0.1:15432", upstream="127.0.0.1:5432")
    await client.add_toxic("db", ToxicSpec(type="latency", attributes={"latency": 200}, ttl=60))

The client sends the daemon's token (access.py: `$CHAOS_MCP_PROXY_TOKEN_FILE`, else
`<state dir>/proxy.token`) when that file exists; to a non-loopback API only when the file was
named explicitly, so a remote Toxiproxy never sees the local daemon's token.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import httpx

from chaos_mcp.secrets import redact_url
from chaos_mcp.state import state_dir

TOKEN_FILE_ENV = "CHAOS_MCP_PROXY_TOKEN_FILE"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

Stream = Literal["upstream", "downstream"]


class ProxyApiError(Exception):
    """The daemon refused a request or could not be reached; `status` is 0 when unreachable."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class ToxicSpec:
    type: str
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    stream: Stream = "downstream"
    toxicity: float = 1.0
    name: str | None = None
    ttl: float | None = None
    expires_at: float | None = None

    @property
    def resolved_name(self) -> str:
        return self.name or f"{self.type}_{self.stream}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.resolved_name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }
        if self.ttl is not None:
            data["ttl"] = self.ttl
        if self.expires_at is not None:
            data["expires_at"] = self.expires_at
        return data


class ProxyClient:
    def __init__(
        self, api_url: str, timeout: float = 5.0, token: str | None = None, restart_grace: float = 0.0
    ) -> None:
        """`restart_grace`: keep retrying a refused connection this long (a supervised daemon that
        died is back within about a second); nothing was sent, so any request may be retried."""
        self.api_url = api_url.rstrip("/")
        self.restart_grace = restart_grace
        token = token if token is not None else token_for(self.api_url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.api_url, timeout=timeout, headers=headers)

    async def __aenter__(self) -> ProxyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        give_up = time.monotonic() + self.restart_grace
        while True:
            try:
                response = await self._http.request(method, path, json=body)
                break
            except httpx.ConnectError:
                if time.monotonic() >= give_up:
                    raise self._unreachable("connection refused") from None
                await anyio.sleep(0.1)
            except httpx.HTTPError as exc:
                raise self._unreachable(str(exc)) from None
        if response.status_code >= 400:
            try:
                message = str(response.json().get("error", response.text))
            except ValueError:
                message = response.text
            raise ProxyApiError(f"{method} {path}: {response.status_code} {message}", response.status_code)
        return response.json() if response.content else None

    def _unreachable(self, why: str) -> ProxyApiError:
        where = redact_url(self.api_url)
        return ProxyApiError(f"proxy daemon at {where} unreachable ({why}); is it running?", 0)

    async def version(self) -> str:
        data = await self._call("GET", "/version")
        return str(data.get("version")) if isinstance(data, dict) else str(data)

    async def status(self) -> dict[str, Any]:
        """GET /version as a dict: ours adds generation, started_at, pid, supervised, token_required."""
        data = await self._call("GET", "/version")
        return data if isinstance(data, dict) else {"version": str(data)}

    async def list_proxies(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = await self._call("GET", "/proxies")
        return result

    async def get_proxy(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/proxies/{name}")
        return result

    async def ensure_proxy(self, name: str, listen: str, upstream: str) -> dict[str, Any]:
        """The proxy `name` with this listen/upstream exists and is enabled (created or fixed)."""
        try:
            current = await self.get_proxy(name)
        except ProxyApiError as exc:
            if exc.status != 404:
                raise
            result: dict[str, Any] = await self._call(
                "POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
            )
            return result
        if current.get("upstream") != upstream or not _same_listen(current.get("listen", ""), listen):
            await self._call("DELETE", f"/proxies/{name}")
            return await self.ensure_proxy(name, listen, upstream)
        return current

    async def delete_proxy(self, name: str) -> None:
        await self._call("DELETE", f"/proxies/{name}")

    async def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", f"/proxies/{name}", {"enabled": enabled})
        return result

    async def toxics(self, proxy: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", f"/proxies/{proxy}/toxics")
        return result

    async def get_toxic(self, proxy: str, toxic: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._call("GET", f"/proxies/{proxy}/toxics/{toxic}")
        except ProxyApiError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def add_toxic(self, proxy: str, spec: ToxicSpec) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", f"/proxies/{proxy}/toxics", spec.to_json())
        return result

    async def remove_toxic(self, proxy: str, toxic: str, missing_ok: bool = True) -> bool:
        """Delete a toxic; False if it (or its proxy) was already gone and `missing_ok`."""
        try:
            await self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")
        except ProxyApiError as exc:
            if exc.status == 404 and missing_ok:
                return False
            raise
        return True

    async def reset(self) -> None:
        await self._call("POST", "/reset")


ProxyClient.list = ProxyClient.list_proxies  # type: ignore[attr-defined]


def token_for(api_url: str) -> str | None:
    """The daemon's token for `api_url`, or None (no token file, or a remote API and the default file)."""
    if not os.environ.get(TOKEN_FILE_ENV) and urlsplit(api_url).hostname not in _LOOPBACK:
        return None
    try:
        return default_token_path().read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def default_token_path() -> Path:
    explicit = os.environ.get(TOKEN_FILE_ENV)
    return Path(explicit) if explicit else state_dir() / "proxy.token"


def _same_listen(current: str, wanted: str) -> bool:
    return current == wanted or (wanted.endswith(":0") and current.rpartition(":")[0] == wanted[:-2])
