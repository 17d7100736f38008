"""The flag store's two blocking PostgreSQL paths, each run by a thread of its own.

    listen_blocking(url, channel, on_payload, on_ready, stop)   # the follower's listener
    writer = OneTripWriter(url)                                  # the admin port's loop
    version, old_mode, old_percent = writer.change(schema, values)
    writer.close()

Both keep off the worker's event loop on purpose: under load that loop is saturated, and a
flip heard or written through it waits behind every request in it (gateway.flags.store has
the async paths; gateway.flags.follower and gateway.admin.listener start the threads).
"""

from __future__ import annotations

import select as io_select
from collections.abc import Callable, Mapping
from threading import Event
from typing import Any

from gateway.flags.schema import FLAGS_TABLE, HISTORY_TABLE

__all__ = ["LISTEN_POLL", "OneTripWriter", "listen_blocking"]

LISTEN_POLL = 0.1  # seconds between checks of the listener's stop flag


def listen_blocking(
    url: str,
    channel: str,
    on_payload: Callable[[str], None],
    on_ready: Callable[[], None],
    stop: Event,
    timeout: float = 5.0,
) -> None:
    """LISTEN on `channel` on a dedicated blocking connection: call on_ready once
    listening, then forward each payload as it arrives.

    Returns once `stop` is set (seen within LISTEN_POLL seconds); raises when the
    connection breaks. The socket is polled with select(), not `notifies(timeout=)`,
    which psycopg 3.1 lacks.
    """
    import psycopg

    with psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=max(int(timeout), 1),
        keepalives=1,
        keepalives_idle=5,
        keepalives_interval=2,
        keepalives_count=3,
    ) as connection:
        connection.execute(f"LISTEN {channel}")
        # A change committed before this point is in on_ready's resync.
        on_ready()
        pgconn = connection.pgconn
        while not stop.is_set():
            readable, _, _ = io_select.select([connection.fileno()], [], [], LISTEN_POLL)
            if not readable:
                continue
            pgconn.consume_input()  # raises OperationalError once the connection broke
            while (notify := pgconn.notifies()) is not None:
                on_payload(notify.extra.decode("utf-8", "replace"))
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                raise ConnectionError("the notification connection closed")


class OneTripWriter:
    """A flag change in one round trip on a blocking connection, for the admin port's loop.

    The same transaction as SqlFlagStore.change (lock the key, history row, flag, NOTIFY),
    sent as one simple query: on a worker whose event loop is saturated, every round trip
    waits its turn for the GIL, and change() takes several. It blocks its loop for that
    round trip, which only a loop serving nothing but admin requests can afford.
    tests/e2e/test_admin_listener.py checks it stores, returns and notifies what change() does.
    """

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._connection: Any = None

    def connect(self) -> Any:
        """The connection, opened now if it is not (a first flip need not wait for it)."""
        import psycopg

        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(
                self.url,
                autocommit=True,  # the query holds its own BEGIN and COMMIT
                connect_timeout=max(int(self.timeout), 1),
                options=f"-c statement_timeout={int(self.timeout * 2000)}",
                cursor_factory=psycopg.ClientCursor,  # client-side binding: many statements
            )
        return self._connection

    def change(self, schema: str | None, values: Mapping[str, Any]) -> tuple[int, str, float]:
        """Apply one change; (its version, the old mode, the old percent).

        `values`: lock, at, key, actor, reason, mode, percent, default_mode,
        default_percent and channel (the placeholders of the query below).
        """
        from psycopg import sql

        connection = self.connect()
        prefix = [schema] if schema else []
        flags, history = (sql.Identifier(*prefix, t) for t in (FLAGS_TABLE, HISTORY_TABLE))
        query = sql.SQL(_ONE_TRIP).format(flags=flags, history=history)
        try:
            cursor = connection.execute(query, dict(values))
        except BaseException:
            connection.close()  # reconnect next time, whatever state it was left in
            raise
        cursor.nextset()  # the results of BEGIN, the lock, then the change's row
        cursor.nextset()
        version, old_mode, old_percent, _notified = cursor.fetchone()
        return int(version), str(old_mode), float(old_percent)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


# The lock is its own statement, so the change's snapshot is taken once the key is ours.
_ONE_TRIP = """BEGIN;
SELECT pg_advisory_xact_lock(%(lock)s);
WITH old AS (SELECT mode, percent FROM {flags} WHERE route_key = %(key)s),
history AS (
    INSERT INTO {history}
        (at, route_key, actor, old_mode, old_percent, new_mode, new_percent, reason)
    SELECT %(at)s, %(key)s, %(actor)s,
        coalesce((SELECT mode FROM old), %(default_mode)s),
        coalesce((SELECT percent FROM old), %(default_percent)s),
        %(mode)s, %(percent)s, %(reason)s
    RETURNING id, old_mode, old_percent
),
flag AS (
    INSERT INTO {flags} (route_key, mode, percent, version, updated_at, updated_by)
    SELECT %(key)s, %(mode)s, %(percent)s, id, %(at)s, %(actor)s FROM history
    ON CONFLICT (route_key) DO UPDATE SET mode = EXCLUDED.mode, percent = EXCLUDED.percent,
        version = EXCLUDED.version, updated_at = EXCLUDED.updated_at,
        updated_by = EXCLUDED.updated_by
)
SELECT id, old_mode, old_percent, pg_notify(%(channel)s, json_build_object(
    'key', %(key)s::text, 'mode', %(mode)s::text, 'percent', %(percent)s::float8, 'v', id
)::text) FROM history;
COMMIT;"""
