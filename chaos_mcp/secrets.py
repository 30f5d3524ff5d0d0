"""Keeping credentials out of everything a person or an agent reads.

Every pass here is linear in the text's length, whatever the text: the patterns can only start
where their first character is (a scheme's last letter, the word `password`), and their
repetitions cannot be split two ways, so no input makes the regex engine backtrack for long.
All configured secrets are found in one scan (one alternation, longest first at each position).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

# `[a-z][0-9+.-]*://` starts at the scheme's last letter: the part kept before the password is
# the same as with the whole scheme, but each start scans only the digits/signs after its letter.
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][0-9+.-]*://[^:/@\s]*:)(?P<password>[^@/\s]+)@",
    re.I,
)
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>'[^']*'|\S+)", re.I)
MASK = "***"
MIN_SECRET_LENGTH = 4


def redact_url(url: str) -> str:
    """`postgresql://u:secret@h/db` → `postgresql://u:***@h/db`; other text unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return redact_text(url)
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc}"))


def redact_text(text: str, secrets: Iterable[str] = frozenset()) -> str:
    """Mask URL passwords, `password=` pairs and every known secret value in free text."""
    # The cheap substring tests skip a pass that cannot match (casefold covers every spelling
    # that re.IGNORECASE accepts for "password", e.g. the long s).
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    if "password" in text.casefold():
        text = _KV_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)
    present = frozenset(s for s in secrets if len(s) >= MIN_SECRET_LENGTH and s in text)
    return _secrets_pattern(present).sub(MASK, text) if present else text


@lru_cache(maxsize=256)
def _secrets_pattern(secrets: frozenset[str]) -> re.Pattern[str]:
    """One alternation of every secret, longest first, so a secret that contains another is masked whole."""
    return re.compile("|".join(re.escape(s) for s in sorted(secrets, key=lambda s: (-len(s), s))))


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
