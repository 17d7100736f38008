"""`gateway translate --check URL`: each legacy function and its translation run on a real
database, in a transaction rolled back, and compared.

- `runner`: `check_modules` and the verdicts;
- `runs`: one function's run, legacy or translated, called directly;
- `arguments`: the argument sets a function or method is called with;
- `apps`, `requests`, `through_app`: a route sent through the legacy app and the twin app
  (which apps, which requests from the OpenAPI schema, one request on one connection);
- `instances`: the module-level instances a method is called on;
- `noise`: what differs between two legacy runs, left out and named;
- `compare`: what two runs are compared on.
"""
