"""The legacy app as it was before the gateway: plain FastAPI with `def` routes, unchanged.

uvicorn mypkg.main:app                                  # how it ran before
gateway serve --legacy mypkg.main:app --async mypkg.migrated:router
"""

from fastapi import FastAPI

app = FastAPI(title="mypkg")


@app.get("/hello/{name}")
def hello(name: str) -> dict[str, str]:
    """Greets `name`; the route the migrated side has a twin of."""
    return {"hello": name, "served_by": "def"}


@app.get("/legacy-only")
def legacy_only() -> dict[str, str]:
    """Not migrated yet: served by the legacy app in every mode."""
    return {"served_by": "def"}
