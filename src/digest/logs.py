"""Logging for the long-running commands: one line per event, ``key=value`` or one JSON object.

``configure_logging(settings)`` is called by ``digest serve`` and ``digest worker`` at start-up,
never at import time, so both write the format ``DIGEST_LOG_JSON`` asks for. Every record
becomes exactly one line, even one carrying a traceback (its newlines are escaped), so a log
shipper never splits an event. Extra fields given with ``log.info(..., extra={...})`` appear as
more keys. A capability token in a path (confirm, unsubscribe, preferences, tracked links)
never reaches a line: ``cut_tokens`` shortens it to ``/confirm/…`` in every message, uvicorn's
access lines included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

from digest.config import Settings
from digest.links import TOKEN_PATH_PREFIXES

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_STANDARD.add("color_message")  # uvicorn's copy of the message with terminal colours
_MARK = "_digest_handler"
# Libraries whose per-event chatter is not ours to print at INFO.
_QUIET = {"apscheduler": logging.WARNING, "aiosmtplib": logging.WARNING, "httpx": logging.WARNING}
# A token path's segment after the prefix, up to the end of the path (a query or a quote).
_TOKEN_IN_PATH = re.compile(
    "(" + "|".join(re.escape(p) for p in TOKEN_PATH_PREFIXES) + r")[^\s/?#\"']+"
)


def cut_tokens(text: str) -> str:
    """``text`` with every capability token in a path cut: ``/confirm/abc.def`` -> ``/confirm/…``.

    Whoever reads a log (a log shipper, a support desk) must not be able to confirm,
    unsubscribe or change a reader's preferences with what it shows.
    """
    return _TOKEN_IN_PATH.sub("\\1…", text)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record as ordered fields: time, level, logger, message, extras, exception."""
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": cut_tokens(record.getMessage()),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = cut_tokens(value) if isinstance(value, str) else value
    if record.exc_info:
        fields["exc"] = cut_tokens(logging.Formatter().formatException(record.exc_info))
    return fields


def _kv_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and not any(c in text for c in ' "=\\\n\r\t'):
        return text
    # json.dumps quotes and escapes newlines: the whole event stays on one line.
    return json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=info logger=digest.schedule msg="edition made" key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of ``key=value`` pairs."""
        return " ".join(f"{k}={_kv_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON."""
        return json.dumps(_fields(record), default=str, ensure_ascii=False)


def configure_logging(
    settings: Settings, *, stream: IO[str] | None = None, level: int = logging.INFO
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in the format the settings ask for.

    Calling it again replaces the handler it installed before instead of adding a second one,
    so no line is ever printed twice. Returns the handler (tests read what it wrote).
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_json else KeyValueFormatter())
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(quiet)
    # uvicorn's loggers keep their own handlers only when uvicorn configures logging; serve
    # passes log_config=None, so they propagate here and share our format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler
