"""Settings, read from GATEWAY_* environment variables only.

A legacy app usually owns DATABASE_URL and POSTGRES_* already, so nothing here reads them.

    settings = Settings.from_environ({"GATEWAY_DATABASE_URL": "postgresql://u:p@db/app"})
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from gateway.exceptions import SettingsError
from gateway.fields import (
    Field,
    FieldErrors,
    declared,
    describe_type,
    env_text,
    environ_values,
    field_validator,
    read_fields,
)
from gateway.modes import DEFAULT_MODES
from gateway.urls import mask_url

__all__ = ["DEFAULT_SQLITE_PATH", "ENV_PREFIX", "SettingDoc", "Settings", "settings_reference"]

ENV_PREFIX = "GATEWAY_"
DEFAULT_SQLITE_PATH = Path("gateway.db")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token: a header name
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True, init=False)
class Settings:
    """Everything the gateway can be told, each field read from GATEWAY_<FIELD>.

    `Settings()` reads the process environment, as pydantic-settings' BaseSettings did;
    keyword arguments take precedence over it. Fields are declared with
    `gateway.fields.Field` (bounds, description) and checked by the `field_validator`
    methods whenever a Settings is made, however it is made:

        Settings(pool_size=5)                      # or "5"; GATEWAY_* for the rest
        Settings.from_environ({...}, pool_size=5)  # another environment than the process's
        dataclasses.replace(settings, pool_size=7)  # checked again
    """

    database_url: str = Field(
        default="",
        description="postgresql://... or sqlite:///path. Empty: with --legacy, the database "
        "of the legacy app's own engine (or a refusal when none is found); a Gateway built in "
        "code uses an embedded SQLite file, gateway.db, in the working directory.",
    )
    pool_size: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="connections each of the gateway's engines (sync and async) keeps, per worker",
    )
    max_overflow: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="connections each engine may open beyond GATEWAY_POOL_SIZE under load; a "
        "replica opens up to workers x 2 x (pool size + overflow)",
    )
    pool_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="seconds a request waits for a pooled connection before it fails",
    )
    threadpool_size: int = Field(
        default=40,
        ge=1,
        le=10_000,
        description="threads of anyio's default limiter, set at startup: where legacy def "
        "routes kept on FastAPI's own handler run, per worker",
    )
    legacy_concurrency: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="legacy requests on the fast path running in threads at once; 0 means "
        "the legacy app's engine pool (its pool_size + max_overflow) when the gateway can read "
        "it, else GATEWAY_POOL_SIZE + GATEWAY_MAX_OVERFLOW; a value above the legacy pool is "
        "warned about. The rest wait on the event loop, not as threads on the pool",
    )
    statement_timeout_ms: int = Field(
        default=0,
        ge=0,
        description="PostgreSQL statement_timeout on both of the gateway's engines, in "
        "milliseconds; 0 disables the timeout",
    )
    pool_pre_ping: bool = Field(
        default=False,
        description="test each pooled connection before use (one round trip per checkout). "
        "Off, SQLAlchemy invalidates a pool when a request meets a broken connection, which "
        "covers a restart under traffic; on, it also covers a pool idle through the outage",
    )
    db_retry_after: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="Retry-After seconds of the 503 answered while the database is unreachable",
    )
    shutdown_drain_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="after SIGTERM: seconds of readiness 503 while still serving, each response "
        "closing its connection, before the listener closes (load balancers stop sending)",
    )
    shutdown_grace_seconds: float = Field(
        default=20.0,
        ge=0,
        le=3600,
        description="after the listener closed: seconds requests in flight get to finish",
    )
    default_mode: str = Field(
        default="legacy",
        description=f"mode of a paired route with no flag: {' or '.join(DEFAULT_MODES)}",
    )
    canary_key: str = Field(
        default="header:x-user-id",
        description="where a canary finds the request key: header:NAME or cookie:NAME",
    )
    admin_prefix: str = Field(
        default="/_gateway",
        description="path under which the admin API, the report, health and the page live",
    )
    admin_tokens: str = Field(
        default="",
        repr=False,
        description="name=token,... (tokens of 16+ characters) allowed to flip routes; "
        "with none configured every admin write is refused",
    )
    admin_tokens_file: str = Field(
        default="",
        description="a file of admin tokens, one name=token per line (# starts a comment), "
        "read as well as GATEWAY_ADMIN_TOKENS",
    )
    admin_read_requires_token: bool = Field(
        default=False,
        description="admin reads (routes, history, report, shadow results) need a token too",
    )
    admin_failure_limit: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="wrong admin tokens one client (peer address) may send per "
        "GATEWAY_ADMIN_FAILURE_WINDOW; after them its admin requests get 429 until it ends",
    )
    admin_failure_window: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="seconds of each client's window of wrong admin tokens, opened by its "
        "first refusal; its refusals are logged once per window",
    )
    admin_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="also serve the admin API on this port, where no application traffic "
        "queues (gateway serve's supervisor with several workers, else a thread of each "
        "worker), so a flip is taken at once under any load; unset: off",
    )
    admin_host: str = Field(
        default="127.0.0.1", description="the address GATEWAY_ADMIN_PORT listens on"
    )
    shadow_timeout: float = Field(
        default=2.0,
        gt=0,
        le=600,
        description="seconds a shadowed request's async twin may run before it is skipped "
        "(a write's client waits for it: keep it short)",
    )
    shadow_concurrency: int = Field(
        default=4, ge=1, le=1000, description="async twins running at once per worker"
    )
    shadow_keep_bodies: bool = Field(
        default=False,
        description="keep written values, both bodies of a differing shadowed request and "
        "errors as raised in shadow results and log lines (they may hold personal data; "
        "off by default)",
    )
    flags_file: str = Field(
        default="",
        description="a TOML file of flags seeding routes that have no stored flag yet at "
        "startup (a later flip wins); empty: none",
    )
    flags_poll_interval: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="on SQLite: seconds between each worker's reloads of the flag table",
    )
    flags_resync_interval: float = Field(
        default=30.0,
        gt=0,
        le=86400,
        description="on PostgreSQL: seconds between full resyncs of the flags, the safety net "
        "behind LISTEN/NOTIFY (every reconnect starts with one too)",
    )
    metrics: bool = Field(
        default=True,
        description="per-route metrics on /metrics and the migration report; false turns "
        "all of them off",
    )
    loop_lag_interval: float = Field(
        default=0.25,
        gt=0,
        le=3600,
        description="seconds between the event-loop lag sampler's timers",
    )
    gc_freeze: bool = Field(
        default=True,
        description="after startup, exclude every object alive then from garbage collection",
    )
    gc_threshold: str = Field(
        default="",
        description="gc.set_threshold() after startup, e.g. 10000,10,10; empty keeps Python's",
    )
    implementation_header: str = Field(
        default="x-gateway-implementation",
        description="response header saying which side served a route (legacy or async); "
        "empty disables it",
    )
    flags_database_url: str = Field(
        default="",
        description="where the flag tables live when not in the app's database "
        "(postgresql://... or sqlite:///path); empty means GATEWAY_DATABASE_URL",
    )
    flags_schema: str = Field(
        default="gateway",
        description="PostgreSQL schema of the flag tables, created if missing, so the app's "
        "migrations never see them; empty means the connection's search_path",
    )
    judge: bool = Field(
        default=True,
        description="the canary judge: compare the two arms of every canary and roll a worse "
        'async back to legacy by itself (per flip: "judge": false, --no-judge)',
    )
    judge_alpha: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="the chance that a canary whose async is as good as legacy is ever rolled "
        "back; lower needs more evidence, so a worse async serves a little longer",
    )
    judge_interval: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="seconds between each worker's count writes and the judge's decisions; "
        "shorter decides sooner and writes more rows",
    )
    judge_min_requests: int = Field(
        default=200,
        ge=1,
        le=10_000_000,
        description="requests each arm serves at a rollout step before it moves up; more is "
        "a surer step and a slower rollout of a quiet route",
    )
    log_json: bool = Field(default=False, description="one JSON object per log line")
    log_level: str = Field(
        default="info",
        description="the gateway's log level: critical, error, warning, info or debug",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        from gateway.urls import derive_urls

        if value:
            derive_urls(value)  # raises ValueError naming the accepted schemes
        return value

    @field_validator("flags_database_url")
    @classmethod
    def _flags_url(cls, value: str) -> str:
        from gateway.urls import derive_urls

        if value:
            derive_urls(value)
        return value

    @field_validator("admin_port", mode="before")
    @classmethod
    def _admin_port(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("implementation_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if value and not _TOKEN.fullmatch(value):
            raise ValueError(
                "expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), e.g. "
                "x-gateway-implementation, or empty to send none"
            )
        return value.lower()

    @field_validator("flags_schema")
    @classmethod
    def _schema_name(cls, value: str) -> str:
        if value and not _IDENTIFIER.fullmatch(value):
            raise ValueError(
                "expected a PostgreSQL schema name (a letter or _, then letters, digits, _; "
                "at most 63), e.g. gateway, or empty for the search_path"
            )
        return value

    @field_validator("canary_key")
    @classmethod
    def _canary_key(cls, value: str) -> str:
        kind, _, name = value.partition(":")
        if kind not in ("header", "cookie") or not name:
            raise ValueError("expected header:NAME or cookie:NAME, e.g. header:x-user-id")
        return value.lower() if kind == "header" else value

    @field_validator("default_mode")
    @classmethod
    def _default_mode(cls, value: str) -> str:
        if value not in DEFAULT_MODES:
            raise ValueError(f"expected {' or '.join(map(repr, DEFAULT_MODES))}")
        return value

    @field_validator("gc_threshold")
    @classmethod
    def _gc_threshold(cls, value: str) -> str:
        value = value.replace(" ", "")
        if value:
            parts = value.split(",")
            if len(parts) > 3 or not all(p.isdigit() for p in parts) or int(parts[0]) == 0:
                raise ValueError(
                    "expected 1 to 3 comma-separated whole numbers as for gc.set_threshold, "
                    "the first above 0, e.g. 10000,10,10 (empty keeps Python's)"
                )
        return value

    @property
    def gc_thresholds(self) -> tuple[int, ...]:
        """GATEWAY_GC_THRESHOLD as numbers; () when it is not set."""
        return tuple(int(p) for p in self.gc_threshold.split(",")) if self.gc_threshold else ()

    @field_validator("admin_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/") or value.endswith("/"):
            raise ValueError("expected a path that starts with '/' and does not end with one")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in ("critical", "error", "warning", "info", "debug"):
            raise ValueError("expected one of critical, error, warning, info, debug")
        return value.lower()

    def __init__(self, **values: Any) -> None:
        """GATEWAY_* from the process environment, `values` (by field name) on top."""
        self._fill(environ_values(type(self), os.environ, ENV_PREFIX) | values)

    def _fill(self, values: Mapping[str, Any]) -> None:
        names = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise TypeError(
                f"Settings got unknown field(s) {unknown}; expected some of {sorted(names)}"
            )
        try:
            converted = read_fields(type(self), values)
        except FieldErrors as exc:
            raise _settings_error(exc) from None
        for name, value in converted.items():
            object.__setattr__(self, name, value)  # frozen: set once, converted

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read GATEWAY_* from `environ` (default: os.environ); raise SettingsError if invalid."""
        environ = os.environ if environ is None else environ
        settings = cls.__new__(cls)
        settings._fill(environ_values(cls, environ, ENV_PREFIX) | overrides)
        return settings

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file when none is set."""
        return self.database_url or f"sqlite:///{DEFAULT_SQLITE_PATH}"

    @property
    def effective_flags_database_url(self) -> str:
        """Where the flag store lives: GATEWAY_FLAGS_DATABASE_URL, else the gateway's database."""
        return self.flags_database_url or self.effective_database_url

    @property
    def effective_legacy_concurrency(self) -> int:
        """GATEWAY_LEGACY_CONCURRENCY, else what the gateway's pool can serve at once (the
        Gateway sizes it from the legacy app's own pool instead when it can read it)."""
        return self.legacy_concurrency or self.pool_size + self.max_overflow

    @property
    def embedded(self) -> bool:
        return not self.database_url


def _settings_error(exc: FieldErrors) -> SettingsError:
    lines = []
    for error in exc.errors:
        value = error.value
        shown = mask_url(value) if isinstance(value, str) else value
        if error.name in ("admin_tokens",):
            shown = "***"
        lines.append(f"{ENV_PREFIX}{error.name.upper()}={shown!r} is invalid: {error.message}")
    return SettingsError("; ".join(lines))


class SettingDoc(NamedTuple):
    """One row of the settings reference: what to set, what it takes, what it does."""

    env_var: str  # GATEWAY_POOL_SIZE
    type: str  # "integer, at least 1, at most 1000"
    default: str  # as written in the environment: "20", "true", "" (empty)
    description: str


def settings_reference() -> list[SettingDoc]:
    """Every Settings field as its environment variable, type, default and description.

    for row in settings_reference():
        print(row.env_var, row.default)     # GATEWAY_DATABASE_URL ...
    """
    return [
        SettingDoc(
            env_var=f"{ENV_PREFIX}{name.upper()}",
            type=describe_type(annotation, spec),
            default=env_text(default),
            description=spec.description,
        )
        for name, annotation, default, spec in declared(Settings)
    ]
