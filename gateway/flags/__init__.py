"""Flags: which implementation serves each route, stored, followed and relayed.

- `table`: `Flag`, the `ModeTable` every request reads, and the per-request choice (pure;
  the modes themselves are gateway.modes, the one list);
- `store`, `store_pg`, `schema`: where flags live (memory, SQLite or PostgreSQL);
- `follower`: a worker's copy of the table, kept current by LISTEN or polling;
- `board`: the shared-memory board a supervisor posts flags on for its workers;
- `seed_file`: the optional TOML file that seeds flags at startup.

Imports: the foundations only (`settings`, `urls`, `exceptions`, `_process`, `_compat`).
"""
