"""Logging for the service and the sandbox: one line per thing an operator needs.

``configure_logging(settings)`` (called by ``serve``, ``worker`` and ``python -m
recoverkit.service``) sends every logger — recoverkit's, uvicorn's, plugins' — to stderr in one
format:

- ``log_format = "text"``: ``2026-01-01T12:00:00.123Z INFO recoverkit.recover Recover back …``
  followed by ``key=value`` pairs for the line's structured fields;
- ``log_format = "json"``: one JSON object per line (python-json-logger) with ``time``,
  ``level``, ``logger``, ``message`` and the same fields (``event``, ``invoice_id``, …).

Structured fields are passed with ``extra={…}``; ``event`` names the kind of line
(``startup``, ``recover_unreachable``, ``recover_back``, ``dead_letter``, ``translation_failed``,
``retry_status``, ``retry_results``, ``end_of_dunning``, ``backfill_progress``, …) so a log
pipeline can filter on it.

Nothing secret is logged by design (settings are summarised without credentials); as a second
line of defence every record passes a filter that redacts card numbers (Luhn-valid runs of 12-19
digits) from the message and its fields. uvicorn's access log is off unless ``access_log`` is set.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from recoverkit.redact import card_numbers, scrub_text

__all__ = ["CardNumberFilter", "TextFormatter", "configure_logging", "fields_of"]

#: LogRecord attributes that are not structured fields.
_STANDARD = frozenset(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields given with ``extra={…}``."""
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


def _redact(text: str) -> str:
    return scrub_text(text, event="log", path="log line")


class CardNumberFilter(logging.Filter):
    """Redacts card numbers from a record's message, arguments and structured fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if card_numbers(message):
            record.msg, record.args = _redact(message), None
        for key, value in fields_of(record).items():
            if isinstance(value, str) and card_numbers(value):
                setattr(record, key, _redact(value))
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if card_numbers(text):
                record.exc_text = _redact(text)
        return True


class _UTC:
    @staticmethod
    def stamp(record: logging.LogRecord) -> str:
        base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{base}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``time level logger message key=value …`` (UTC, ISO 8601)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_UTC.stamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        extras = fields_of(record)
        if extras:
            line += " " + " ".join(f"{k}={_text(v)}" for k, v in extras.items())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def _text(value: object) -> str:
    text = str(value)
    return repr(text) if (" " in text or not text) else text


class _Json(JsonFormatter):
    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["time"] = _UTC.stamp(record)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return _Json(
            "%(message)s",
            json_ensure_ascii=False,
            reserved_attrs=[*sorted(_STANDARD - {"message"})],
        )
    return TextFormatter()


class _Stderr(logging.StreamHandler[IO[str]]):
    """Writes to whatever ``sys.stderr`` is at the time (a CLI test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(
    *,
    level: str = "INFO",
    fmt: str = "text",
    access_log: bool = False,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Route every logger to one stderr handler in ``fmt``; returns the handler.

    Called once per process; calling again replaces the previous handler.
    """
    handler: logging.StreamHandler[IO[str]] = (
        logging.StreamHandler(stream) if stream is not None else _Stderr()
    )
    handler.setFormatter(_formatter(fmt))
    handler.addFilter(CardNumberFilter())
    handler.set_name("recoverkit")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "recoverkit"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _UVICORN:  # uvicorn's own handlers would print in another format
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = not access_log
    for noisy in ("httpx", "httpcore"):  # one line per HTTP call is noise; metrics count them
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
