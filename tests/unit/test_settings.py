"""Settings come from GATEWAY_* only, and bad values say what is wrong without leaking secrets."""

from __future__ import annotations

import pytest

from gateway import Settings, SettingsError
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
        ("postgresql://u:p@h:5432/d", "postgresql+psycopg", "postgresql+asyncpg"),
        ("postgres://u@h/d", "postgresql+psycopg", "postgresql+asyncpg"),
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
