"""A legacy CRUD app in the old FastAPI-tutorial style (users and their items), written
with `db.query` for gateway translate's tests; it knows nothing of the gateway."""
