"""A backend shaped like the classic full-stack cookiecutter's, on pydantic 1 (issue 25).

`app/` is the legacy app as such projects have it (pydantic-1 `orm_mode` schemas and
`BaseSettings`, `CRUDBase` with `db.query`, `def` endpoints on `Depends(deps.get_db)`, a
signed-token login, its own tests whose conftest overrides `get_db`); it knows nothing of
the gateway. `migrated/` holds async twins of some routes, and `gateway_plugin` is the pytest
plugin that runs the app's own tests, unchanged, through the composed app.
"""
