"""The apps under test. Each module has `create_app()`, served by `uvicorn --factory`.

All read the same GATEWAY_* variables (database URL, pool and threadpool sizes), so the
bare FastAPI references and the gateway run with identical settings.
"""
