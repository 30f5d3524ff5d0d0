"""structlog JSON to stderr (stdout belongs to the stdio transport), secrets masked.

Every line on stderr goes through the same processors: our own structlog events, and every
standard-library logger (httpx's request lines, the MCP SDK, uvicorn, asyncio, warnings) through
one root handler whose formatter is structlog's. Uncaught exceptions in any thread are logged the
same way, as one line naming the exception, never as a stack trace.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any

import structlog

from chaos_mcp.secrets import redact_text


def _redactor(secrets: set[str]) -> structlog.types.Processor:
    frozen = frozenset(secrets)

    def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        return {k: redact_text(v, frozen) if isinstance(v, str) else v for k, v in event.items()}

    return redact


def _exception_summary(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """An exception becomes `error: "Type: message"` (each leaf of a group), never a stack trace:
    log lines are read by people and agents, and frames can carry values."""
    exc_info = event.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[1] is not None:
        event.setdefault("error", "; ".join(_leaves(exc_info[1]))[:2000])
    return event


def _leaves(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [text for inner in exc.exceptions for text in _leaves(inner)]
    message = str(exc).strip().splitlines()
    return [f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__]


def configure_logging(level: str = "INFO", secrets: set[str] | None = None) -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    redact = _redactor(secrets or set())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception_summary,
            redact,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _exception_summary,
                redact,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "mcp"):
        library = logging.getLogger(name)  # their own handlers would print plain text
        library.handlers.clear()
        library.propagate = True
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException | None, traceback: TracebackType | None
) -> None:
    if exc is None or issubclass(exc_type, KeyboardInterrupt):
        return
    logging.getLogger("chaos_mcp").error("uncaught_exception", exc_info=(exc_type, exc, traceback))
