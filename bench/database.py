"""The throwaway PostgreSQL database the benchmark runs against.

    with throwaway_database(admin_url, users=10_000) as db:
        db.use_profile(profile)        # new connections see the profile's `users`
        url = db.url                   # what the apps get as GATEWAY_DATABASE_URL

The plain profile reads the table public.users. The delay profile puts a view
delayed.users in front of it whose filter sleeps `delay_ms` once per row returned, and sets
the database's search_path to it: the apps and their queries stay byte for byte the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.cases import Profile

__all__ = ["BenchDatabase", "connection_budget", "throwaway_database"]

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _conninfo(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class BenchDatabase:
    admin_url: str
    name: str

    @property
    def url(self) -> str:
        return (
            make_url(self.admin_url).set(database=self.name).render_as_string(hide_password=False)
        )

    def use_profile(self, profile: Profile) -> None:
        """Point new connections at the profile's `users` (existing ones keep theirs)."""
        schema = "delayed" if profile.delay_ms else "public"
        with psycopg.connect(_conninfo(self.url), autocommit=True) as conn:
            if profile.delay_ms:
                conn.execute(
                    sql.SQL(
                        "CREATE OR REPLACE VIEW delayed.users AS SELECT id, name, email "
                        "FROM public.users WHERE pg_sleep({}) IS NOT NULL"
                    ).format(sql.Literal(profile.delay_ms / 1000.0))
                )
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET search_path TO {}, public").format(
                    sql.Identifier(self.name), sql.Identifier(schema)
                )
            )

    def server_version(self) -> str:
        with psycopg.connect(_conninfo(self.url)) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def connection_budget(admin_url: str) -> tuple[int, int]:
    """(max_connections, connections in use now) of the server."""
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        limit = conn.execute("SHOW max_connections").fetchone()
        used = conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()
    return int(limit[0]) if limit else 0, int(used[0]) if used else 0


@contextmanager
def throwaway_database(admin_url: str, *, users: int) -> Iterator[BenchDatabase]:
    """Create and seed a fresh database with `users` users; drop it afterwards, always."""
    db = BenchDatabase(admin_url, f"gateway_bench_{uuid.uuid4().hex[:10]}")
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db.name)))
    try:
        with psycopg.connect(_conninfo(db.url), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE users (id serial PRIMARY KEY, name varchar(100) UNIQUE NOT NULL,"
                " email varchar(200) NOT NULL)"
            )
            conn.execute(
                "INSERT INTO users (name, email) SELECT 'user' || i, 'user' || i || "
                "'@example.com' FROM generate_series(1, %s) AS i",
                (users,),
            )
            conn.execute("VACUUM ANALYZE users")
            conn.execute("CREATE SCHEMA delayed")
        yield db
    finally:
        with psycopg.connect(_conninfo(admin_url), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name))
            )
