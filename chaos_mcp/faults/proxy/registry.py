"""All proxies of one daemon, and the translation of control-API JSON into proxies and toxics.

Every bad input raises `ProxyError` with the HTTP status and a message that names the field
and says what is accepted.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

from chaos_mcp.faults.proxy.access import AccessPolicy
from chaos_mcp.faults.proxy.fastpath import FastPath
from chaos_mcp.faults.proxy.proxy import Proxy, ProxyError, Stream, ToxicEntry, split_address
from chaos_mcp.faults.proxy.toxics import ToxicError, build_toxic

_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def _field(body: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str, default: Any) -> Any:
    value = body.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) and kind is not bool:
        raise ProxyError(f"{key}: expected {what}, got {json_type(value)}", 400)
    if not isinstance(value, kind):
        raise ProxyError(f"{key}: expected {what}, got {json_type(value)}", 400)
    return value


def json_type(value: object) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def require_object(body: object, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ProxyError(f"body: expected a JSON object describing {what}, got {json_type(body)}", 400)
    return body


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ProxyError(
            f"{field}: expected 1-128 characters of letters, digits, _ . : -, got {value!r}", 400
        )
    return value


def _known_keys(body: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ProxyError(
            f"{unknown[0]}: unknown field for {what}; accepted: {', '.join(sorted(allowed))}", 400
        )


class ProxyRegistry:
    def __init__(self, fast_path: FastPath | None = None, access: AccessPolicy | None = None) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.fast_path = fast_path
        self.access = access or AccessPolicy()

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            known = ", ".join(sorted(self.proxies)) or "none"
            raise ProxyError(f"proxy {name!r} not found; existing proxies: {known}", 404)
        return proxy

    # ---- proxies -----------------------------------------------------------------------
    async def create(self, body: object) -> Proxy:
        data = require_object(body, "a proxy")
        _known_keys(data, {"name", "listen", "upstream", "enabled", "toxics"}, "a proxy")
        for key in ("name", "upstream"):
            if key not in data:
                raise ProxyError(f"{key}: missing required field", 400)
        name = _name(data["name"], "name")
        upstream = _field(data, "upstream", str, "host:port such as 127.0.0.1:5432", None)
        listen = _field(data, "listen", str, "host:port such as 127.0.0.1:15432", "127.0.0.1:0")
        enabled = _field(data, "enabled", bool, "true or false", True)
        split_address(upstream, "upstream")
        self.access.check_listen(listen)
        self.access.check_upstream(upstream)
        if name in self.proxies:
            raise ProxyError(
                f"name: proxy {name!r} already exists; delete it first or pick another name", 409
            )
        proxy = Proxy(name, listen, upstream, enabled, self.fast_path)
        await proxy.sync_listener()
        self.proxies[name] = proxy
        return proxy

    async def populate(self, body: object) -> list[Proxy]:
        items = body.get("proxies") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise ProxyError(f"body: expected a JSON array of proxies, got {json_type(items)}", 400)
        created = []
        for item in items:
            data = require_object(item, "a proxy")
            existing = self.proxies.get(str(data.get("name")))
            if existing is not None:
                if existing.listen == data.get("listen") and existing.upstream == data.get("upstream"):
                    created.append(existing)
                    continue
                await self.delete(existing.name)
            created.append(await self.create(data))
        return created

    async def update(self, name: str, body: object) -> Proxy:
        proxy = self.get(name)
        data = require_object(body, "proxy changes")
        _known_keys(data, {"name", "listen", "upstream", "enabled", "toxics"}, "a proxy")
        enabled = _field(data, "enabled", bool, "true or false", proxy.enabled)
        upstream = _field(data, "upstream", str, "host:port", proxy.upstream)
        listen = _field(data, "listen", str, "host:port", proxy.listen)
        split_address(upstream, "upstream")
        split_address(listen, "listen")
        self.access.check_listen(listen)
        self.access.check_upstream(upstream)
        proxy.upstream = upstream
        proxy.enabled = enabled
        await proxy.relisten(listen)
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        del self.proxies[name]
        await proxy.close()

    async def reset(self) -> None:
        for proxy in self.proxies.values():
            await proxy.reset_toxics()
            proxy.enabled = True
            await proxy.sync_listener()

    async def close(self) -> None:
        for proxy in self.proxies.values():
            await proxy.close()

    # ---- toxics ------------------------------------------------------------------------
    async def add_toxic(self, proxy_name: str, body: object) -> ToxicEntry:
        proxy = self.get(proxy_name)
        entry = toxic_entry(require_object(body, "a toxic"), self.access.max_ttl)
        await proxy.add_toxic(entry)
        return entry

    async def update_toxic(self, proxy_name: str, toxic_name: str, body: object) -> ToxicEntry:
        proxy = self.get(proxy_name)
        current = proxy.toxics.get(toxic_name)
        if current is None:
            raise ProxyError(f"toxic {toxic_name!r} not found on proxy {proxy_name!r}", 404)
        changes = require_object(body, "toxic changes")
        merged = {**current.to_json(), **changes}
        merged["attributes"] = {**current.toxic.attributes(), **(changes.get("attributes") or {})}
        merged.update(name=toxic_name, type=current.toxic.type, stream=current.stream)
        if "ttl" in changes or "expires_at" in changes:
            merged.pop("expires_at" if "ttl" in changes else "ttl", None)
        entry = toxic_entry(merged, self.access.max_ttl)
        await proxy.replace_toxic(entry)
        return entry


def toxic_entry(data: dict[str, Any], max_ttl: float) -> ToxicEntry:
    """A toxic's JSON (Toxiproxy's shape, plus `ttl` or `expires_at`) → a validated entry.

    Every toxic expires: none given means `max_ttl` from now (the longest allowed experiment).
    """
    allowed = {"name", "type", "stream", "toxicity", "attributes", "ttl", "expires_at"}
    _known_keys(data, allowed, "a toxic")
    type_name = _field(data, "type", str, "a toxic type name", None)
    if type_name is None:
        raise ProxyError("type: missing required field", 400)
    stream = _stream(data.get("stream", "downstream"))
    name = _name(data.get("name") or f"{type_name}_{stream}", "name")
    toxicity = _field(data, "toxicity", (int, float), "a number from 0 to 1", 1.0)
    if not 0.0 <= float(toxicity) <= 1.0:
        raise ProxyError(f"toxicity: expected a number from 0 to 1, got {toxicity}", 400)
    try:
        attributes = data.get("attributes")
        toxic = build_toxic(type_name, {} if attributes is None else attributes)
    except ToxicError as exc:
        raise ProxyError(str(exc), 400) from None
    if stream not in toxic.streams:
        raise ProxyError(f"stream: {type_name} works on {' or '.join(toxic.streams)} only, got {stream}", 400)
    return ToxicEntry(name, stream, float(toxicity), toxic, _expiry(data, max_ttl))


def _stream(value: object) -> Stream:
    if value == "upstream":
        return "upstream"
    if value == "downstream":
        return "downstream"
    raise ProxyError(f"stream: expected upstream or downstream, got {value!r}", 400)


def _expiry(data: dict[str, Any], max_ttl: float) -> float:
    ttl = _field(data, "ttl", (int, float), "seconds, a number", None)
    expires_at = _field(data, "expires_at", (int, float), "unix time in seconds, a number", None)
    if ttl is not None and expires_at is not None:
        raise ProxyError("ttl: give either ttl (seconds from now) or expires_at (unix time), not both", 400)
    if ttl is not None:
        if not (math.isfinite(ttl) and 0 < ttl <= max_ttl):
            raise ProxyError(
                f"ttl: expected seconds greater than 0 and at most {max_ttl:g} (the longest allowed "
                f"experiment), got {ttl}",
                400,
            )
        return time.time() + float(ttl)
    if expires_at is not None:
        now = time.time()
        # a second of slack: the server computes a deadline of exactly max_duration before sending
        if not (math.isfinite(expires_at) and now < expires_at <= now + max_ttl + 1):
            raise ProxyError(
                f"expires_at: expected a unix time in the future, within {max_ttl:g} s of now "
                f"({now:.0f}; the longest allowed experiment), got {expires_at}",
                400,
            )
        return float(expires_at)
    return time.time() + max_ttl
