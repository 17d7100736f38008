"""Settings come from GATEWAY_* only, and bad values say what is wrong without leaking secrets."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from gateway import Settings, SettingsError
from gateway import fields as fields_module
from gateway import settings as settings_module
from gateway._compat import SYNC_POSTGRES_DRIVER
from gateway.fields import Field
from gateway.urls import derive_urls, mask_url


def test_reads_only_gateway_prefixed_variables():
    settings = Settings.from_environ(
        {
            "DATABASE_URL": "postgresql://legacy@db/legacy",
            "POSTGRES_PASSWORD": "x",
            "GATEWAY_POOL_SIZE": "7",
            "GATEWAY_THREADPOOL_SIZE": "12",
        }
    )
    assert settings.database_url == ""
    assert settings.embedded
    assert (settings.pool_size, settings.threadpool_size) == (7, 12)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "GATEWAY_POOL_SIZE",
            "zero",
            "GATEWAY_POOL_SIZE='zero' is invalid: Input should be a valid integer",
        ),
        (
            "GATEWAY_THREADPOOL_SIZE",
            "0",
            "GATEWAY_THREADPOOL_SIZE='0' is invalid: Input should be greater than or equal to 1",
        ),
        ("GATEWAY_STATEMENT_TIMEOUT_MS", "-5", "GATEWAY_STATEMENT_TIMEOUT_MS='-5' is invalid"),
        ("GATEWAY_DEFAULT_MODE", "shadow", "expected 'legacy' or 'async'"),
        ("GATEWAY_CANARY_KEY", "query:user", "expected header:NAME or cookie:NAME"),
        ("GATEWAY_ADMIN_PREFIX", "admin", "expected a path that starts with '/'"),
    ],
)
def test_invalid_values_name_setting_value_and_accepted(name, value, message):
    with pytest.raises(SettingsError) as info:
        Settings.from_environ({name: value})
    assert message in str(info.value)


def test_database_url_password_is_masked_in_errors():
    with pytest.raises(SettingsError) as info:
        Settings.from_environ({"GATEWAY_DATABASE_URL": "mysql://app:hunter2@db/app"})
    text = str(info.value)
    assert "hunter2" not in text
    assert "GATEWAY_DATABASE_URL='mysql://app:***@db/app'" in text
    assert "expected postgresql://" in text


def test_in_memory_sqlite_is_refused():
    with pytest.raises(SettingsError, match="in-memory SQLite"):
        Settings.from_environ({"GATEWAY_DATABASE_URL": "sqlite://"})


@pytest.mark.parametrize(
    ("url", "sync", "async_"),
    [
        ("postgresql://u:p@h:5432/d", SYNC_POSTGRES_DRIVER, "postgresql+asyncpg"),
        ("postgres://u@h/d", SYNC_POSTGRES_DRIVER, "postgresql+asyncpg"),
        ("postgresql+psycopg2://u@h/d", "postgresql+psycopg2", "postgresql+asyncpg"),
        ("sqlite:///tmp/x.db", "sqlite+pysqlite", "sqlite+aiosqlite"),
    ],
)
def test_one_url_gives_both_drivers(url, sync, async_):
    sync_url, async_url = derive_urls(url)
    assert (sync_url.drivername, async_url.drivername) == (sync, async_)
    assert sync_url.database == async_url.database


def test_mask_url():
    assert mask_url("postgresql://app:s3cret@db:5432/app") == "postgresql://app:***@db:5432/app"
    assert mask_url("not a url") == "not a url"


def test_values_are_converted_as_an_environment_gives_them():
    settings = Settings.from_environ(
        {
            "GATEWAY_POOL_TIMEOUT": "2.5",
            "GATEWAY_METRICS": "off",
            "GATEWAY_GC_FREEZE": "No",
            "GATEWAY_POOL_PRE_PING": "1",
            "GATEWAY_ADMIN_PORT": " ",
            "GATEWAY_IMPLEMENTATION_HEADER": "X-Served-By",
        }
    )
    assert settings.pool_timeout == 2.5
    assert (settings.metrics, settings.gc_freeze, settings.pool_pre_ping) == (False, False, True)
    assert settings.admin_port is None
    assert settings.implementation_header == "x-served-by"
    assert Settings.from_environ({"GATEWAY_ADMIN_PORT": "8081"}).admin_port == 8081


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GATEWAY_METRICS", "maybe", "Input should be a valid boolean"),
        ("GATEWAY_POOL_TIMEOUT", "soon", "Input should be a valid number"),
        ("GATEWAY_POOL_TIMEOUT", "0", "Input should be greater than 0"),
        ("GATEWAY_JUDGE_ALPHA", "0.5", "Input should be less than 0.5"),
        ("GATEWAY_ADMIN_PORT", "70000", "Input should be less than or equal to 65535"),
    ],
)
def test_conversion_and_bound_errors_read_like_pydantics(name, value, message):
    with pytest.raises(SettingsError) as info:
        Settings.from_environ({name: value})
    assert str(info.value).startswith(f"{name}={value!r} is invalid: {message}")


def test_every_invalid_value_is_named_at_once():
    with pytest.raises(SettingsError) as info:
        Settings.from_environ({"GATEWAY_POOL_SIZE": "0", "GATEWAY_LOG_LEVEL": "loud"})
    assert "GATEWAY_POOL_SIZE='0'" in str(info.value)
    assert "GATEWAY_LOG_LEVEL='loud'" in str(info.value)


def test_admin_tokens_never_shown():
    settings = Settings.from_environ({"GATEWAY_ADMIN_TOKENS": "ops=s3cret-token"})
    assert "s3cret" not in repr(settings)
    with pytest.raises(SettingsError) as info:
        Settings.from_environ({"GATEWAY_ADMIN_TOKENS": "s3cret", "GATEWAY_POOL_SIZE": "x"})
    assert "s3cret" not in str(info.value)


def test_a_settings_is_checked_however_it_is_made():
    assert Settings().pool_size == 20
    assert Settings(pool_size="7").pool_size == 7  # type: ignore[arg-type]
    settings = dataclasses.replace(Settings(), default_mode="async")
    assert settings.default_mode == "async"
    with pytest.raises(SettingsError, match="GATEWAY_DEFAULT_MODE='canary'"):
        dataclasses.replace(settings, default_mode="canary")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.pool_size = 3  # type: ignore[misc]


def test_settings_need_no_pydantic():
    # The gateway installs next to pydantic 1 and 2 apps: its settings import neither.
    imported = set()
    for module in (settings_module, fields_module):
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "dataclasses" in imported
    assert not imported & {"pydantic", "pydantic_settings", "pydantic_core"}


def test_a_field_of_a_type_the_reader_cannot_convert_is_a_declaration_error():
    @dataclasses.dataclass(frozen=True)
    class Knobs:
        names: tuple[str, ...] = Field(default=(), description="not readable")

    with pytest.raises(TypeError, match="cannot be read: use str, int, float, bool"):
        fields_module.read_fields(Knobs, {"names": "a,b"})


def test_settings_made_in_code_read_the_environment_and_keywords_win(monkeypatch):
    """`Settings()` reads GATEWAY_* as pydantic-settings' BaseSettings did: an app's
    `create_app(settings or Settings())` keeps its admin tokens; keywords take precedence."""
    monkeypatch.setenv("GATEWAY_ADMIN_TOKENS", "ops=a-token-long-enough-0123456789")
    monkeypatch.setenv("GATEWAY_POOL_SIZE", "3")
    assert Settings().admin_tokens == "ops=a-token-long-enough-0123456789"
    assert Settings().pool_size == 3
    assert Settings(pool_size=7).pool_size == 7
    assert Settings.from_environ({}).admin_tokens == ""
    with pytest.raises(TypeError, match=r"unknown field.*'pool_sise'"):
        Settings(pool_sise=7)
