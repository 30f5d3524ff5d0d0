"""The design checks that read free text (placeholders, the hypothesis form) are linear and unchanged."""

from __future__ import annotations

import re
import time

from hypothesis import example, given, settings
from hypothesis import strategies as st

from chaos_mcp.contract import HYPOTHESIS_FORM, placeholder_in

_OLD_PLACEHOLDERS = re.compile(
    r"\[[^\]\n]*[A-Za-z][^\]\n]*\]|<[a-z][a-z _-]*>|\{\{[^}]*\}\}|\bTBD\b|\bTBA\b|\bTODO\b|\bFIXME\b"
    r"|\bN/A\b|^\s*n\.?a\.?\s*$|\blorem ipsum\b|^\s*(\.\.\.|…|-|\?+|x+|none|null|placeholder)\s*$",
    re.IGNORECASE,
)
_OLD_HYPOTHESIS = re.compile(
    r"^\s*(when|if|while|during|after)\s+(?P<condition>\S.{2,}?),\s*(?P<system>.+?)\s+"
    r"(should|must|will|shall)\b\s*(?P<behaviour>\S.*)",
    re.IGNORECASE | re.DOTALL,
)

PIECES = ["[", "]", "{", "}", "{{", "}}", "<", ">", "a", "Z", "1", " ", "\n", ",", "TBD", "n/a", "x", "?"]
HYPOTHESIS_PIECES = ["When", "if", " ", "  ", "\n", ",", "a", "db", "should", "must", "x", "."]


@settings(max_examples=500, deadline=None)
@example(["[", "[", "a", "]"])
@example(["{{", "{", "}}", "}"])
@example(["[", "\n", "a", "]", "TBD"])
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_the_placeholder_check_finds_what_the_single_regex_found(pieces: list[str]) -> None:
    text = "".join(pieces)
    old = _OLD_PLACEHOLDERS.search(text)
    assert placeholder_in(text) == (old.group(0).strip() if old else None)


@settings(max_examples=500, deadline=None)
@example(["When", " ", "a", "a", "a", ",", " ", "db", " ", "should", " ", "x"])
@given(st.lists(st.sampled_from(HYPOTHESIS_PIECES), max_size=24))
def test_the_hypothesis_form_accepts_what_it_accepted_unless_the_system_part_was_blank(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    old = _OLD_HYPOTHESIS.match(text)
    if old is not None and not old["system"].strip():
        assert HYPOTHESIS_FORM.match(text) is None
    else:
        assert (HYPOTHESIS_FORM.match(text) is None) == (old is None)


ADVERSARIAL = {
    "unclosed brackets": "[a" * 32_768,
    "unclosed braces": "{{" * 32_768,
    "angle brackets": "<a" * 32_768,
    "commas": "When a" + ",a" * 32_768,
    "spaces": "When aaa, b" + " " * 65_536 + "x",
}


def test_64_kib_of_adversarial_text_is_checked_in_milliseconds() -> None:
    for name, text in ADVERSARIAL.items():
        began = time.perf_counter()
        placeholder_in(text)
        HYPOTHESIS_FORM.match(text)
        took = time.perf_counter() - began
        assert took < 0.2, f"{name}: {took * 1000:.0f} ms for {len(text):,} characters"
