"""Redaction is linear-time and masks exactly what the simple three-pass version masked."""

from __future__ import annotations

import re
import time

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from chaos_mcp.secrets import MASK, redact_text

_OLD_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@", re.I)
_OLD_KV = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>'[^']*'|\S+)", re.I)


def reference(text: str, secrets: frozenset[str]) -> str:
    """The pre-issue-13 implementation: obviously right, quadratic on long runs of letters."""
    text = _OLD_URL.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _OLD_KV.sub(lambda m: f"{m['key']}{MASK}", text)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def overlapping(secrets: frozenset[str]) -> bool:
    """Two secrets where one's end is the other's start: the old passes and one scan may cut differently."""
    return any(
        a != b and any(a.endswith(b[:k]) for k in range(1, min(len(a), len(b))))
        for a in secrets
        for b in secrets
    )


LONG_S = "pa\u017fsword"  # "password" with a long s, which re.IGNORECASE also matches
PIECES = [
    "://",
    ":",
    "@",
    "/",
    " ",
    "\n",
    "=",
    "'",
    "password",
    "PassWord",
    LONG_S,
    "a",
    "Z",
    "1",
    "+",
    ".",
    "-",
    "é",
]
secret_text = st.text(alphabet="abcdefgh12:@/=' ", min_size=1, max_size=8)


@settings(max_examples=400, deadline=None)
@example(secrets=frozenset(), chunks=[LONG_S, "=", "a"])
@example(secrets=frozenset(), chunks=["x", "1", "+", "://", "a", ":", "b", "@"])
@example(secrets=frozenset({"abcd", "abcdef"}), chunks=["abcdefabcd"])
@given(
    secrets=st.frozensets(secret_text, max_size=3),
    chunks=st.lists(st.one_of(st.sampled_from(PIECES), secret_text), max_size=40),
)
def test_one_scan_masks_exactly_what_the_three_simple_passes_masked(
    secrets: frozenset[str], chunks: list[str]
) -> None:
    assume(not overlapping(secrets))
    text = "".join(chunks + sorted(secrets))
    assert redact_text(text, secrets) == reference(text, secrets)


ADVERSARIAL = {
    "letters": "a" * 1_000_000,
    "letters and digits": "a1" * 500_000,
    "schemes without a password": "ab://" * 200_000,
    "users without a password": "a://b:" * 166_666,
    "password keys": "password " * 111_111,
    "unclosed quotes": "password='" * 100_000,
    "secret prefixes": "s3cr3t-Pa55word-x" * 58_823 + "s3cr3t-Pa55word-xyz",
}


def test_a_megabyte_of_adversarial_text_is_redacted_in_well_under_a_second() -> None:
    secrets = frozenset({"s3cr3t-Pa55word-xyz", "another-secret-value"})
    for name, text in ADVERSARIAL.items():
        began = time.perf_counter()
        redact_text(text, secrets)
        took = time.perf_counter() - began
        # The benchmark holds the real figure (< 50 ms on the reference machine); this bound leaves room
        # for a shared CI core while still failing by orders of magnitude on a quadratic pass.
        assert took < 0.5, f"{name}: {took * 1000:.0f} ms for {len(text):,} characters"


def test_every_configured_secret_is_masked_in_one_pass_longest_first() -> None:
    text = "dsn pw hunter22-long and hunter22 and postgresql://u:pw0rd@h/db password = 'a b' end"
    out = redact_text(text, {"hunter22", "hunter22-long", "abc"})
    assert out == "dsn pw *** and *** and postgresql://u:***@h/db password = *** end"
