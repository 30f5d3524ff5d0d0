"""structlog JSON to stderr (stdout belongs to the stdio transport), secrets masked."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from chaos_mcp.secrets import redact_text


def _redactor(secrets: set[str]) -> structlog.types.Processor:
    frozen = frozenset(secrets)

    def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        return {k: redact_text(v, frozen) if isinstance(v, str) else v for k, v in event.items()}

    return redact


def configure_logging(level: str = "INFO", secrets: set[str] | None = None) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=getattr(logging, level.upper(), logging.INFO), format="%(message)s"
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redactor(secrets or set()),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
