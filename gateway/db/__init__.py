"""The database side: engines and sessions for both implementations, and what happens to them.

- `database`: `Database`, `SyncDB`/`AsyncDB`, `get_session`/`get_async_session`;
- `errors`: which exceptions mean the database is unavailable;
- `events`: SQLAlchemy engine and pool events (statement and checkout timing);
- `checkout`: the one `checkout` listener on every pool (the shadow seal and the outage share it);
- `isolation`: the shadow seal (nothing a twin does can commit);
- `outage`: 503s and their log lines while the database is down.

Imports: the foundations, `flags`, `request_info` and `logging`.
"""
