"""Running a gateway: `gateway serve` and its supervisor.

- `server`: uvicorn with one or more workers;
- `relay`: the supervisor's flag relay and admin port;
- `loader`: finding the app to serve from `module:attribute` or `--legacy`/`--async`.

Imports: `app` and everything below it.
"""
