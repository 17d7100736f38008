"""The example legacy app: plain `def` routes, a sync Session, `db.query(...)` style."""
