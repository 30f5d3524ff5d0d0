"""Keeping credentials out of everything a person or an agent reads."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@", re.I
)
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>'[^']*'|\S+)", re.I)
MASK = "***"


def redact_url(url: str) -> str:
    """`postgresql://u:secret@h/db` → `postgresql://u:***@h/db`; other text unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return redact_text(url)
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc}"))


def redact_text(text: str, secrets: frozenset[str] | set[str] = frozenset()) -> str:
    """Mask URL passwords, `password=` pairs and every known secret value in free text."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def secrets_in_url(url: str) -> set[str]:
    """The credential values a URL carries (its password), for scrubbing."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return set()
    found = {password} if password else set()
    match = _KV_PASSWORD.search(url)
    if match:
        found.add(match["value"].strip("'"))
    return found
