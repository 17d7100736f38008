"""Every gateway_* metric, what records it, and how it is read back.

- `series`: the metric definitions and how /metrics exposes them;
- `recorder`: the middleware that records each request;
- `batched`: observations batched per request;
- `readings`, `metering`: snapshots of the totals over time, and the machinery that takes them;
- `looplag`, `cpuload`: the event loop's lag and the host's CPU load;
- `lazy_loads`: lazy loads of relationships, per route.

Imports: the foundations, `flags`, `db`, `routing`, `legacy`, `shadow`.
"""
