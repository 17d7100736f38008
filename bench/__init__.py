"""The benchmark harness behind `scripts/bench` (issue 5).

Modules, one concern each:
  cases     the cases and profiles, and the alternating run order (pure)
  wrk       the load generator: its command line, Lua script and JSON output (parsing is pure)
  procstat  CPU seconds of the server, PostgreSQL, wrk and the machine, from /proc
  database  the throwaway PostgreSQL database: create, seed, switch profile, drop
  report    ratios, the markdown table, JSON and the PNG chart (pure but for the chart file)
  run       the command line: start each server, warm up, measure, collect, write results
  apps/     the apps under test: bare FastAPI references and the gateway

propagation.py and metrics_cost.py beside them are separate benchmarks of the flags and
metrics work, run on their own.
"""
