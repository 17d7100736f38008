"""One log line per notable event, as text or as JSON (GATEWAY_LOG_JSON=true).

configure_logging(settings)   # once per process: a handler on the "gateway" logger
log_started(gw.startup_summary())   # engines, pool and threadpool sizes, routes, modes
log_event("route flipped", route="GET /users/{user_id}", old="legacy", new="async")

Every line goes through a filter that replaces the configured admin tokens and database
password with ***, so a secret that slips into a message still never reaches the output.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.flags import Flag, ModeTable

__all__ = [
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "log_event",
    "log_started",
    "log_stopped",
    "watch_flips",
]

log = logging.getLogger("gateway")
FIELDS = "gateway_fields"  # the LogRecord attribute holding an event's fields
_MARK = "_gateway_handler"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def log_event(message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with structured fields (shown as key=value, or as JSON keys)."""
    if log.isEnabledFor(level):
        log.log(level, message, extra={FIELDS: fields})


class TextFormatter(logging.Formatter):
    """`2026-11-25T19:00:00Z INFO gateway route flipped route='GET /x' old=legacy new=async`."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, FIELDS, {})
        parts = [_timestamp(record), record.levelname, record.name, record.getMessage()]
        parts += [f"{k}={_text(v)}" for k, v in fields.items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        body.update(getattr(record, FIELDS, {}))
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


class RedactSecrets(logging.Filter):
    """Replace every known secret in a formatted line by ***."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        fields = getattr(record, FIELDS, None)
        for secret in self.secrets:
            message = message.replace(secret, "***")
            if fields:
                fields = {k: _redact(v, secret) for k, v in fields.items()}
        record.msg, record.args = message, None
        if fields is not None:
            setattr(record, FIELDS, fields)
        return True


def configure_logging(settings: Settings, stream: Any = None) -> logging.Handler | None:
    """Send the "gateway" logger's lines to stderr (or `stream`); idempotent per process.

    When the root logger has handlers already (the embedding app configured logging, or
    pytest runs), the lines go there and only the level is set. With settings.log_json,
    uvicorn's own lines are switched to JSON too.
    """
    log.setLevel(settings.log_level.upper())
    if stream is None and logging.getLogger().handlers:
        return None
    formatter: logging.Formatter = JsonFormatter() if settings.log_json else TextFormatter()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets(_secrets(settings)))
    setattr(handler, _MARK, True)
    for old in [h for h in log.handlers if getattr(h, _MARK, False)]:
        log.removeHandler(old)
    log.addHandler(handler)
    if settings.log_json:
        for name in UVICORN_LOGGERS:
            for uvicorn_handler in logging.getLogger(name).handlers:
                uvicorn_handler.setFormatter(formatter)
    return handler


def log_started(summary: Mapping[str, Any]) -> None:
    """The startup line: engines, pool and threadpool sizes, GC policy, routes and modes."""
    log_event("gateway started", pid=os.getpid(), **summary)


def log_stopped() -> None:
    """The last line of a worker: both pools are closed."""
    log_event("gateway stopped: pools closed", pid=os.getpid())


def watch_flips(modes: ModeTable) -> None:
    """Log one line per mode change of a paired route, whatever made it (API, store, code)."""

    def flipped(key: str, old: Flag, new: Flag) -> None:
        log_event(
            "route flipped", route=key, old=old.describe(), new=new.describe(), pid=os.getpid()
        )

    modes.on_change(flipped)


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def _redact(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, (dict, list)):
        return json.loads(json.dumps(value, default=str).replace(secret, "***"))
    return value


def _secrets(settings: Settings) -> list[str]:
    from sqlalchemy.engine import make_url

    entries = settings.admin_tokens.split(",")
    if settings.admin_tokens_file and os.path.isfile(settings.admin_tokens_file):
        with open(settings.admin_tokens_file, encoding="utf-8") as file:
            entries += file.read().replace(",", "\n").splitlines()
    found = [entry.partition("=")[2].strip() or entry.strip() for entry in entries]
    if settings.database_url:
        password = make_url(settings.database_url).password
        if password:
            found.append(str(password))
    return [s for s in found if s]
