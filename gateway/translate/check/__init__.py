"""`gateway translate --check URL`: each legacy function and its translation run on a real
database, in a transaction rolled back, and compared.

- `runner`: `check_modules` and the verdicts;
- `runs`: one function's run, legacy or translated;
- `arguments`: the argument sets a function is called with;
- `compare`: what two runs are compared on.
"""
