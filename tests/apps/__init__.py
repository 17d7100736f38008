"""Small apps and servers shared by the tests (bench/ has its own and never imports these).

probe      a paired GET /probe that names the implementation and worker pid (flags, admin, CLI)
metrics    I/O-bound, CPU-bound and loop-blocking routes (metrics, Prometheus, report)
deploy     a slow paired route and `running_server` (deployment, shutdown)
pgvector   a throwaway PostgreSQL + pgvector cluster (the vector route)
long_routes  route keys of 60+ characters, routes on FastAPI's own handler (CLI output)
"""
