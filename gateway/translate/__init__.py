"""`gateway translate`: Query-style legacy modules in, async twins out (the `translate` extra).

- `files`: `translate_file`/`translate_files`, the entry points;
- `module`, `reader`, `edits`, `signature`, `chains`, `loads`, `models`, `imports`,
  `source`, `summary`: the codemod, built on libcst;
- `check/`: `gateway translate --check`, each function run legacy and translated.

Nothing at runtime imports this package: only the `gateway translate` command does.
Imports: `_compat`, `exceptions`, `urls`.
"""
