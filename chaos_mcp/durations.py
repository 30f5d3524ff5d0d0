"""Parsing of human and ISO 8601 durations into seconds."""

from __future__ import annotations

import re

_UNITS = {
    "ms": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
_HUMAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_ISO = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)

DURATION_FORMATS = 'seconds as a number (300), "30s", "90 seconds", "5 minutes", "5m", or ISO 8601 ("PT5M")'


class DurationError(ValueError):
    """A duration that is not in one of the accepted forms."""


def parse_duration(value: object) -> float:
    """Return seconds for `value`, or raise DurationError saying what is accepted."""
    if isinstance(value, bool):
        raise DurationError(f"expected a duration, got {value!r}; accepted: {DURATION_FORMATS}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise DurationError(f"expected a duration, got {type(value).__name__}; accepted: {DURATION_FORMATS}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise DurationError(f"duration must be finite; accepted: {DURATION_FORMATS}")
    if seconds <= 0:
        raise DurationError(f"duration must be positive, got {value!r}")
    return seconds


def _parse_text(text: str) -> float:
    stripped = text.strip()
    iso = _ISO.match(stripped)
    if iso and stripped.upper() not in ("P", "PT") and any(iso.groupdict().values()):
        parts = {k: float(v) if v else 0.0 for k, v in iso.groupdict().items()}
        return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    human = _HUMAN.match(stripped)
    if human:
        number, unit = float(human.group(1)), human.group(2).lower() or "s"
        if unit in _UNITS:
            return number * _UNITS[unit]
    raise DurationError(f"could not read {text!r} as a duration; accepted: {DURATION_FORMATS}")


def format_duration(seconds: float) -> str:
    """Render seconds the way the spec's reports do: 45s, 1m 30s, 450ms."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds % 1 else f"{seconds:.0f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest}s" if rest else f"{minutes}m"
