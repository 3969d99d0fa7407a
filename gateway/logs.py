"""Logging: request ids on every line, optional JSON lines, and a last-line-of-defence
filter that blanks any known secret value before a record is written and caps its size
(a request value quoted in an exception message must not become a 100 KB log line)."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gateway_request_id", default=None
)

REDACTED = "**********"
_MIN_SECRET_LEN = 8  # shorter values would blank ordinary words
MAX_MESSAGE_CHARS = 4096
MAX_TRACEBACK_LINE_CHARS = 1024


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} characters cut]"


def cap_lines(text: str, limit: int) -> str:
    """Each line of a traceback cut to ``limit`` characters (the frames stay readable;
    a huge exception message does not)."""
    return "\n".join(cap(line, limit) for line in text.split("\n"))


class SecretRedactor(logging.Filter):
    """Replaces every registered secret value in a record's final message."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= _MIN_SECRET_LEN:
                self._secrets.add(value)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        message = cap(self.scrub(record.getMessage()), MAX_MESSAGE_CHARS)
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = cap_lines(self.scrub(record.exc_text), MAX_TRACEBACK_LINE_CHARS)
        return True


redactor = SecretRedactor()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info or record.exc_text:
            out["exc"] = record.exc_text or self.formatException(
                record.exc_info or (None, None, None)
            )
        return json.dumps(out)


def json_line(message: str, *, level: str, logger: str) -> str:
    """One JSON log line, shaped like :class:`JsonFormatter`'s, for text written to
    stdout/stderr outside logging."""
    return json.dumps(
        {
            "ts": datetime.now(UTC).isoformat(),
            "level": level,
            "logger": logger,
            "message": redactor.scrub(message),
            "request_id": "-",
        }
    )


class JsonLines:
    """A text stream wrapper for ``log_format = "json"``: every complete line written
    through it that is not JSON already becomes a JSON log record (the CLI's own
    messages and reports, anything a library prints), so each line of stdout and stderr
    parses."""

    def __init__(self, stream: Any, *, level: str, logger: str = "gateway.cli") -> None:
        self.stream, self.level, self.logger = stream, level, logger
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.stream.write(self._convert(line) + "\n")
        return len(text)

    def _convert(self, line: str) -> str:
        if line[:1] in ("{", "["):  # a log record, or a command's JSON document
            try:
                json.loads(line)
                return line
            except ValueError:
                pass
        message = line.removeprefix("gateway: ")
        if message.startswith("warning: "):  # `gateway check` lists startup warnings
            return json_line(message[9:], level="WARNING", logger=self.logger)
        return json_line(message, level=self.level, logger=self.logger)

    def flush(self) -> None:
        if self._partial:
            self.stream.write(self._convert(self._partial) + "\n")
            self._partial = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:  # fileno, encoding, ... of the real stream
        return getattr(self.stream, name)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_gateway", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._gateway = True  # type: ignore[attr-defined]
    handler.addFilter(redactor)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Python warnings (deprecations, ...) go through the same handler and format.
    logging.captureWarnings(True)
    # Tortoise announces every close at INFO; that is noise for operators.
    logging.getLogger("tortoise").setLevel(max(logging.WARNING, root.level))


def install_redaction_everywhere() -> None:
    """Attach the redactor to every handler already on the root logger (pytest's
    capture handlers included), so no path writes a secret."""
    for handler in logging.getLogger().handlers:
        if redactor not in handler.filters:
            handler.addFilter(redactor)
