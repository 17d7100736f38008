"""Shadow mode: legacy serves the client; the twin runs on the same request, rolled back, compared.

- `runner`: `ShadowRunner`, what a shadowed request does;
- `twin`, `sandbox`: one sealed run of the twin (gateway.db.isolation), on a connection of the
  shadow's own pool that is always rolled back;
- `messages`: the ASGI messages both sides are recorded from;
- `compare`, `writeset`: what is compared (bodies, statuses, the writes each side made);
- `results`, `store`: the comparisons per route and twin version, kept in memory and in the
  database; `failures`, `redact`, `versions`: what an error, an example and a version show.

Imports: the foundations, `flags`, `db`, `routing`.
"""
