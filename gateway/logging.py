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
import re
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.flags.table import Flag, ModeTable

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


# A credential in a URL's query string, as clients and proxies send them: the value goes.
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:token|access_token|api_key|apikey|key|password|passwd|secret|auth)=)"
    r"[^&#\s\"']*"
)


class RedactSecrets(logging.Filter):
    """Replace every known secret, and any credential in a query string, by ***.

    On handlers, so it sees every record that reaches them: the gateway's own, uvicorn's
    access and error lines, and those of the application.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _QUERY_SECRET.sub(r"\1***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and all(isinstance(a, str | int | float) for a in args):
            # Keep the arguments' shape: uvicorn's access formatter unpacks them.
            record.msg = self.clean(str(record.msg))
            record.args = tuple(self.clean(a) if isinstance(a, str) else a for a in args)
        else:
            record.msg, record.args = self.clean(record.getMessage()), None
        fields = getattr(record, FIELDS, None)
        if fields:
            setattr(record, FIELDS, {k: _redact(v, self) for k, v in fields.items()})
        return True


def configure_logging(settings: Settings, stream: Any = None) -> logging.Handler | None:
    """Send the "gateway" logger's lines to stderr (or `stream`); idempotent per process.

    When the root logger has handlers already (the embedding app configured logging, or
    pytest runs), the lines go there and only the level is set. With settings.log_json,
    uvicorn's own lines are switched to JSON too. Every handler of the root, the gateway
    and uvicorn's loggers gets the secrets filter, so no line shows a token or password.
    """
    log.setLevel(settings.log_level.upper())
    redact = RedactSecrets(_secrets(settings))
    handler: logging.Handler | None = None
    if stream is not None or not logging.getLogger().handlers:
        formatter: logging.Formatter = JsonFormatter() if settings.log_json else TextFormatter()
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(formatter)
        setattr(handler, _MARK, True)
        for replaced in [h for h in log.handlers if getattr(h, _MARK, False)]:
            log.removeHandler(replaced)
        log.addHandler(handler)
        if settings.log_json:
            for name in UVICORN_LOGGERS:
                for uvicorn_handler in logging.getLogger(name).handlers:
                    uvicorn_handler.setFormatter(formatter)
    for name in ("", "gateway", *UVICORN_LOGGERS):
        for guarded in logging.getLogger(name).handlers:
            for stale in [f for f in guarded.filters if isinstance(f, RedactSecrets)]:
                guarded.removeFilter(stale)
            guarded.addFilter(redact)
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


def _redact(value: Any, redact: RedactSecrets) -> Any:
    if isinstance(value, str):
        return redact.clean(value)
    if isinstance(value, (dict, list)):
        return json.loads(redact.clean(json.dumps(value, default=str)))
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
