"""The migration report: which legacy route to migrate next, and each pair side by side.

- `ranking`: the ranking and the side-by-side numbers (pure);
- `maker`: the report of a running gateway, from its metering.

Imports: `metrics` and everything below it.
"""
