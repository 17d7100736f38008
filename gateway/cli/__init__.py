"""The `gateway` command (entry point `gateway.cli:main`).

- `commands`: the root command and serve, routes, check, ...;
- `common`: what the commands share (options, reading a gateway, the route table, keeping
  stdout for the command's output);
- `table`: laying text out: route keys never cut, piped output never wrapped;
- `flags`, `rollout`, `report`, `shadow`: their sub-commands;
- `translate`: `gateway translate`, which imports `gateway.translate` only when it runs.

Imports: anything of the gateway; `gateway.translate` only from `cli.translate`.
"""

from gateway.cli.commands import main

__all__ = ["main"]
