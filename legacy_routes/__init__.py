"""The example legacy app: plain `def` routes, its own engine and `get_db`, `db.query(...)`.

It imports nothing from the gateway, as the apps users mount do:
    uvicorn legacy_routes.main:app                 # alone, on DATABASE_URL
    create_legacy_app("postgresql://app@db/app")   # a fresh app on another database
"""
