"""Round trips to PostgreSQL from an otherwise idle process: the floor under a flip's commit.

    python -m bench.pg_ping --url postgresql://postgres@127.0.0.1:5432/postgres --seconds 50

Every 50 ms it times one `SELECT 1` and one transaction shaped like a flip (a write and a
pg_notify, committed), and prints a JSON line of their percentiles in milliseconds.
bench.propagation runs it beside the flips, so a flip's latency can be read against what
the database answers anyone on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import json
import time

import psycopg

__all__ = ["main", "percentile", "summary"]

_FLIP_SHAPED = (
    "BEGIN; CREATE TEMP TABLE IF NOT EXISTS ping (at float8);"
    " INSERT INTO ping VALUES (extract(epoch from now()));"
    " SELECT pg_notify('gateway_bench_ping', 'x'); COMMIT"
)


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank `p`th percentile of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of `values` (nearest rank), and how many."""
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a libpq URL (postgresql://...)")
    parser.add_argument("--seconds", type=float, default=50.0)
    args = parser.parse_args()
    select, commit = [], []
    with psycopg.connect(args.url, autocommit=True) as connection:
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            between = time.perf_counter()
            connection.execute(_FLIP_SHAPED)
            done = time.perf_counter()
            select.append((between - started) * 1000)
            commit.append((done - between) * 1000)
            time.sleep(0.05)
    print(json.dumps({"select_ms": summary(select), "commit_ms": summary(commit)}))


if __name__ == "__main__":
    main()
